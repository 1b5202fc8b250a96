"""Feature switches with safe defaults: keep answering when the flag store does not.

::

    from hystrixpy.features import FeatureSwitches

    switches = FeatureSwitches(
        read_flag,                                   # (name) -> bool | None, or a Mapping
        safe_defaults={"recommendations": False, "checkout": True},
    )
    if switches.is_enabled("recommendations"):
        ...
    switches.disable("recommendations", for_seconds=300)   # this process, for five minutes

A callable source is asked on a small pool of the switches' own and waited
for ``source_timeout_ms``; its answers are kept for ``refresh_seconds``, so a
hot path reads a dict. When the source raises, is slow, or answers nonsense,
the feature's safe default answers instead (an unknown feature is off), and
the outage is logged once: WARNING ``feature_source_failed`` as it starts,
INFO ``feature_source_recovered`` as it ends. A mapping source is read
directly, with no thread. Every time comes from :mod:`hystrixpy.clock`. See
``docs/feature-switches.md``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Protocol

from hystrixpy import _log, clock
from hystrixpy._features_source import (
    Report,
    SourceCall,
    check_answer,
    check_number,
    check_workers,
    checked_defaults,
    quiet,
)
from hystrixpy.bulkhead import ThreadPoolBulkhead
from hystrixpy.exceptions import RejectedError
from hystrixpy.properties import ThreadPoolProperties

__all__ = ["FeatureSource", "FeatureSwitches"]


class FeatureSource(Protocol):
    """Where feature switches are kept: ``source(name)`` is ``True``, ``False`` or ``None``.

    ``None`` means the source does not know the feature. A source may be slow
    or raise: :class:`FeatureSwitches` calls it on a worker, within a timeout,
    in a context whose :func:`hystrixpy.deadline.remaining` says how long it has.
    """

    def __call__(self, name: str, /) -> bool | None:
        """The switch's position in the source, or ``None`` if it has none."""


class FeatureSwitches:
    """Whether features are on, from a source that may fail, with safe defaults.

    ``source`` is a :class:`FeatureSource` (any callable ``(name) -> bool | None``)
    or a ``Mapping[str, bool]``, read directly each time (a missing name is
    unknown to it). ``safe_defaults`` answers for a feature when the source
    fails or does not know it; a feature in neither is off.

    A callable source's answers (its failures' defaults too) are kept for
    ``refresh_seconds`` (5.0; 0 asks every time), per feature. It is called on
    at most ``source_workers`` (2) daemon threads of these switches' own and
    waited for ``source_timeout_ms`` (50); a call still running is never
    started again, and a caller that finds every worker busy gets the safe
    default at once. A late answer is dropped.

    Thread-safe. A wrong option raises :class:`TypeError` or
    :class:`ValueError` naming it and its value.
    """

    def __init__(
        self,
        source: FeatureSource | Mapping[str, bool],
        *,
        safe_defaults: Mapping[str, bool] | None = None,
        refresh_seconds: float = 5.0,
        source_timeout_ms: float = 50.0,
        source_workers: int = 2,
    ) -> None:
        self._mapping: Mapping[str, bool] | None = None
        self._source: FeatureSource | None = None
        if isinstance(source, Mapping):
            self._mapping = source
        elif callable(source):
            self._source = source
        else:
            raise TypeError(
                "FeatureSwitches source must be a callable (name) -> bool | None "
                f"or a Mapping[str, bool], got {source!r}"
            )
        self._defaults = checked_defaults(safe_defaults)
        check_number("refresh_seconds", refresh_seconds, strictly_positive=False)
        check_number("source_timeout_ms", source_timeout_ms, strictly_positive=True)
        check_workers(source_workers)
        self._refresh = float(refresh_seconds)
        self._timeout = source_timeout_ms / 1000.0
        self._workers = source_workers
        self._lock = threading.Lock()
        self._pool: ThreadPoolBulkhead | None = None
        #: Per feature: its answer and until when it holds (monotonic seconds).
        self._cache: dict[str, tuple[bool, float]] = {}
        self._in_flight: dict[str, SourceCall] = {}
        #: Per feature disabled here: until when (monotonic seconds).
        self._overrides: dict[str, float] = {}
        self._outage_since: float | None = None
        self._outage_failures = 0

    # -- reading -----------------------------------------------------------------

    def is_enabled(self, name: str) -> bool:
        """Whether ``name`` is on: off while disabled here, else the source's answer.

        The safe default answers when the source fails or does not know the
        feature; a feature known to neither is off. Never raises for a failing
        source, and costs a dict read while the answer is cached.
        """
        if self._overrides and self._is_overridden(name):
            return False
        if self._mapping is not None:
            return self._read_mapping(name)
        entry = self._cache.get(name)
        if entry is not None and clock.monotonic() < entry[1]:
            return entry[0]
        return self._ask_source(name)

    def safe_default(self, name: str) -> bool:
        """What ``name`` is when the source cannot say: its safe default, else off."""
        return self._defaults.get(name, False)

    # -- local overrides ---------------------------------------------------------

    def disable(self, name: str, for_seconds: float = 300.0) -> None:
        """Turn ``name`` off in this process for ``for_seconds``, whatever the source says.

        Disabling it again replaces the time left. Logged (INFO ``feature_disabled``).
        """
        if not isinstance(name, str) or not name:
            raise TypeError(f"FeatureSwitches.disable name must be a non-empty str, got {name!r}")
        check_number("for_seconds", for_seconds, strictly_positive=True)
        with self._lock:
            self._overrides[name] = clock.monotonic() + for_seconds
        _log.info("feature_disabled", feature=name, for_seconds=for_seconds)

    def enable_again(self, name: str) -> bool:
        """End ``name``'s local override now; return whether it had one."""
        with self._lock:
            had = self._overrides.pop(name, None) is not None
        if had:
            _log.info("feature_enabled_again", feature=name)
        return had

    def clear_overrides(self) -> None:
        """End every local override now."""
        with self._lock:
            self._overrides.clear()

    def overrides(self) -> dict[str, float]:
        """The features disabled here, each with the seconds it stays so."""
        now = clock.monotonic()
        with self._lock:
            return {name: until - now for name, until in self._overrides.items() if until > now}

    def _is_overridden(self, name: str) -> bool:
        until = self._overrides.get(name)
        if until is None:
            return False
        if clock.monotonic() < until:
            return True
        with self._lock:  # it has run out: forget it, unless disabled again meanwhile
            if self._overrides.get(name) == until:
                del self._overrides[name]
        return False

    # -- the source --------------------------------------------------------------

    def _read_mapping(self, name: str) -> bool:
        mapping = self._mapping
        assert mapping is not None
        try:
            answer = mapping[name]
        except KeyError:
            answer = None
        except Exception as error:  # a mapping backed by something that failed
            return self._resolve(name, None, error)
        if self._outage_since is None:
            if answer is True or answer is False:
                return answer
            if answer is None:
                return self._defaults.get(name, False)
        return self._resolve(name, answer, None)

    def _ask_source(self, name: str) -> bool:
        """The slow path: the cached answer ran out, so ask the source (or join who is asking)."""
        now = clock.monotonic()
        with self._lock:
            entry = self._cache.get(name)
            if entry is not None and now < entry[1]:
                return entry[0]  # another caller has just refreshed it
            call = self._in_flight.get(name)
            if call is not None and call.settled:
                # Still running long after its deadline: not started again meanwhile.
                self._cache[name] = (call.value, now + self._refresh)
                return call.value
            fresh = call is None
            if call is None:
                call = self._in_flight[name] = SourceCall(self, name, now + self._timeout)
        if fresh and not self._worker_pool().try_dispatch(call):
            busy = RejectedError(f"all {self._workers} feature source workers are busy")
            self._finish(call, None, busy)
            return call.value
        if clock.wait(call.done, call.deadline - clock.monotonic()):
            call.done.release()  # for the next caller waiting on the same call
        else:
            late = TimeoutError(
                f"the feature source gave no answer for {name!r} "
                f"within {self._timeout * 1000.0:g} ms"
            )
            self._settle(call, None, late)
        return call.value

    def _call_source(self, call: SourceCall) -> None:
        """Ask the source about ``call``'s feature (on a worker; :class:`SourceCall` calls this)."""
        source = self._source
        assert source is not None
        try:
            answer = call.context.run(source, call.name)
        except BaseException as error:  # every failure of the source is answered with the default
            self._finish(call, None, error)
        else:
            self._finish(call, answer, None)

    def _finish(self, call: SourceCall, answer: object, error: BaseException | None) -> None:
        """``call`` is over: no longer in flight; settle it unless its caller gave up first."""
        with self._lock:
            if self._in_flight.get(call.name) is call:
                del self._in_flight[call.name]
        if not self._settle(call, answer, error):
            _log.debug(
                "feature_source_late_answer_dropped",
                feature=call.name,
                answer=repr(answer),
                error=repr(error),
            )
        call.done.release()

    def _settle(self, call: SourceCall, answer: object, error: BaseException | None) -> bool:
        """Decide ``call``'s value and cache it; ``False`` if it was decided already."""
        now = clock.monotonic()
        with self._lock:
            if call.settled:
                return False
            value, report = self._decide(call.name, answer, error, now)
            call.value = value
            call.settled = True
            self._cache[call.name] = (value, now + self._refresh)
        report()
        return True

    def _resolve(self, name: str, answer: object, error: BaseException | None) -> bool:
        """A mapping's answer, through the outage bookkeeping."""
        with self._lock:
            value, report = self._decide(name, answer, error, clock.monotonic())
        report()
        return value

    def _decide(
        self, name: str, answer: object, error: BaseException | None, now: float
    ) -> tuple[bool, Callable[[], None]]:
        """The value for an answer or a failure, and the log of an outage starting or ending.

        Called under the lock; the report is made after it is released.
        """
        if error is None:
            error = check_answer(name, answer)
        if error is not None:
            self._outage_failures += 1
            if self._outage_since is not None:
                return self.safe_default(name), quiet
            self._outage_since = now
            self._outage_failures = 1
            return self.safe_default(name), Report(
                "feature_source_failed", feature=name, error=repr(error)
            )
        value = self.safe_default(name) if answer is None else bool(answer)
        since = self._outage_since
        if since is None:
            return value, quiet
        self._outage_since = None
        return value, Report(
            "feature_source_recovered",
            feature=name,
            failures=self._outage_failures,
            outage_seconds=round(now - since, 3),
        )

    def _worker_pool(self) -> ThreadPoolBulkhead:
        with self._lock:
            pool = self._pool
            if pool is None:
                sizes = ThreadPoolProperties(core_size=self._workers, maximum_size=self._workers)
                pool = self._pool = ThreadPoolBulkhead("features", sizes)
            return pool

    def close(self) -> None:
        """Stop the source's worker threads (a later lookup starts new ones)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    def __repr__(self) -> str:
        source = self._mapping if self._mapping is not None else self._source
        state = "in outage" if self._outage_since is not None else "healthy"
        return (
            f"<FeatureSwitches source={source!r} cached={len(self._cache)} "
            f"disabled={len(self._overrides)} {state}>"
        )
