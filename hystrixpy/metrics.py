"""Per-command-key metrics: rolling and cumulative event counts, health and concurrency.

:class:`CommandMetrics` reads the events of each
:class:`~hystrixpy.events.ExecutionResult` and nothing else. Everything it
records is O(1) and held in a fixed
number of buckets, under one lock taken once per execution.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from hystrixpy import clock
from hystrixpy.events import HEALTH_ERRORS, HEALTH_TOTAL, EventType
from hystrixpy.properties import CommandProperties
from hystrixpy.rolling import RollingCounter, RollingMax

__all__ = ["CommandMetrics", "HealthCounts"]

_EVENT_KINDS = len(EventType)
_TOTAL, _ERRORS = 0, 1
# Per event index: what it adds to (total, errors) of the health counts.
_HEALTH_WEIGHT = [
    (1 if event in HEALTH_TOTAL else 0, 1 if event in HEALTH_ERRORS else 0) for event in EventType
]


@dataclass(frozen=True, slots=True)
class HealthCounts:
    """The breaker's view of the rolling window: requests, errors, and their ratio."""

    total_requests: int
    error_count: int

    @property
    def error_percentage(self) -> int:
        """``int(errors / total * 100)``, and 0 when there were no requests."""
        if self.total_requests == 0:
            return 0
        return int(self.error_count / self.total_requests * 100)


class CommandMetrics:
    """Counts of what happened to one command key, over a rolling window and in total."""

    def __init__(
        self,
        command_key: str,
        group_key: str,
        thread_pool_key: str,
        properties: CommandProperties,
    ) -> None:
        self.command_key = command_key
        self.group_key = group_key
        self.thread_pool_key = thread_pool_key
        self._lock = threading.Lock()
        self._cumulative = [0] * _EVENT_KINDS
        self._concurrent = 0
        self._window = (-1, -1)
        self._events: RollingCounter
        self._health: RollingCounter
        self._peak_concurrency: RollingMax
        self.reconfigure(properties)

    def reconfigure(self, properties: CommandProperties) -> None:
        """Adopt new window settings; a changed window starts empty."""
        window = (
            properties.metrics_rolling_stats_time_ms,
            properties.metrics_rolling_stats_num_buckets,
        )
        if window == self._window:
            return
        with self._lock:
            self._window = window
            self._events = RollingCounter(_EVENT_KINDS, *window)
            self._health = RollingCounter(2, *window)
            self._peak_concurrency = RollingMax(*window)

    # -- recording (hot path) ------------------------------------------------

    def run_started(self, now: float) -> None:
        """Note that a run() began; it counts as concurrent until :meth:`run_finished`."""
        with self._lock:
            self._concurrent += 1
            self._peak_concurrency.update(self._concurrent, now)

    def run_finished(self) -> None:
        """Note that a run() returned or raised."""
        with self._lock:
            self._concurrent -= 1

    def record(self, events: list[EventType], now: float, *, run_finished: bool = False) -> None:
        """Count ``events`` of one execution (and end its run, if asked)."""
        indexes = [event.index for event in events]
        total = errors = 0
        for index in indexes:
            weight = _HEALTH_WEIGHT[index]
            total += weight[0]
            errors += weight[1]
        with self._lock:
            if run_finished:
                self._concurrent -= 1
            self._events.add_each(indexes, now)
            cumulative = self._cumulative
            for index in indexes:
                cumulative[index] += 1
            if total:
                health = self._health
                health.add(_TOTAL, now, total)
                if errors:
                    health.add(_ERRORS, now, errors)

    def reset_health(self) -> None:
        """Start the health counts afresh (when a circuit closes)."""
        with self._lock:
            self._health.reset()

    # -- reading -------------------------------------------------------------

    def health_counts(self, now: float | None = None) -> HealthCounts:
        """Requests and errors over the rolling window, as the breaker sees them."""
        when = clock.monotonic() if now is None else now
        with self._lock:
            totals = self._health.totals(when)
        return HealthCounts(total_requests=totals[_TOTAL], error_count=totals[_ERRORS])

    def rolling_count(self, event: EventType) -> int:
        """How often ``event`` happened within the rolling window."""
        now = clock.monotonic()
        with self._lock:
            return self._events.total(event.index, now)

    def cumulative_count(self, event: EventType) -> int:
        """How often ``event`` happened since this key's metrics were created."""
        return self._cumulative[event.index]

    @property
    def current_concurrent_execution_count(self) -> int:
        """How many run() calls of this key are executing right now."""
        return self._concurrent

    @property
    def rolling_max_concurrent_executions(self) -> int:
        """The most run() calls of this key executing at once within the window."""
        now = clock.monotonic()
        with self._lock:
            return self._peak_concurrency.max(now)

    @property
    def rolling_window_ms(self) -> int:
        """The rolling window's length in milliseconds."""
        return self._window[0]

    def __repr__(self) -> str:
        return f"CommandMetrics({self.command_key!r})"
