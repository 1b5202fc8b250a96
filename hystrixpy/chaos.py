"""Fault injection: make a healthy dependency fail, slow down or hang, on purpose.

::

    import hystrixpy
    from hystrixpy import chaos

    hystrixpy.configure({
        "chaos.command.GetUser.exception_rate": 0.1,     # 10% of GetUser's attempts raise
        "chaos.command.default.latency_ms": 200,         # every command 200 ms slower
    })
    chaos.set_result("GetPrice", {"price": 0}, rate=0.5)  # a replacement result, from code
    with chaos.active(seed=7):                            # nothing is injected until enabled
        ...

Faults are injected where the engine calls run(), once per attempt (inside
the retry policy), so they are real to the engine: an injected exception is
a FAILURE (and is retried as a network error), latency counts in run()'s
time and can make a TIMEOUT, a hang makes a TIMEOUT. Breakers, fallbacks,
metrics and the stream see them as they would see genuine faults.

Nothing is injected until :func:`enable` is called (``configure()`` only
stores the settings), and turning it on is logged at WARNING
(``chaos_enabled``). :func:`hystrixpy.reset` disables it and forgets every
setting. With chaos off the engine pays one attribute check per execution.
See ``docs/chaos.md``.

::

    ConnectionError
     +-- InjectedFault           an injected exception (retried, counted as FAILURE)
    CommandTimeoutError
     +-- InjectedHang            an injected hang ended at the deadline (counted as TIMEOUT)
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Generic, NoReturn, TypeVar, cast

from hystrixpy import _log, clock, deadline
from hystrixpy._chaos_settings import (
    DEFAULT_KEY,
    PREFIX,
    FaultSettings,
    Overrides,
    check_all,
    parse,
    resolve,
)
from hystrixpy.exceptions import CommandTimeoutError

__all__ = [
    "DEFAULT_KEY",
    "KINDS",
    "PREFIX",
    "FaultSettings",
    "InjectedFault",
    "InjectedHang",
    "active",
    "clear",
    "clear_result",
    "disable",
    "enable",
    "enabled",
    "injected",
    "injector",
    "prepare",
    "seed",
    "set_result",
    "settings",
]

T = TypeVar("T")

#: The kinds of fault, as counted by :func:`injected`.
KINDS = ("latency", "hang", "exception", "result")


class InjectedFault(ConnectionError):
    """An exception injected by :mod:`hystrixpy.chaos` in place of a call to run().

    A :class:`ConnectionError`, so retries and the engine treat it as a network failure.
    """


class InjectedHang(CommandTimeoutError):
    """An injected hang, ended at the command's deadline (or after ``hang_ms``).

    A :class:`~hystrixpy.CommandTimeoutError`, so the engine counts it as a TIMEOUT.
    """


class _Injector:
    """The process's fault injector: the switch, the settings and the random source."""

    __slots__ = ("_counts", "_lock", "_overrides", "_release", "_resolved", "_results", "enabled")

    def __init__(self) -> None:
        #: Read by the engine once per execution: nothing else is done while it is false.
        self.enabled = False
        self._lock = threading.Lock()
        self._overrides: Overrides = {}
        self._results: dict[str, tuple[object, float]] = {}
        self._resolved: dict[str, FaultSettings] = {}
        self._counts: dict[str, dict[str, int]] = {}
        # Held while chaos is on; hung attempts wait for it, so disable() ends them at once.
        self._release = threading.Lock()

    # -- the engine's side -----------------------------------------------------

    def wrap(self, command_key: str, run: Callable[[], T]) -> Callable[[], T]:
        """``run`` with the faults of ``command_key`` injected into each call of it."""
        faults = self._resolved.get(command_key)
        if faults is None:
            with self._lock:
                faults = self._resolved[command_key] = resolve(
                    self._overrides, self._results, command_key
                )
        if not faults.injects:
            return run
        return _Faulty(self, command_key, faults, run)

    def count(self, command_key: str, kind: str) -> None:
        """Note one injected fault of ``kind``."""
        with self._lock:
            counts = self._counts.setdefault(command_key, dict.fromkeys(KINDS, 0))
            counts[kind] += 1

    def hang(self, command_key: str, faults: FaultSettings) -> NoReturn:
        """Block until the current deadline (or ``hang_ms``, without one), then raise."""
        until = deadline.current()
        seconds = faults.hang_ms / 1000.0 if until is None else until - clock.monotonic()
        if seconds > 0.0 and clock.wait(self._release, seconds):
            self._release.release()  # chaos was turned off: let the next hung attempt go too
        raise InjectedHang(f"{command_key}: hang injected by hystrixpy.chaos")

    # -- switching -------------------------------------------------------------

    def switch_on(self) -> bool:
        """Turn injection on; ``False`` if it already was."""
        with self._lock:
            if self.enabled:
                return False
            self._release.acquire()
            self.enabled = True
            return True

    def switch_off(self) -> bool:
        """Turn injection off and end every hang; ``False`` if it already was off."""
        with self._lock:
            if not self.enabled:
                return False
            self.enabled = False
            self._release.release()
            return True

    # -- settings --------------------------------------------------------------

    def replace(self, overrides: Overrides, results: dict[str, tuple[object, float]]) -> None:
        """Install checked settings (the resolutions cached so far are dropped)."""
        with self._lock:
            self._overrides = overrides
            self._results = results
            self._resolved = {}

    def snapshot(self) -> tuple[Overrides, dict[str, tuple[object, float]]]:
        """Copies of the current overrides and replacement results."""
        with self._lock:
            return dict(self._overrides), dict(self._results)

    def counts(self) -> dict[str, dict[str, int]]:
        """A copy of the injection counts by key."""
        with self._lock:
            return {key: dict(counts) for key, counts in self._counts.items()}

    def forget(self) -> None:
        """Forget every setting and count."""
        self.replace({}, {})
        with self._lock:
            self._counts = {}


class _Faulty(Generic[T]):
    """One execution's run(), with faults injected into each attempt."""

    __slots__ = ("command_key", "faults", "injector", "run")

    def __init__(
        self, injector: _Injector, command_key: str, faults: FaultSettings, run: Callable[[], T]
    ) -> None:
        self.injector = injector
        self.command_key = command_key
        self.faults = faults
        self.run = run

    def __repr__(self) -> str:
        """Named as the run() it wraps, so the retry loop's logs read as without chaos."""
        name = getattr(self.run, "__qualname__", None)
        return name if isinstance(name, str) else repr(self.run)

    def __call__(self) -> T:
        """One attempt: perhaps a delay, then perhaps a fault instead of run()."""
        injector, faults, key = self.injector, self.faults, self.command_key
        if not injector.enabled:  # turned off since the execution began
            return self.run()
        rate = faults.latency_rate
        if faults.latency_ms > 0.0 and rate > 0.0 and (rate >= 1.0 or _random.random() < rate):
            injector.count(key, "latency")
            clock.sleep(faults.latency_ms / 1000.0)
        if faults.fault_rate > 0.0:
            drawn = _random.random()
            if drawn < faults.hang_rate:
                injector.count(key, "hang")
                injector.hang(key, faults)
            if drawn < faults.hang_rate + faults.exception_rate:
                injector.count(key, "exception")
                raise InjectedFault(f"{key}: exception injected by hystrixpy.chaos")
            if drawn < faults.fault_rate:
                injector.count(key, "result")
                return cast(T, faults.result)
        return self.run()


#: The process's fault injector. The engine reads ``injector.enabled`` once per
#: execution and calls ``injector.wrap()`` only while it is true.
injector = _Injector()
_random = random.Random()


def enable(*, seed: int | None = None) -> None:
    """Start injecting the configured faults (logged at WARNING ``chaos_enabled``).

    ``seed`` reseeds the random source first (see :func:`seed`).
    """
    if seed is not None:
        _random.seed(seed)
    if injector.switch_on():
        overrides, results = injector.snapshot()
        _log.warning(
            "chaos_enabled",
            settings={
                f"{PREFIX}command.{key}.{name}": value for (key, name), value in overrides.items()
            },
            results={key: rate for key, (_, rate) in results.items()},
        )


def disable() -> None:
    """Stop injecting faults; hung attempts end at once (logged at INFO ``chaos_disabled``).

    The settings are kept, for the next :func:`enable`.
    """
    if injector.switch_off():
        _log.info("chaos_disabled")


def enabled() -> bool:
    """Whether faults are being injected."""
    return injector.enabled


def seed(value: int | None) -> None:
    """Reseed the random source that decides which attempts get a fault (``None``: unseeded).

    The same seed, settings and sequence of attempts give the same faults.
    """
    _random.seed(value)


@contextmanager
def active(
    settings: Mapping[str, object] | None = None, *, seed: int | None = None
) -> Iterator[None]:
    """Inject faults for the block: ``with chaos.active({...}, seed=1): ...``.

    ``settings`` (``chaos.*`` names, as for :func:`hystrixpy.configure`) apply for
    the block only; the previous settings and on/off state come back afterwards.
    """
    saved = injector.snapshot()
    was_enabled = injector.enabled
    if settings is not None:
        prepare(settings)()
    try:
        enable(seed=seed)
        yield
    finally:
        if not was_enabled:
            disable()
        if settings is not None:
            injector.replace(*saved)


def prepare(settings: Mapping[str, object]) -> Callable[[], None]:
    """Check ``chaos.*`` settings; return what installs them (nothing changes before).

    :func:`hystrixpy.configure` calls it for the names that start with ``chaos.``,
    so a mistake anywhere leaves every setting as it was. A value of ``None``
    removes an override. Raises ``ValueError`` naming a bad name or value.
    """
    overrides, results = injector.snapshot()
    for name_key, value in parse(settings).items():
        if value is None:
            overrides.pop(name_key, None)
        else:
            overrides[name_key] = value
    check_all(overrides, results)

    def install() -> None:
        injector.replace(overrides, results)

    return install


def set_result(command_key: str, value: object, *, rate: float = 1.0) -> None:
    """Return ``value`` instead of calling run() for ``rate`` of ``command_key``'s attempts.

    ``command_key`` may be ``"default"`` (every key without a result of its own).
    Results are set in code only, since configured values are strings.
    """
    if not isinstance(command_key, str) or not command_key:
        raise ValueError(f"command_key must be a non-empty string, got {command_key!r}")
    if isinstance(rate, bool) or not isinstance(rate, (int, float)):
        raise ValueError(f"rate must be a number from 0 to 1, got {rate!r}")
    overrides, results = injector.snapshot()
    results[command_key] = (value, float(rate))
    check_all(overrides, results)
    injector.replace(overrides, results)


def clear_result(command_key: str) -> None:
    """Stop replacing ``command_key``'s result (nothing happens if it had none)."""
    overrides, results = injector.snapshot()
    results.pop(command_key, None)
    injector.replace(overrides, results)


def settings(command_key: str = DEFAULT_KEY) -> FaultSettings:
    """The fault settings in force for ``command_key`` (its own over the default's)."""
    overrides, results = injector.snapshot()
    return resolve(overrides, results, command_key)


def injected(command_key: str) -> dict[str, int]:
    """How many faults of each kind were injected into ``command_key`` (see :data:`KINDS`)."""
    return injector.counts().get(command_key, dict.fromkeys(KINDS, 0))


def clear() -> None:
    """Disable chaos and forget every setting, result and count (:func:`hystrixpy.reset`).

    The random source is left unseeded.
    """
    disable()
    injector.forget()
    _random.seed(None)
