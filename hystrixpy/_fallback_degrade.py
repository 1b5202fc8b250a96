"""The machinery of :func:`hystrixpy.fallback.degrade`: checking, starting and waiting for parts.

Every part is started before any is waited for. The caller then sleeps on
hystrixpy's clock (so a fake clock decides when an optional part is late),
woken by each part's future as it completes, and looks at every part still
pending each time it wakes: a done part is settled, a part past its limit
is timed out, and the rest are waited for again, up to the nearest limit.
"""

from __future__ import annotations

import keyword
import math
import threading
from collections.abc import Mapping
from concurrent.futures import Future
from typing import Any, TypeAlias

from hystrixpy import _log, clock
from hystrixpy._fallback_result import RESERVED_NAMES, Degradation, DegradeResult
from hystrixpy.command import Command
from hystrixpy.exceptions import CommandTimeoutError

__all__ = ["Part", "run_degrade"]

#: What :func:`~hystrixpy.fallback.degrade` accepts as a part.
Part: TypeAlias = Command[Any] | Future[Any]

# How long to wait, in seconds, when no pending part has a limit (waking up is harmless).
_IDLE_WAIT = 3600.0


class _Part:
    """One part: where its answer comes from and how long it may be waited for."""

    __slots__ = ("command", "critical", "future", "name", "source", "until")

    def __init__(self, name: str, source: Part, *, critical: bool) -> None:
        self.name = name
        self.source = source
        self.critical = critical
        self.command: Command[Any] | None = source if isinstance(source, Command) else None
        self.future: Future[Any] | None = None
        #: When to give up waiting (monotonic seconds), or ``None`` to wait for the outcome.
        self.until: float | None = None


class _Wakeup:
    """A lock each part's future releases as it completes; the caller waits on it."""

    __slots__ = ("_mutex", "signal")

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self.signal = threading.Lock()
        self.signal.acquire()

    def __call__(self, _future: Future[Any]) -> None:
        with self._mutex:  # two futures completing at once must not both release
            if self.signal.locked():
                self.signal.release()


def run_degrade(
    critical: Mapping[str, object],
    optional: Mapping[str, object],
    defaults: Mapping[str, object],
    *,
    timeout_ms: float | None,
    grace_ms: float,
) -> DegradeResult:
    """Check everything, start every part and collect them (:func:`~hystrixpy.fallback.degrade`)."""
    _check_limits(timeout_ms, grace_ms)
    parts = _parts(critical, optional, defaults, timeout_ms)
    wakeup = _Wakeup()
    try:
        _start(parts, wakeup, timeout_ms, grace_ms)
        return _collect(parts, wakeup, defaults, timeout_ms, grace_ms)
    except BaseException:
        _cancel_pending(parts)
        raise


# -- checks, before anything starts -------------------------------------------------


def _check_limits(timeout_ms: object, grace_ms: object) -> None:
    for option, value, may_be_none, minimum in (
        ("timeout_ms", timeout_ms, True, None),
        ("grace_ms", grace_ms, False, 0.0),
    ):
        if value is None and may_be_none:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"degrade() {option} must be a number, got {value!r}")
        if not math.isfinite(value) or (value <= 0 if minimum is None else value < minimum):
            bound = "> 0" if minimum is None else ">= 0"
            raise ValueError(f"degrade() {option} must be finite and {bound}, got {value!r}")


def _parts(
    critical: Mapping[str, object],
    optional: Mapping[str, object],
    defaults: Mapping[str, object],
    timeout_ms: float | None,
) -> list[_Part]:
    """The parts, critical ones first, each checked."""
    for option, value in (("optional", optional), ("defaults", defaults)):
        if not isinstance(value, Mapping):
            raise TypeError(f"degrade() {option} must be a mapping of names, got {value!r}")
    if not critical and not optional:
        raise ValueError(
            "degrade() needs at least one part: critical parts as keyword arguments, "
            "or optional ones in optional={...}"
        )
    parts = [_part(name, source, critical=True) for name, source in critical.items()]
    for name, source in optional.items():
        if name in critical:
            raise ValueError(f"degrade() part {name!r} is given as both critical and optional")
        parts.append(_part(name, source, critical=False))
    _check_defaults(critical, optional, defaults)
    seen: dict[int, str] = {}
    for part in parts:
        earlier = seen.setdefault(id(part.source), part.name)
        if earlier != part.name:
            raise ValueError(
                f"degrade() parts {earlier!r} and {part.name!r} are the same object; "
                "a command runs once: give each part its own instance"
            )
        if not part.critical and part.command is None and timeout_ms is None:
            raise ValueError(
                f"degrade() optional part {part.name!r} is a Future, which has no deadline "
                "of its own: say how long to wait for it with timeout_ms=..."
            )
    return parts


def _part(name: object, source: object, *, critical: bool) -> _Part:
    if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
        raise ValueError(
            f"degrade() part name {name!r} must be a Python identifier "
            "(it becomes an attribute of the result)"
        )
    if name.startswith("_") or name in RESERVED_NAMES:
        raise ValueError(
            f"degrade() part name {name!r} clashes with the result's own attributes: "
            f"a name must not start with '_' nor be one of {', '.join(sorted(RESERVED_NAMES))}"
        )
    if isinstance(source, type) and issubclass(source, Command):
        raise TypeError(
            f"degrade() part {name!r} is the command class {source.__name__}: "
            f"pass an instance, {source.__name__}(...)"
        )
    if not isinstance(source, (Command, Future)):
        raise TypeError(
            f"degrade() part {name!r} must be a Command instance or a "
            f"concurrent.futures.Future, got {source!r}; run a plain function as a command "
            "(@command gives it .queue()) or submit it to an executor"
        )
    return _Part(name, source, critical=critical)


def _check_defaults(
    critical: Mapping[str, object], optional: Mapping[str, object], defaults: Mapping[str, object]
) -> None:
    for name in defaults:
        if name in critical:
            raise ValueError(
                f"degrade() defaults has {name!r}, a critical part: a critical part has no "
                "default, its failure raises (make it optional to degrade it)"
            )
        if name not in optional:
            raise ValueError(f"degrade() defaults has {name!r}, which is not an optional part")
    missing = [name for name in optional if name not in defaults]
    if missing:
        raise ValueError(
            f"degrade() optional part(s) {', '.join(map(repr, missing))} have no default: "
            "add each to defaults={...} (or make it critical)"
        )


# -- running ------------------------------------------------------------------------


def _start(parts: list[_Part], wakeup: _Wakeup, timeout_ms: float | None, grace_ms: float) -> None:
    """Queue every command and watch every future; stop at a critical part that failed already.

    A part with a deadline of its own may be waited for until ``grace_ms``
    after it (optional parts; a critical command is waited for until it
    answers, which it does by its deadline plus its fallback's time). A part
    without one may be waited for ``timeout_ms``, if given.
    """
    started = clock.monotonic()
    for part in parts:
        source = part.source
        if isinstance(source, Command):
            future = source.queue()
            remaining = source.remaining_time()
        else:
            future = source
            remaining = None
        part.future = future
        if remaining is not None:
            if not part.critical:
                # Read after remaining_time(), so the limit may fall late, never early.
                part.until = clock.monotonic() + remaining + grace_ms / 1000.0
        elif timeout_ms is not None:
            part.until = started + timeout_ms / 1000.0
        future.add_done_callback(wakeup)
        if part.critical and future.done():
            _outcome(part, future)  # raises if it failed: later parts are not started


def _collect(
    parts: list[_Part],
    wakeup: _Wakeup,
    defaults: Mapping[str, object],
    timeout_ms: float | None,
    grace_ms: float,
) -> DegradeResult:
    """Wait for the parts together; settle each as it completes or runs out of time."""
    values: dict[str, Any] = {}
    errors: dict[str, Degradation] = {}
    pending = parts
    while pending:
        now = clock.monotonic()
        waiting: list[_Part] = []
        for part in pending:
            future = part.future
            assert future is not None
            if future.done():
                error, value = _outcome(part, future)
                if error is None:
                    values[part.name] = value
                    continue
                degradation = Degradation("failed", error)
            elif part.until is not None and now >= part.until:
                degradation = Degradation("timed out", _late(part, timeout_ms, grace_ms))
                if part.critical:
                    raise degradation.error
            else:
                waiting.append(part)
                continue
            values[part.name] = defaults[part.name]
            errors[part.name] = degradation
            _log.info(
                "part_degraded",
                part=part.name,
                reason=degradation.reason,
                error=repr(degradation.error),
            )
        pending = waiting
        if pending:
            limits = [part.until for part in pending if part.until is not None]
            clock.wait(wakeup.signal, min(limits) - now if limits else _IDLE_WAIT)
    order = [part.name for part in parts]
    return DegradeResult(
        {name: values[name] for name in order},
        {name: errors[name] for name in order if name in errors},
        tuple(
            part.name
            for part in parts
            if part.command is not None and part.command.is_response_from_fallback
        ),
    )


def _outcome(part: _Part, future: Future[Any]) -> tuple[Exception | None, Any]:
    """A done part's (error, value); a critical part's error, or any non-Exception, is raised."""
    try:
        return None, future.result(timeout=0)
    except Exception as error:
        if part.critical:
            raise
        return error, None


def _late(part: _Part, timeout_ms: float | None, grace_ms: float) -> CommandTimeoutError:
    """The error recorded for a part that had no answer in time."""
    kind = "critical" if part.critical else "optional"
    if part.command is not None and part.command.remaining_time() is not None:
        return CommandTimeoutError(
            f"{kind} part {part.name!r} ({part.command.command_key}) had no answer "
            f"{grace_ms:g} ms after its deadline"
        )
    return CommandTimeoutError(f"{kind} part {part.name!r} had no answer within {timeout_ms:g} ms")


def _cancel_pending(parts: list[_Part]) -> None:
    """Cancel the parts' futures that have not started (a running command cannot be stopped)."""
    for part in parts:
        if part.future is not None and not part.future.done():
            part.future.cancel()
