"""A daemon thread that calls functions at deadlines on the installed clock.

Used by :meth:`Command.queue` so its future times out even when run() never
returns. Scheduling is O(log n); cancelling is O(1) (the entry is skipped).
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections.abc import Callable

from hystrixpy import _log, clock

__all__ = ["DeadlineTimer", "TimerEntry"]

_IDLE_WAIT = 3600.0


class TimerEntry:
    """A scheduled call; :meth:`cancel` stops it from running if it has not yet."""

    __slots__ = ("callback", "cancelled", "deadline", "order")

    def __init__(self, deadline: float, order: int, callback: Callable[[], None]) -> None:
        self.deadline = deadline
        self.order = order
        self.callback = callback
        self.cancelled = False

    def __lt__(self, other: TimerEntry) -> bool:
        return (self.deadline, self.order) < (other.deadline, other.order)

    def cancel(self) -> None:
        """Do not run this entry."""
        self.cancelled = True


class DeadlineTimer:
    """Runs callbacks at their deadlines, one at a time, on one daemon thread."""

    def __init__(self, name: str = "hystrix-timer") -> None:
        self._name = name
        self._lock = threading.Lock()
        self._entries: list[TimerEntry] = []
        self._order = itertools.count()
        # Unlocked means "look at the entries again"; the thread re-locks it on waking.
        self._wake = threading.Lock()
        self._wake.acquire()
        self._thread: threading.Thread | None = None
        self._stopped = False

    def schedule(self, deadline: float, callback: Callable[[], None]) -> TimerEntry:
        """Call ``callback`` once the clock reaches ``deadline`` (monotonic seconds)."""
        entry = TimerEntry(deadline, next(self._order), callback)
        with self._lock:
            heapq.heappush(self._entries, entry)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
                self._thread.start()
            if self._entries[0] is entry and self._wake.locked():
                self._wake.release()
        return entry

    def stop(self) -> None:
        """End the thread; entries not yet due are dropped."""
        with self._lock:
            self._stopped = True
            self._entries.clear()
            if self._wake.locked():
                self._wake.release()

    def _next_due(self) -> tuple[TimerEntry | None, float]:
        """Pop the next due entry, or say how long to wait for one."""
        with self._lock:
            entries = self._entries
            while entries and entries[0].cancelled:
                heapq.heappop(entries)
            if not entries:
                return None, _IDLE_WAIT
            wait = entries[0].deadline - clock.monotonic()
            if wait > 0:
                return None, wait
            return heapq.heappop(entries), 0.0

    def _loop(self) -> None:
        while not self._stopped:
            entry, wait = self._next_due()
            if entry is None:
                clock.wait(self._wake, wait)
                continue
            try:
                entry.callback()
            except Exception as error:  # a bug in a callback must not stop every other timeout
                _log.error("timer_callback_failed", error=repr(error))
