"""Helpers of the chaos suite: a caller on its own thread, and a short real wait for a condition."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

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


class Caller(Generic[T]):
    """Calls ``call`` on a thread of its own and keeps what it returned or raised."""

    def __init__(self, call: Callable[[], T]) -> None:
        self._call = call
        self._value: T | None = None
        self._error: BaseException | None = None
        self.thread = threading.Thread(target=self._main, daemon=True)
        self.thread.start()

    def _main(self) -> None:
        try:
            self._value = self._call()
        except BaseException as error:  # handed to the test by outcome()
            self._error = error

    def outcome(self) -> T:
        """Wait (at most 5 s) for the call and return its value or raise its error."""
        self.thread.join(5)
        assert not self.thread.is_alive(), "the caller is still blocked"
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]


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
