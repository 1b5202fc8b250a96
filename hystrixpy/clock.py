"""The one place in hystrixpy that reads time.

Every component asks this module for the time instead of calling :mod:`time`
itself, so tests can control time in two ways:

* freezegun: :class:`SystemClock` reads ``time.monotonic()`` and ``time.time()``
  at call time, so a frozen or ticking freezegun clock is seen everywhere;
* a fake clock: :func:`set_clock` installs any object that follows the
  :class:`Clock` protocol, such as :class:`hystrixpy.testing.FakeClock`.

Blocking waits go through the clock as well (:meth:`Clock.wait`), so a fake
clock decides when a timeout has passed.
"""

from __future__ import annotations

import datetime
import sys
import threading
import time
from collections.abc import Callable
from typing import Protocol

__all__ = [
    "Clock",
    "SystemClock",
    "get_clock",
    "monotonic",
    "set_clock",
    "sleep",
    "wait",
    "wall_time",
]


class Clock(Protocol):
    """What hystrixpy needs from a clock: two readings and a timed wait."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards (for durations)."""

    def wall_time(self) -> float:
        """Seconds since the Unix epoch (for timestamps shown to people)."""

    def wait(self, lock: threading.Lock, timeout: float) -> bool:
        """Acquire ``lock``, giving up once ``timeout`` seconds of this clock pass.

        Returns whether the lock was acquired.
        """

    def sleep(self, seconds: float) -> None:
        """Block the calling thread for ``seconds`` of this clock."""


class SystemClock:
    """The real clock: :func:`time.monotonic`, :func:`time.time` and real waits."""

    __slots__ = ()

    def monotonic(self) -> float:
        """Read ``time.monotonic()`` (looked up at call time, so freezegun applies)."""
        return time.monotonic()

    def wall_time(self) -> float:
        """Read ``time.time()``."""
        return time.time()

    def wait(self, lock: threading.Lock, timeout: float) -> bool:
        """Acquire ``lock`` with a real timeout."""
        return lock.acquire(True, max(timeout, 0.0))

    def sleep(self, seconds: float) -> None:
        """Sleep for real; while freezegun is active, move its frozen time on instead.

        freezegun leaves ``time.sleep`` alone, so a sleep under a frozen clock would
        wait for real and see no time pass. Instead the innermost freeze is ticked
        by ``seconds``. freezegun is never imported here: it is active only if the
        test imported it and started a freeze.
        """
        api = sys.modules.get("freezegun.api")
        if api is not None and api.freeze_factories and seconds >= 0:
            if seconds > 0:
                factory = api.freeze_factories[-1]
                if isinstance(factory, api.TickingDateTimeFactory):
                    # Its tick() counts from where the freeze began, dropping the time since.
                    factory.move_to(factory() + datetime.timedelta(seconds=seconds))
                else:
                    factory.tick(seconds)
            return
        time.sleep(seconds)

    def __repr__(self) -> str:
        return "SystemClock()"


_clock: Clock = SystemClock()


def _readers(installed: Clock) -> tuple[Callable[[], float], Callable[[], float]]:
    """The module-level readers for ``installed``: for the system clock, time's own.

    Reading ``time.monotonic`` itself saves a Python call per reading. freezegun
    still applies: it replaces every module attribute that holds one of time's
    functions while it is active (this module's too), and its replacements read
    the real time once it stops.
    """
    if type(installed) is SystemClock:
        return time.monotonic, time.time
    return installed.monotonic, installed.wall_time


# The module-level readers, rebound by set_clock(), so a reading costs one call (for the
# system clock, a call of time's own function). Call them as ``clock.monotonic()``
# (through the module) so the rebinding is seen.
#: Seconds on the installed clock's monotonic scale.
monotonic: Callable[[], float]
#: Seconds since the epoch, from the installed clock.
wall_time: Callable[[], float]
monotonic, wall_time = _readers(_clock)
#: Acquire a lock within a timeout of the installed clock; returns whether it was acquired.
wait: Callable[[threading.Lock, float], bool] = _clock.wait
#: Sleep on the installed clock.
sleep: Callable[[float], None] = _clock.sleep


def set_clock(clock: Clock | None) -> Clock:
    """Install ``clock`` for the whole process (``None`` restores the system clock).

    Returns the clock that was installed before, so callers can put it back.
    """
    global _clock, monotonic, wall_time, wait, sleep
    previous = _clock
    _clock = SystemClock() if clock is None else clock
    monotonic, wall_time = _readers(_clock)
    wait = _clock.wait
    sleep = _clock.sleep
    return previous


def get_clock() -> Clock:
    """Return the clock in use."""
    return _clock
