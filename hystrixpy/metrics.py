"""Per-command-key metrics: rolling and cumulative event counts, health and concurrency.

:class:`CommandMetrics` reads the events of each
:class:`~hystrixpy.events.ExecutionResult` and nothing else. Everything it
records is O(1) and held in a fixed number of buckets, under one lock; the
commonest outcome, a success, mostly goes without it (see
:meth:`CommandMetrics.record_success`).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hystrixpy import clock
from hystrixpy.events import HEALTH_ERRORS, HEALTH_TOTAL, EventType
from hystrixpy.percentiles import RollingPercentile
from hystrixpy.properties import CommandProperties, ThreadPoolProperties
from hystrixpy.rolling import RollingCounter

if TYPE_CHECKING:
    from hystrixpy.bulkhead import ThreadPoolBulkhead

__all__ = ["CommandMetrics", "HealthCounts", "MetricsSnapshot", "ThreadPoolMetrics"]

_EVENT_KINDS = len(EventType)
_HEALTH_TOTAL_KIND, _HEALTH_ERRORS_KIND = _EVENT_KINDS, _EVENT_KINDS + 1
# Per event index: the counter kinds one such event adds to (itself, then health total/errors).
_KINDS_OF: list[list[int]] = [
    [event.index]
    + ([_HEALTH_TOTAL_KIND] if event in HEALTH_TOTAL else [])
    + ([_HEALTH_ERRORS_KIND] if event in HEALTH_ERRORS else [])
    for event in EventType
]
# The same for two events at once (an execution's commonest multi-event records).
_KINDS_OF_PAIR: list[list[list[int]]] = [
    [first + second for second in _KINDS_OF] for first in _KINDS_OF
]


@dataclass(frozen=True, slots=True)
class MetricsSnapshot:
    """One command key's rolling readings, taken together (see :meth:`CommandMetrics.snapshot`).

    ``rolling_counts`` is indexed by :attr:`EventType.index`; the percentile
    lists follow the percents asked for.
    """

    rolling_counts: list[int]
    health: HealthCounts
    concurrent_executions: int
    rolling_max_concurrent_executions: int
    execution_percentiles: list[int]
    execution_mean: int
    total_percentiles: list[int]
    total_mean: int

    def rolling_count(self, event: EventType) -> int:
        """The rolling count of ``event``."""
        return self.rolling_counts[event.index]


_SUCCESS_INDEX = EventType.SUCCESS.index
#: How many successes may wait uncounted before the one that adds the last counts them all.
WAITING_LIMIT = 32
# The latency series of a key's RollingPercentile: run()'s own, the caller's, and (for an
# adaptive timeout only) run()'s own in successful executions.
_EXECUTION, _TOTAL, _SUCCESS_EXECUTION = 0, 1, 2


def _latency_window_of(properties: CommandProperties) -> tuple[int, int, int] | None:
    """The latency percentiles' window length and buckets, and how many series they keep."""
    if not properties.metrics_rolling_percentile_enabled:
        return None
    return (
        properties.metrics_rolling_percentile_time_ms,
        properties.metrics_rolling_percentile_num_buckets,
        3 if properties.execution_timeout_adaptive else 2,
    )


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


def _latency_percentiles(window: tuple[int, int, int]) -> RollingPercentile:
    window_ms, num_buckets, series = window
    return RollingPercentile(window_ms, num_buckets, series=series)


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
        #: One token per run() of this key executing now: list appends and pops are atomic,
        #: so no lock. A hot path may do what :meth:`run_started` does itself.
        self.running: list[None] = []
        #: The latencies (ms) of successes not counted yet (see :meth:`record_success`).
        #: Appending to a list and replacing a slice of it are atomic, so adding takes no
        #: lock; a hot path may add a success itself, as record_success() does.
        self.waiting: list[int] = []
        #: Until when (seconds) a success may wait: the current buckets of both windows
        #: last at least that long. Set under the lock once the windows have moved.
        self.wait_until = float("-inf")
        self._window = _window_of(properties)
        #: Event counts, then the breaker's health counts (total, errors), in one window.
        #: Read and changed under ``_lock`` only, except for the lock-free peak check.
        self.rolling = RollingCounter(_EVENT_KINDS + 2, *self._window)
        self._latency_window = _latency_window_of(properties)
        # run()'s own latency (series _EXECUTION) and the caller's (series _TOTAL).
        self._latencies: RollingPercentile | None = None
        if self._latency_window is not None:
            self._latencies = _latency_percentiles(self._latency_window)

    def reconfigure(self, properties: CommandProperties) -> None:
        """Adopt new window settings; a changed window starts empty."""
        window = _window_of(properties)
        if window != self._window:
            with self._lock:
                self._count_waiting()
                self.wait_until = float("-inf")
                self._window = window
                rolling = RollingCounter(_EVENT_KINDS + 2, *window)
                rolling.carry_cumulative(self.rolling)
                self.rolling = rolling
        latency_window = _latency_window_of(properties)
        if latency_window != self._latency_window:
            with self._lock:
                self._count_waiting()
                self.wait_until = float("-inf")
                self._latency_window = latency_window
                if latency_window is None:
                    self._latencies = None
                else:
                    self._latencies = _latency_percentiles(latency_window)

    # -- recording (hot path) ------------------------------------------------

    def run_started(self, now: float) -> int:
        """Note that a run() began; return how many of this key's run() calls are executing."""
        running = self.running
        running.append(None)
        concurrency = len(running)
        rolling = self.rolling
        if concurrency > rolling.current_peak or now >= rolling.bucket_end:
            self.note_concurrency(concurrency, now)
        return concurrency

    def note_concurrency(self, concurrency: int, now: float) -> None:
        """Raise the rolling peak of concurrent run() calls to ``concurrency``, if lower."""
        with self._lock:
            self._count_waiting()
            self.rolling.raise_peak(concurrency, now)

    def run_finished(self) -> None:
        """Note that a run() returned or raised."""
        self.running.pop()

    def record(  # noqa: PLR0917 - positional: the hot path passes them all, and keywords cost
        self,
        events: Sequence[EventType],
        now: float,
        run_finished: bool = False,
        concurrency: int = 0,
        execution_ms: int = -1,
        total_ms: int = -1,
    ) -> None:
        """Count ``events`` of one execution.

        Also, when given: end its run(), note its concurrency, and add run()'s
        own latency (``execution_ms``) and the caller's (``total_ms``) to the
        latency percentiles.
        """
        if run_finished:
            self.running.pop()
        count = len(events)
        if count == 1:
            kinds = _KINDS_OF[events[0].index]
        elif count == 2:
            kinds = _KINDS_OF_PAIR[events[0].index][events[1].index]
        else:
            kinds = [kind for event in events for kind in _KINDS_OF[event.index]]
        lock = self._lock
        lock.acquire()
        try:
            if self.waiting:
                self._count_waiting()
            rolling = self.rolling
            if now >= rolling.bucket_end:
                rolling.roll(now)
            counts = rolling.current
            for kind in kinds:
                counts[kind] += 1
            if concurrency > rolling.current_peak:
                rolling.current_peak = concurrency
            latencies = self._latencies
            if latencies is not None:
                # Not a success: with a series of successes only, keep the sample out of it.
                if execution_ms == total_ms >= 0 and latencies.series == 2:
                    latencies.record_same(execution_ms, now)
                else:
                    if execution_ms >= 0:
                        latencies.record(execution_ms, now, _EXECUTION)
                    if total_ms >= 0:
                        latencies.record(total_ms, now, _TOTAL)
            if now >= self.wait_until:  # a window may have moved
                self._renew_wait()
        finally:
            lock.release()

    def record_success(
        self, now: float, concurrency: int, execution_ms: int, total_ms: int
    ) -> None:
        """:meth:`record` for the commonest outcome, a lone SUCCESS (the hot path).

        A success that moves no window and raises no peak, with one latency for
        both series (a semaphore execution's), is not counted at once: it waits,
        without the lock, until whoever next takes the lock counts it (a reader
        too), or until enough wait that the success adding the last counts them.
        Nothing is lost: every reading counts what waits first. (As with the
        lock, a success that finishes as its bucket ends may be counted in the
        next bucket.)
        """
        if (
            now < self.wait_until
            and execution_ms == total_ms
            and concurrency <= self.rolling.current_peak
        ):
            waiting = self.waiting
            waiting.append(execution_ms)
            if len(waiting) >= WAITING_LIMIT:
                self.count_waiting()
            return
        lock = self._lock
        lock.acquire()
        try:
            if self.waiting:
                self._count_waiting()
            rolling = self.rolling
            if now >= rolling.bucket_end:
                rolling.roll(now)
            counts = rolling.current
            counts[_SUCCESS_INDEX] += 1
            counts[_HEALTH_TOTAL_KIND] += 1
            if concurrency > rolling.current_peak:
                rolling.current_peak = concurrency
            latencies = self._latencies
            if latencies is not None:
                if execution_ms == total_ms:
                    latencies.record_same(execution_ms, now)
                else:
                    latencies.record_pair(execution_ms, total_ms, now)
                    if latencies.series == 3:
                        latencies.record(execution_ms, now, _SUCCESS_EXECUTION)
            if now >= self.wait_until:  # a window may have moved
                self._renew_wait()
        finally:
            lock.release()

    def count_waiting(self) -> None:
        """Count the successes waiting now (taking the lock)."""
        with self._lock:
            self._count_waiting()

    def _count_waiting(self) -> None:
        """Count the successes waiting (under the lock, before anything moves a window).

        Each was added before ``wait_until``, so it belongs to the current
        buckets. Only as many are taken as were there: more may come meanwhile.
        """
        waiting = self.waiting
        count = len(waiting)
        if not count:
            return
        counts = self.rolling.current
        counts[_SUCCESS_INDEX] += count
        counts[_HEALTH_TOTAL_KIND] += count
        latencies = waiting[:count]
        waiting[:count] = ()
        if self._latencies is not None:
            self._latencies.add_same(latencies)

    def _renew_wait(self) -> None:
        """After recording at a new time (under the lock): how long a success may now wait."""
        wait_until = self.rolling.bucket_end
        latencies = self._latencies
        if latencies is not None and latencies.bucket_end < wait_until:
            wait_until = latencies.bucket_end
        self.wait_until = wait_until

    def reset_health(self) -> None:
        """Start the health counts afresh (when a circuit closes)."""
        with self._lock:
            self._count_waiting()
            self.rolling.reset((_HEALTH_TOTAL_KIND, _HEALTH_ERRORS_KIND))

    # -- reading -------------------------------------------------------------

    def health_counts(self, now: float | None = None) -> HealthCounts:
        """Requests and errors over the rolling window, as the breaker sees them."""
        when = clock.monotonic() if now is None else now
        with self._lock:
            self._count_waiting()
            totals = self.rolling.totals(when)
        return HealthCounts(
            total_requests=totals[_HEALTH_TOTAL_KIND], error_count=totals[_HEALTH_ERRORS_KIND]
        )

    def rolling_count(self, event: EventType) -> int:
        """How often ``event`` happened within the rolling window."""
        now = clock.monotonic()
        with self._lock:
            self._count_waiting()
            return self.rolling.total(event.index, now)

    def cumulative_count(self, event: EventType) -> int:
        """How often ``event`` happened since this key's metrics were created."""
        with self._lock:
            self._count_waiting()
            return self.rolling.cumulative(event.index)

    @property
    def current_concurrent_execution_count(self) -> int:
        """How many run() calls of this key are executing right now."""
        return len(self.running)

    @property
    def rolling_max_concurrent_executions(self) -> int:
        """The most run() calls of this key executing at once within the window."""
        now = clock.monotonic()
        with self._lock:
            self._count_waiting()
            return self.rolling.peak(now)

    def snapshot(self, percents: Sequence[float] = ()) -> MetricsSnapshot:
        """Every rolling reading at one instant, taking the lock once (for monitoring)."""
        now = clock.monotonic()
        wanted = list(percents)
        with self._lock:
            self._count_waiting()
            totals = self.rolling.totals(now)
            peak = self.rolling.peak(now)
            latencies = self._latencies
            if latencies is None:
                execution = total = ([0] * len(wanted), 0)
            else:
                execution = latencies.summary(wanted, now, _EXECUTION)
                if latencies.series_alike(now):  # as for a semaphore command: read once
                    total = (list(execution[0]), execution[1])
                else:
                    total = latencies.summary(wanted, now, _TOTAL)
            return MetricsSnapshot(
                rolling_counts=totals[:_EVENT_KINDS],
                health=HealthCounts(
                    total_requests=totals[_HEALTH_TOTAL_KIND],
                    error_count=totals[_HEALTH_ERRORS_KIND],
                ),
                concurrent_executions=len(self.running),
                rolling_max_concurrent_executions=peak,
                execution_percentiles=execution[0],
                execution_mean=execution[1],
                total_percentiles=total[0],
                total_mean=total[1],
            )

    def execution_time_percentile(self, percent: float) -> int:
        """run()'s own latency at ``percent`` (0-100), in ms, over the percentile window."""
        return self._latency(_EXECUTION, [percent])[0]

    def execution_time_percentiles(self, percents: list[float]) -> list[int]:
        """Several percentiles of run()'s latency at once, in ms."""
        return self._latency(_EXECUTION, percents)

    def success_latency(self, percent: float, now: float) -> tuple[int, int]:
        """run()'s latency at ``percent`` in successful executions, and how many there were.

        Kept only for a key with an adaptive timeout; ``(0, 0)`` otherwise.
        """
        latencies = self._latencies
        if latencies is None or latencies.series < 3:
            return 0, 0
        with self._lock:
            self._count_waiting()
            samples = latencies.count(now, _SUCCESS_EXECUTION)
            if not samples:
                return 0, 0
            return latencies.percentile(percent, now, _SUCCESS_EXECUTION), samples

    def execution_time_mean(self) -> int:
        """The mean of run()'s latency, in ms, over the percentile window."""
        return self._mean(_EXECUTION)

    def total_time_percentile(self, percent: float) -> int:
        """The latency the caller saw at ``percent`` (0-100), in ms."""
        return self._latency(_TOTAL, [percent])[0]

    def total_time_percentiles(self, percents: list[float]) -> list[int]:
        """Several percentiles of the caller's latency at once, in ms."""
        return self._latency(_TOTAL, percents)

    def total_time_mean(self) -> int:
        """The mean latency the caller saw, in ms."""
        return self._mean(_TOTAL)

    def _latency(self, series: int, percents: list[float]) -> list[int]:
        for percent in percents:
            if not 0 <= percent <= 100:
                raise ValueError(f"a percentile must be within 0..100, got {percent!r}")
        latencies = self._latencies
        if latencies is None:  # percentiles are turned off
            return [0 for _ in percents]
        now = clock.monotonic()
        with self._lock:
            self._count_waiting()
            return latencies.percentiles(percents, now, series)

    def _mean(self, series: int) -> int:
        latencies = self._latencies
        if latencies is None:
            return 0
        now = clock.monotonic()
        with self._lock:
            self._count_waiting()
            return latencies.mean(now, series)

    @property
    def rolling_window_ms(self) -> int:
        """The rolling window's length in milliseconds."""
        return self._window[0]

    def __repr__(self) -> str:
        return f"CommandMetrics({self.command_key!r})"


_EXECUTED, _REJECTED = 0, 1


class ThreadPoolMetrics:
    """What one thread pool is doing: gauges read from the pool, and rolling task counts.

    The pool reports each task it starts, finishes or refuses; the counts are
    kept over the pool's own rolling window
    (``ThreadPoolProperties.metrics_rolling_stats_*``).
    """

    def __init__(self, pool: ThreadPoolBulkhead, properties: ThreadPoolProperties) -> None:
        self._pool = pool
        self.pool_key = pool.pool_key
        self._lock = threading.Lock()
        # One token per task running now (list appends and pops are atomic).
        self._running: list[None] = []
        self._window = _pool_window_of(properties)
        self._rolling = RollingCounter(2, *self._window)

    def reconfigure(self, properties: ThreadPoolProperties) -> None:
        """Adopt a new window; a changed window starts empty."""
        window = _pool_window_of(properties)
        if window != self._window:
            with self._lock:
                self._window = window
                rolling = RollingCounter(2, *window)
                rolling.carry_cumulative(self._rolling)
                self._rolling = rolling

    # -- reported by the pool --------------------------------------------------

    def task_started(self, now: float) -> None:
        """A worker took a task."""
        with self._lock:
            running = self._running
            running.append(None)
            self._rolling.add(_EXECUTED, now)
            if self._rolling.would_raise_peak(len(running), now):
                self._rolling.raise_peak(len(running), now)

    def task_finished(self) -> None:
        """A worker finished a task."""
        self._running.pop()

    def task_rejected(self, now: float) -> None:
        """The pool refused a task."""
        with self._lock:
            self._rolling.add(_REJECTED, now)

    # -- reading -------------------------------------------------------------

    @property
    def current_active_count(self) -> int:
        """Tasks running on a worker now."""
        return len(self._running)

    @property
    def current_completed_task_count(self) -> int:
        """Tasks finished since the pool started."""
        with self._lock:
            return max(self._rolling.cumulative(_EXECUTED) - len(self._running), 0)

    @property
    def current_queue_size(self) -> int:
        """Tasks admitted and waiting for a worker."""
        return max(self._pool.admitted_count - len(self._running), 0)

    @property
    def current_task_count(self) -> int:
        """Tasks ever admitted: finished, running and waiting."""
        return self.current_completed_task_count + self._pool.admitted_count

    @property
    def current_pool_size(self) -> int:
        """Worker threads alive now."""
        return self._pool.pool_size

    @property
    def current_largest_pool_size(self) -> int:
        """The most worker threads alive at once."""
        return self._pool.largest_pool_size

    @property
    def current_core_pool_size(self) -> int:
        """The configured core size."""
        return self._pool.properties.core_size

    @property
    def current_maximum_pool_size(self) -> int:
        """The most workers the pool may run."""
        return self._pool.properties.effective_maximum_size

    @property
    def rolling_count_threads_executed(self) -> int:
        """Tasks started within the rolling window."""
        return self._rolling_total(_EXECUTED)

    @property
    def rolling_count_threads_rejected(self) -> int:
        """Tasks refused within the rolling window."""
        return self._rolling_total(_REJECTED)

    @property
    def cumulative_count_threads_executed(self) -> int:
        """Tasks started since the pool was created."""
        with self._lock:
            return self._rolling.cumulative(_EXECUTED)

    @property
    def cumulative_count_threads_rejected(self) -> int:
        """Tasks refused since the pool was created."""
        with self._lock:
            return self._rolling.cumulative(_REJECTED)

    @property
    def rolling_max_active_threads(self) -> int:
        """The most tasks running at once within the rolling window."""
        now = clock.monotonic()
        with self._lock:
            return self._rolling.peak(now)

    @property
    def rolling_window_ms(self) -> int:
        """The rolling window's length in milliseconds."""
        return self._window[0]

    def _rolling_total(self, kind: int) -> int:
        now = clock.monotonic()
        with self._lock:
            return self._rolling.total(kind, now)

    def __repr__(self) -> str:
        return f"ThreadPoolMetrics({self.pool_key!r})"


def _pool_window_of(properties: ThreadPoolProperties) -> tuple[int, int]:
    return (
        properties.metrics_rolling_stats_time_ms,
        properties.metrics_rolling_stats_num_buckets,
    )
