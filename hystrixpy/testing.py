"""Helpers for testing code that uses hystrixpy: a fake clock and a clean slate.

::

    from hystrixpy.testing import FakeClock, isolated

    def test_breaker_recovers():
        with isolated() as clock:          # fresh registry, fake clock installed
            ...                            # trip the breaker
            clock.advance(5.0)             # the sleep window passes, no real waiting
            ...

``FakeClock`` time moves only when :meth:`FakeClock.advance` is called. Work
blocked in :meth:`FakeClock.wait` (a caller waiting for its deadline, the
timer of queued commands) wakes as soon as fake time reaches its deadline.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from hystrixpy import clock, registry

__all__ = ["FakeClock", "isolated", "use_clock"]

# How often a waiter looks at fake time again, in real seconds. Only waits on a
# fake clock poll; the real clock never does.
_POLL_INTERVAL = 0.001


class FakeClock:
    """A clock whose time moves only when told to; follows :class:`hystrixpy.clock.Clock`.

    By default :meth:`sleep` blocks until another thread advances time. With
    ``sleep_advances=True`` a sleep moves time on by its own length at once, for
    single-threaded tests of code that sleeps (retries). Either way ``sleeps``
    lists the seconds of every :meth:`sleep` call, in order.
    """

    def __init__(
        self,
        start: float = 1000.0,
        wall_start: float = 1_700_000_000.0,
        *,
        sleep_advances: bool = False,
    ) -> None:
        self._lock = threading.Lock()
        self._now = start
        self._wall_offset = wall_start - start
        self._sleep_advances = sleep_advances
        #: The seconds asked of each sleep() call so far, in order.
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        """The fake monotonic time, in seconds."""
        return self._now

    def wall_time(self) -> float:
        """Fake epoch seconds, moving with :meth:`monotonic`."""
        return self._now + self._wall_offset

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds`` (which must not be negative)."""
        if seconds < 0:
            raise ValueError(f"a clock cannot go back: advance({seconds!r})")
        with self._lock:
            self._now += seconds

    def advance_ms(self, milliseconds: float) -> None:
        """Move time forward by ``milliseconds``."""
        self.advance(milliseconds / 1000.0)

    def wait(self, lock: threading.Lock, timeout: float) -> bool:
        """Acquire ``lock``, or give up once fake time has moved ``timeout`` seconds on."""
        deadline = self._now + timeout
        while True:
            if lock.acquire(True, _POLL_INTERVAL):
                return True
            if self._now >= deadline:
                return lock.acquire(False)

    def sleep(self, seconds: float) -> None:
        """Block until fake time has moved ``seconds`` on (someone else must advance it).

        With ``sleep_advances=True``, move time on by ``seconds`` and return at once.
        """
        self.sleeps.append(seconds)
        if self._sleep_advances:
            self.advance(seconds)
            return
        never_released = threading.Lock()
        never_released.acquire()
        self.wait(never_released, seconds)

    def __repr__(self) -> str:
        return f"FakeClock(monotonic={self._now!r})"


@contextmanager
def use_clock(fake: clock.Clock) -> Iterator[clock.Clock]:
    """Install ``fake`` as hystrixpy's clock for the duration of the block."""
    previous = clock.set_clock(fake)
    try:
        yield fake
    finally:
        clock.set_clock(previous)


@contextmanager
def isolated(fake: FakeClock | None = None) -> Iterator[FakeClock]:
    """A fresh registry and a fake clock for the block; both are reset afterwards."""
    registry.reset()
    chosen = FakeClock() if fake is None else fake
    try:
        with use_clock(chosen):
            yield chosen
    finally:
        registry.reset()
