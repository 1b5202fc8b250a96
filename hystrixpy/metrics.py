"""Per-command-key metrics: rolling and cumulative event counts, health and concurrency.

:class:`CommandMetrics` reads the events of each
:class:`~hystrixpy.events.ExecutionResult` and nothing else. Everything it
records is O(1) and held in a fixed number of buckets, under one lock taken
once per execution.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from hystrixpy import clock
from hystrixpy.events import HEALTH_ERRORS, HEALTH_TOTAL, EventType
from hystrixpy.properties import CommandProperties
from hystrixpy.rolling import RollingCounter

__all__ = ["CommandMetrics", "HealthCounts"]

_EVENT_KINDS = len(EventType)
_HEALTH_TOTAL_KIND, _HEALTH_ERRORS_KIND = _EVENT_KINDS, _EVENT_KINDS + 1
# Per event index: the counter kinds one such event adds to (itself, then health total/errors).
_KINDS_OF: list[list[int]] = [
    [event.index]
    + ([_HEALTH_TOTAL_KIND] if event in HEALTH_TOTAL else [])
    + ([_HEALTH_ERRORS_KIND] if event in HEALTH_ERRORS else [])
    for event in EventType
]


def _window_of(properties: CommandProperties) -> tuple[int, int]:
    return (
        properties.metrics_rolling_stats_time_ms,
        properties.metrics_rolling_stats_num_buckets,
    )


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
        # One token per run() executing now: list appends and pops are atomic, so no lock.
        self._running: list[None] = []
        self._window = _window_of(properties)
        # Event counts, then the breaker's health counts (total, errors), in one window.
        self._rolling = RollingCounter(_EVENT_KINDS + 2, *self._window)

    def reconfigure(self, properties: CommandProperties) -> None:
        """Adopt new window settings; a changed window starts empty."""
        window = _window_of(properties)
        if window == self._window:
            return
        with self._lock:
            self._window = window
            rolling = RollingCounter(_EVENT_KINDS + 2, *window)
            rolling.carry_cumulative(self._rolling)
            self._rolling = rolling

    # -- recording (hot path) ------------------------------------------------

    def run_started(self, now: float) -> int:
        """Note that a run() began; return how many of this key's run() calls are executing."""
        running = self._running
        running.append(None)
        concurrency = len(running)
        if self._rolling.would_raise_peak(concurrency, now):
            with self._lock:
                self._rolling.raise_peak(concurrency, now)
        return concurrency

    def run_finished(self) -> None:
        """Note that a run() returned or raised."""
        self._running.pop()

    def record(
        self,
        events: list[EventType],
        now: float,
        *,
        run_finished: bool = False,
        concurrency: int = 0,
    ) -> None:
        """Count ``events`` of one execution; end its run() and note its concurrency if given."""
        if run_finished:
            self._running.pop()
        if len(events) == 1:
            kinds = _KINDS_OF[events[0].index]
        else:
            kinds = [kind for event in events for kind in _KINDS_OF[event.index]]
        with self._lock:
            self._rolling.add_each(kinds, now, concurrency)

    def reset_health(self) -> None:
        """Start the health counts afresh (when a circuit closes)."""
        with self._lock:
            self._rolling.reset((_HEALTH_TOTAL_KIND, _HEALTH_ERRORS_KIND))

    # -- reading -------------------------------------------------------------

    def health_counts(self, now: float | None = None) -> HealthCounts:
        """Requests and errors over the rolling window, as the breaker sees them."""
        when = clock.monotonic() if now is None else now
        with self._lock:
            totals = self._rolling.totals(when)
        return HealthCounts(
            total_requests=totals[_HEALTH_TOTAL_KIND], error_count=totals[_HEALTH_ERRORS_KIND]
        )

    def rolling_count(self, event: EventType) -> int:
        """How often ``event`` happened within the rolling window."""
        now = clock.monotonic()
        with self._lock:
            return self._rolling.total(event.index, now)

    def cumulative_count(self, event: EventType) -> int:
        """How often ``event`` happened since this key's metrics were created."""
        with self._lock:
            return self._rolling.cumulative(event.index)

    @property
    def current_concurrent_execution_count(self) -> int:
        """How many run() calls of this key are executing right now."""
        return len(self._running)

    @property
    def rolling_max_concurrent_executions(self) -> int:
        """The most run() calls of this key executing at once within the window."""
        now = clock.monotonic()
        with self._lock:
            return self._rolling.peak(now)

    @property
    def rolling_window_ms(self) -> int:
        """The rolling window's length in milliseconds."""
        return self._window[0]

    def __repr__(self) -> str:
        return f"CommandMetrics({self.command_key!r})"
