"""Helpers of the chaos suite: a caller on its own thread, and a short real wait for a condition."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

from hystrixpy.testing import FakeClock

T = TypeVar("T")


def wait_until(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    """Wait (really, in 1 ms steps) until ``condition()`` holds; fail after ``seconds``."""
    pause = threading.Event()
    for _ in range(int(seconds * 1000)):
        if condition():
            return
        pause.wait(0.001)
    raise AssertionError(f"{condition} did not come true within {seconds} s")


class InstantClock(FakeClock):
    """A fake clock on which sleeps and timed waits take no real time: they move it on.

    For single-threaded tests of latency and hangs on the caller's thread.
    """

    def __init__(self) -> None:
        super().__init__(sleep_advances=True)

    def wait(self, lock: threading.Lock, timeout: float) -> bool:
        """Acquire ``lock`` if it is free; otherwise let ``timeout`` pass at once and give up."""
        if lock.acquire(False):
            return True
        self.advance(max(timeout, 0.0))
        return False
