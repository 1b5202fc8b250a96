"""Tests for hystrixpy.metrics: rolling and cumulative counts, health counts, concurrency."""

from __future__ import annotations

import contextlib
import sys
import threading
from collections import Counter
from concurrent.futures import Future

import pytest

import hystrixpy
from hystrixpy import (
    BadRequestError,
    Command,
    CommandMetrics,
    CommandProperties,
    EventType,
    HealthCounts,
    HystrixRuntimeError,
    IsolationStrategy,
    ThreadPoolProperties,
)
from hystrixpy.testing import FakeClock

SEMAPHORE = IsolationStrategy.SEMAPHORE

# Hystrix's health formula, written out from the reference rather than read from the library.
COUNTED_AS_ERRORS = {
    EventType.FAILURE,
    EventType.TIMEOUT,
    EventType.THREAD_POOL_REJECTED,
    EventType.SEMAPHORE_REJECTED,
}
COUNTED_AS_REQUESTS = COUNTED_AS_ERRORS | {EventType.SUCCESS}


def _metrics(properties: CommandProperties | None = None) -> CommandMetrics:
    return CommandMetrics("Direct", "DirectGroup", "DirectPool", properties or CommandProperties())


def _rolling_counts(metrics: CommandMetrics) -> Counter[EventType]:
    """Every non-zero rolling count, by event type."""
    return Counter({event: n for event in EventType if (n := metrics.rolling_count(event))})


def _cumulative_counts(metrics: CommandMetrics) -> Counter[EventType]:
    """Every non-zero cumulative count, by event type."""
    return Counter({event: n for event in EventType if (n := metrics.cumulative_count(event))})


class Succeeds(Command[str]):
    group_key = "MetricsTests"
    properties = CommandProperties(execution_isolation_strategy=SEMAPHORE)

    def run(self) -> str:
        return "value"


class FailsWithFallback(Command[str]):
    group_key = "MetricsTests"
    properties = CommandProperties(execution_isolation_strategy=SEMAPHORE)

    def run(self) -> str:
        raise RuntimeError("dependency down")

    def get_fallback(self) -> str:
        return "fallback"


class FailsWithoutFallback(Command[str]):
    group_key = "MetricsTests"
    properties = CommandProperties(execution_isolation_strategy=SEMAPHORE)

    def run(self) -> str:
        raise RuntimeError("dependency down")


class FallbackFails(Command[str]):
    group_key = "MetricsTests"
    properties = CommandProperties(execution_isolation_strategy=SEMAPHORE)

    def run(self) -> str:
        raise RuntimeError("dependency down")

    def get_fallback(self) -> str:
        raise RuntimeError("fallback down too")


class FallbackDisabled(Command[str]):
    group_key = "MetricsTests"
    properties = CommandProperties(execution_isolation_strategy=SEMAPHORE, fallback_enabled=False)

    def run(self) -> str:
        raise RuntimeError("dependency down")

    def get_fallback(self) -> str:
        return "never used"


class BadInput(Command[str]):
    group_key = "MetricsTests"
    properties = CommandProperties(execution_isolation_strategy=SEMAPHORE)

    def run(self) -> str:
        raise BadRequestError("caller's mistake")

    def get_fallback(self) -> str:
        return "never used"


class NoPermits(Command[str]):
    group_key = "MetricsTests"
    properties = CommandProperties(
        execution_isolation_strategy=SEMAPHORE,
        execution_isolation_semaphore_max_concurrent_requests=0,
    )

    def run(self) -> str:
        return "never run"

    def get_fallback(self) -> str:
        return "fallback"


class ForcedOpen(Command[str]):
    group_key = "MetricsTests"
    properties = CommandProperties(
        execution_isolation_strategy=SEMAPHORE, circuit_breaker_force_open=True
    )

    def run(self) -> str:
        return "never run"

    def get_fallback(self) -> str:
        return "fallback"


class TakesTwoSeconds(Command[str]):
    """Runs on the caller's thread and lets two seconds of fake time pass (timeout is 1 s)."""

    group_key = "MetricsTests"
    properties = CommandProperties(execution_isolation_strategy=SEMAPHORE)

    def run(self) -> str:
        clock = hystrixpy.clock.get_clock()
        assert isinstance(clock, FakeClock)
        clock.advance(2.0)
        return "too late"

    def get_fallback(self) -> str:
        return "fallback"


class TestCommandMetricsFromExecutions:
    @pytest.mark.parametrize(
        ("command_class", "expected"),
        [
            (Succeeds, {EventType.SUCCESS: 1}),
            (FailsWithFallback, {EventType.FAILURE: 1, EventType.FALLBACK_SUCCESS: 1}),
            (
                FailsWithoutFallback,
                {
                    EventType.FAILURE: 1,
                    EventType.FALLBACK_MISSING: 1,
                    EventType.EXCEPTION_THROWN: 1,
                },
            ),
            (
                FallbackFails,
                {
                    EventType.FAILURE: 1,
                    EventType.FALLBACK_FAILURE: 1,
                    EventType.EXCEPTION_THROWN: 1,
                },
            ),
            (
                FallbackDisabled,
                {
                    EventType.FAILURE: 1,
                    EventType.FALLBACK_DISABLED: 1,
                    EventType.EXCEPTION_THROWN: 1,
                },
            ),
            (BadInput, {EventType.BAD_REQUEST: 1, EventType.EXCEPTION_THROWN: 1}),
            (NoPermits, {EventType.SEMAPHORE_REJECTED: 1, EventType.FALLBACK_SUCCESS: 1}),
            (ForcedOpen, {EventType.SHORT_CIRCUITED: 1, EventType.FALLBACK_SUCCESS: 1}),
            (TakesTwoSeconds, {EventType.TIMEOUT: 1, EventType.FALLBACK_SUCCESS: 1}),
        ],
    )
    def test_each_execution_is_counted_by_its_events(
        self,
        fake_clock: FakeClock,
        command_class: type[Command[str]],
        expected: dict[EventType, int],
    ) -> None:
        """Two executions of a command count each of their events twice, and nothing else."""
        for _ in range(2):
            with contextlib.suppress(HystrixRuntimeError, BadRequestError):
                command_class().execute()

        metrics = hystrixpy.command_metrics(command_class.command_key)
        doubled = {event: 2 * n for event, n in expected.items()}
        assert _rolling_counts(metrics) == doubled
        assert _cumulative_counts(metrics) == doubled

    def test_a_full_thread_pool_is_counted_as_thread_pool_rejected(
        self, fake_clock: FakeClock
    ) -> None:
        """A command refused by its busy pool counts THREAD_POOL_REJECTED and an error."""
        started = threading.Event()
        release = threading.Event()

        class Blocks(Command[str]):
            group_key = "MetricsRejectedPoolGroup"
            thread_pool_properties = ThreadPoolProperties(core_size=1)

            def run(self) -> str:
                started.set()
                release.wait(5)
                return "done"

            def get_fallback(self) -> str:
                return "fallback"

        first: Future[str] | None = None
        try:
            first = Blocks().queue()
            assert started.wait(5)

            assert Blocks().execute() == "fallback"

            metrics = hystrixpy.command_metrics("Blocks")
            assert _rolling_counts(metrics) == {
                EventType.THREAD_POOL_REJECTED: 1,
                EventType.FALLBACK_SUCCESS: 1,
            }
            assert metrics.health_counts() == HealthCounts(total_requests=1, error_count=1)
        finally:
            release.set()
        assert first is not None
        assert first.result(5) == "done"
        assert metrics.rolling_count(EventType.SUCCESS) == 1
        assert metrics.health_counts() == HealthCounts(total_requests=2, error_count=1)

    def test_metrics_are_shared_by_command_key(self, fake_clock: FakeClock) -> None:
        """Every instance of a command key adds to the same metrics object."""
        for _ in range(3):
            Succeeds().execute()
        Succeeds(command_key="SucceedsElsewhere").execute()

        assert hystrixpy.command_metrics("Succeeds").rolling_count(EventType.SUCCESS) == 3
        assert hystrixpy.command_metrics("SucceedsElsewhere").rolling_count(EventType.SUCCESS) == 1
        assert Succeeds().metrics is hystrixpy.command_metrics("Succeeds")

    def test_health_counts_leave_out_short_circuits_bad_requests_and_fallbacks(
        self, fake_clock: FakeClock
    ) -> None:
        """Only runs that succeeded, failed, timed out or were rejected count toward health."""
        Succeeds(command_key="Mixed").execute()
        Succeeds(command_key="Mixed").execute()
        FailsWithFallback(command_key="Mixed").execute()
        TakesTwoSeconds(command_key="Mixed").execute()
        with pytest.raises(BadRequestError):
            BadInput(command_key="Mixed").execute()
        hystrixpy.configure({"command.Mixed.circuit_breaker_force_open": True})
        short_circuited = FailsWithFallback(command_key="Mixed")
        assert short_circuited.execute() == "fallback"
        assert short_circuited.is_response_short_circuited

        health = hystrixpy.command_metrics("Mixed").health_counts()

        assert health == HealthCounts(total_requests=4, error_count=2)
        assert health.error_percentage == 50

    def test_unknown_command_key_raises_key_error(self) -> None:
        """Asking for the metrics of a key that never ran raises KeyError naming the key."""
        with pytest.raises(KeyError, match="NeverRan"):
            hystrixpy.command_metrics("NeverRan")

    def test_metrics_know_their_keys(self, fake_clock: FakeClock) -> None:
        """A key's metrics carry its command, group and thread-pool keys."""
        Succeeds().execute()

        metrics = hystrixpy.command_metrics("Succeeds")

        assert metrics.command_key == "Succeeds"
        assert metrics.group_key == "MetricsTests"
        assert metrics.thread_pool_key == "MetricsTests"
        assert repr(metrics) == "CommandMetrics('Succeeds')"


class TestCommandMetricsRecording:
    def test_starts_with_nothing_counted(self, fake_clock: FakeClock) -> None:
        """New metrics report zero for every event and no requests."""
        metrics = _metrics()

        assert _rolling_counts(metrics) == Counter()
        assert _cumulative_counts(metrics) == Counter()
        assert metrics.health_counts() == HealthCounts(total_requests=0, error_count=0)

    def test_record_counts_every_event_listed(self, fake_clock: FakeClock) -> None:
        """record() adds one to the rolling and cumulative count of each event given."""
        metrics = _metrics()
        now = fake_clock.monotonic()

        metrics.record([EventType.FAILURE, EventType.FALLBACK_SUCCESS], now)
        metrics.record([EventType.SUCCESS], now)
        metrics.record([EventType.SUCCESS], now)
        metrics.record([], now)

        expected = Counter(
            {EventType.SUCCESS: 2, EventType.FAILURE: 1, EventType.FALLBACK_SUCCESS: 1}
        )
        assert _rolling_counts(metrics) == expected
        assert _cumulative_counts(metrics) == expected

    @pytest.mark.parametrize("event", list(EventType))
    def test_health_counts_follow_hystrix_formula_for_each_event(
        self, fake_clock: FakeClock, event: EventType
    ) -> None:
        """Each event type counts toward requests and errors exactly as Hystrix counts it."""
        metrics = _metrics()

        metrics.record([event], fake_clock.monotonic())

        assert metrics.health_counts() == HealthCounts(
            total_requests=1 if event in COUNTED_AS_REQUESTS else 0,
            error_count=1 if event in COUNTED_AS_ERRORS else 0,
        )
        assert metrics.rolling_count(event) == 1

    def test_health_counts_over_a_mix_of_events(self, fake_clock: FakeClock) -> None:
        """A mix of outcomes gives total = successes + errors, errors = failures of every kind."""
        metrics = _metrics()
        now = fake_clock.monotonic()
        outcomes = (
            [[EventType.SUCCESS]] * 5
            + [[EventType.FAILURE, EventType.FALLBACK_SUCCESS]] * 2
            + [[EventType.TIMEOUT, EventType.FALLBACK_FAILURE, EventType.EXCEPTION_THROWN]]
            + [[EventType.THREAD_POOL_REJECTED, EventType.FALLBACK_MISSING]]
            + [[EventType.SEMAPHORE_REJECTED, EventType.FALLBACK_REJECTION]]
            + [[EventType.SHORT_CIRCUITED, EventType.FALLBACK_SUCCESS]] * 3
            + [[EventType.BAD_REQUEST, EventType.EXCEPTION_THROWN]] * 2
            + [[EventType.RESPONSE_FROM_CACHE]] * 4
        )
        for events in outcomes:
            metrics.record(events, now)

        health = metrics.health_counts()

        assert health == HealthCounts(total_requests=10, error_count=5)
        assert health.error_percentage == 50

    def test_error_percentage_truncates(self, fake_clock: FakeClock) -> None:
        """Two errors in three requests is 66 percent, not 67."""
        metrics = _metrics()
        now = fake_clock.monotonic()
        for event in (EventType.SUCCESS, EventType.FAILURE, EventType.TIMEOUT):
            metrics.record([event], now)

        assert metrics.health_counts().error_percentage == 66

    def test_health_counts_at_an_explicit_time(self, fake_clock: FakeClock) -> None:
        """health_counts(now) reports the window ending at the time given."""
        metrics = _metrics()
        start = fake_clock.monotonic()
        metrics.record([EventType.FAILURE], start)

        assert metrics.health_counts(start + 5.0).error_count == 1
        assert metrics.health_counts(start + 10.0).error_count == 0

    def test_counts_leave_the_rolling_window_but_stay_cumulative(
        self, fake_clock: FakeClock
    ) -> None:
        """Once the rolling window has passed, rolling counts are zero; cumulative ones stay."""
        metrics = _metrics()
        metrics.record([EventType.FAILURE], fake_clock.monotonic())

        fake_clock.advance(9.999)
        assert metrics.rolling_count(EventType.FAILURE) == 1
        assert metrics.health_counts().total_requests == 1

        fake_clock.advance(0.001)
        assert metrics.rolling_count(EventType.FAILURE) == 0
        assert metrics.health_counts() == HealthCounts(total_requests=0, error_count=0)
        assert metrics.cumulative_count(EventType.FAILURE) == 1

    def test_window_rolls_bucket_by_bucket(self, fake_clock: FakeClock) -> None:
        """Older events leave the window before newer ones."""
        metrics = _metrics()
        metrics.record([EventType.SUCCESS], fake_clock.monotonic())
        fake_clock.advance(4.0)
        metrics.record([EventType.SUCCESS], fake_clock.monotonic())
        metrics.record([EventType.TIMEOUT], fake_clock.monotonic())

        fake_clock.advance(6.0)

        assert metrics.rolling_count(EventType.SUCCESS) == 1
        assert metrics.health_counts() == HealthCounts(total_requests=2, error_count=1)

        fake_clock.advance(4.0)

        assert metrics.rolling_count(EventType.SUCCESS) == 0
        assert metrics.cumulative_count(EventType.SUCCESS) == 2

    def test_real_executions_expire_with_the_fake_clock(self, fake_clock: FakeClock) -> None:
        """Executions drop out of the rolling counts once the window passes on the fake clock."""
        Succeeds().execute()
        FailsWithFallback(command_key="Succeeds").execute()
        metrics = hystrixpy.command_metrics("Succeeds")

        fake_clock.advance(10.0)

        assert metrics.rolling_count(EventType.SUCCESS) == 0
        assert metrics.rolling_count(EventType.FAILURE) == 0
        assert metrics.health_counts().total_requests == 0
        assert metrics.cumulative_count(EventType.SUCCESS) == 1
        assert metrics.cumulative_count(EventType.FALLBACK_SUCCESS) == 1

    def test_reset_health_empties_health_counts_only(self, fake_clock: FakeClock) -> None:
        """reset_health() zeroes the health counts but keeps the event counts."""
        metrics = _metrics()
        now = fake_clock.monotonic()
        metrics.record([EventType.FAILURE], now)
        metrics.record([EventType.SUCCESS], now)

        metrics.reset_health()

        assert metrics.health_counts() == HealthCounts(total_requests=0, error_count=0)
        assert metrics.rolling_count(EventType.FAILURE) == 1
        assert metrics.cumulative_count(EventType.SUCCESS) == 1
        metrics.record([EventType.TIMEOUT], now)
        assert metrics.health_counts() == HealthCounts(total_requests=1, error_count=1)

    def test_reconfigure_with_a_new_window_starts_empty(self, fake_clock: FakeClock) -> None:
        """A changed rolling window starts with empty rolling counts; cumulative counts stay."""
        metrics = _metrics()
        metrics.record([EventType.FAILURE], fake_clock.monotonic())

        metrics.reconfigure(
            CommandProperties(
                metrics_rolling_stats_time_ms=20_000, metrics_rolling_stats_num_buckets=20
            )
        )

        assert metrics.rolling_window_ms == 20_000
        assert metrics.rolling_count(EventType.FAILURE) == 0
        assert metrics.health_counts().total_requests == 0
        assert metrics.cumulative_count(EventType.FAILURE) == 1

    def test_reconfigured_window_decides_expiry(self, fake_clock: FakeClock) -> None:
        """After a change to a 20 s window, events stay counted for 20 s."""
        metrics = _metrics()
        metrics.reconfigure(
            CommandProperties(
                metrics_rolling_stats_time_ms=20_000, metrics_rolling_stats_num_buckets=20
            )
        )
        metrics.record([EventType.SUCCESS], fake_clock.monotonic())

        fake_clock.advance(15.0)
        assert metrics.rolling_count(EventType.SUCCESS) == 1

        fake_clock.advance(5.0)
        assert metrics.rolling_count(EventType.SUCCESS) == 0

    def test_reconfigure_with_the_same_window_keeps_counts(self, fake_clock: FakeClock) -> None:
        """Other property changes leave the rolling counts as they were."""
        metrics = _metrics()
        metrics.record([EventType.FAILURE], fake_clock.monotonic())

        metrics.reconfigure(CommandProperties(execution_timeout_ms=50))
        metrics.reconfigure(CommandProperties(metrics_rolling_stats_time_ms=10_000))

        assert metrics.rolling_count(EventType.FAILURE) == 1
        assert metrics.health_counts() == HealthCounts(total_requests=1, error_count=1)

    def test_configured_window_reaches_existing_metrics(self, fake_clock: FakeClock) -> None:
        """Configuring a new window for a key resizes that key's metrics without a restart."""
        Succeeds().execute()
        assert hystrixpy.command_metrics("Succeeds").rolling_window_ms == 10_000

        hystrixpy.configure({"command.Succeeds.metrics_rolling_stats_time_ms": 20_000})

        metrics = hystrixpy.command_metrics("Succeeds")
        assert metrics.rolling_window_ms == 20_000
        assert metrics.rolling_count(EventType.SUCCESS) == 0
        assert metrics.cumulative_count(EventType.SUCCESS) == 1


class TestConcurrencyCounters:
    def test_counts_runs_in_progress_on_caller_threads(self, fake_clock: FakeClock) -> None:
        """Runs held inside run() count as concurrent until they return; the peak is kept."""
        inside = threading.Barrier(4)
        release = threading.Event()

        class Held(Command[str]):
            group_key = "MetricsConcurrency"
            properties = CommandProperties(execution_isolation_strategy=SEMAPHORE)

            def run(self) -> str:
                inside.wait(5)
                release.wait(5)
                return "done"

        results: list[str] = []
        threads = [
            threading.Thread(target=lambda: results.append(Held().execute()), daemon=True)
            for _ in range(3)
        ]
        try:
            for thread in threads:
                thread.start()
            inside.wait(5)

            metrics = hystrixpy.command_metrics("Held")
            assert metrics.current_concurrent_execution_count == 3
            assert metrics.rolling_max_concurrent_executions == 3
        finally:
            release.set()
            for thread in threads:
                thread.join(5)

        assert not any(thread.is_alive() for thread in threads)
        assert results == ["done"] * 3
        assert metrics.current_concurrent_execution_count == 0
        assert metrics.rolling_max_concurrent_executions == 3

    def test_peak_concurrency_leaves_with_the_window(self, fake_clock: FakeClock) -> None:
        """The rolling peak falls to zero once the window has passed with nothing running."""
        metrics = _metrics()
        now = fake_clock.monotonic()
        metrics.run_started(now)
        metrics.run_started(now)
        metrics.run_finished()
        metrics.record([EventType.SUCCESS], now, run_finished=True)

        assert metrics.current_concurrent_execution_count == 0
        assert metrics.rolling_max_concurrent_executions == 2

        fake_clock.advance(10.0)

        assert metrics.rolling_max_concurrent_executions == 0

    def test_counts_runs_in_progress_on_pool_threads(self, fake_clock: FakeClock) -> None:
        """Thread-isolated runs held in run() count as concurrent until they return."""
        inside = threading.Barrier(3)
        release = threading.Event()

        class HeldOnPool(Command[str]):
            group_key = "MetricsConcurrencyPool"
            thread_pool_properties = ThreadPoolProperties(core_size=2)

            def run(self) -> str:
                inside.wait(5)
                release.wait(5)
                return "done"

        futures: list[Future[str]] = []
        try:
            futures = [HeldOnPool().queue() for _ in range(2)]
            inside.wait(5)

            metrics = hystrixpy.command_metrics("HeldOnPool")
            assert metrics.current_concurrent_execution_count == 2
            assert metrics.rolling_max_concurrent_executions == 2
        finally:
            release.set()

        assert [future.result(5) for future in futures] == ["done", "done"]
        assert metrics.current_concurrent_execution_count == 0
        assert metrics.rolling_max_concurrent_executions == 2

    def test_recorded_concurrency_raises_the_peak(self, fake_clock: FakeClock) -> None:
        """The concurrency an execution reports with its events counts toward the peak."""
        metrics = _metrics()

        metrics.record([EventType.SUCCESS], fake_clock.monotonic(), concurrency=5)

        assert metrics.rolling_max_concurrent_executions == 5

    def test_run_in_progress_after_an_idle_window_counts_toward_the_peak(
        self, fake_clock: FakeClock
    ) -> None:
        """A run executing now is part of the rolling peak, even after an idle spell."""
        entered = threading.Semaphore(0)
        release = threading.Event()

        class Bursty(Command[str]):
            group_key = "MetricsConcurrencyIdle"
            properties = CommandProperties(
                execution_isolation_strategy=SEMAPHORE, circuit_breaker_enabled=False
            )

            def run(self) -> str:
                entered.release()
                release.wait(5)
                return "done"

        def execute_bursty() -> None:
            Bursty().execute()

        burst = [threading.Thread(target=execute_bursty, daemon=True) for _ in range(3)]
        later = threading.Thread(target=execute_bursty, daemon=True)
        try:
            for thread in burst:
                thread.start()
            assert all(entered.acquire(timeout=5) for _ in burst)
            release.set()
            for thread in burst:
                thread.join(5)
            assert not any(thread.is_alive() for thread in burst)
            metrics = hystrixpy.command_metrics("Bursty")
            assert metrics.rolling_max_concurrent_executions == 3
            release.clear()

            fake_clock.advance(30.0)
            later.start()
            assert entered.acquire(timeout=5)

            assert metrics.current_concurrent_execution_count == 1
            assert metrics.rolling_max_concurrent_executions == 1
        finally:
            release.set()
            if later.ident is not None:
                later.join(5)
        assert not later.is_alive()

    def test_concurrency_survives_a_window_change(self, fake_clock: FakeClock) -> None:
        """Changing the window while a run is in progress keeps counting it as running."""
        metrics = _metrics()
        metrics.run_started(fake_clock.monotonic())

        metrics.reconfigure(
            CommandProperties(
                metrics_rolling_stats_time_ms=5_000, metrics_rolling_stats_num_buckets=5
            )
        )

        assert metrics.current_concurrent_execution_count == 1
        metrics.run_started(fake_clock.monotonic())
        assert metrics.rolling_max_concurrent_executions == 2
        metrics.run_finished()
        metrics.run_finished()
        assert metrics.current_concurrent_execution_count == 0


def _ready_for_waiting_successes(metrics: CommandMetrics, now: float) -> None:
    """Count one success under the lock at ``now``, so that later ones at ``now`` may wait."""
    metrics.note_concurrency(1, now)
    metrics.record_success(now, 1, 0, 0)


def _metrics_with_successes_waiting(clock: FakeClock) -> tuple[CommandMetrics, float]:
    """New metrics, ready (as above) for successes at the clock's now to wait; and that now."""
    metrics = _metrics()
    now = clock.monotonic()
    _ready_for_waiting_successes(metrics, now)
    return metrics, now


PERCENTS = [0, 25, 50, 90, 99, 100]


class TestSuccessesCountedLater:
    """A plain success is counted without the lock, by whoever next takes it."""

    def test_a_success_takes_no_lock(self, fake_clock: FakeClock) -> None:
        """With the metrics lock held elsewhere, recording a success still returns at once."""
        metrics, now = _metrics_with_successes_waiting(fake_clock)
        recorder = threading.Thread(target=metrics.record_success, args=(now, 1, 4, 4))

        with metrics._lock:
            recorder.start()
            recorder.join(5)
            assert not recorder.is_alive(), "recording a success waited for the lock"

        assert metrics.rolling_count(EventType.SUCCESS) == 2
        assert metrics.execution_time_percentile(100) == 4

    def test_successes_from_many_threads_are_all_counted(self, fake_clock: FakeClock) -> None:
        """Eight threads recording at once lose nothing: counts and percentiles are exact."""
        threads, each = 8, 2_000
        metrics = _metrics()
        reference = _metrics()
        now = fake_clock.monotonic()
        _ready_for_waiting_successes(metrics, now)
        reference.record_success(now, 1, 0, 0)
        start = threading.Barrier(threads)

        def record(offset: int) -> None:
            start.wait()
            for index in range(each):
                latency = (index + offset) % 23
                metrics.record_success(now, 1, latency, latency)

        workers = [threading.Thread(target=record, args=(offset,)) for offset in range(threads)]
        switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(1e-6)  # threads take turns as often as they can: races show
        try:
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join(30)
        finally:
            sys.setswitchinterval(switch_interval)
        for offset in range(threads):
            for index in range(each):
                latency = (index + offset) % 23
                reference.record([EventType.SUCCESS], now, False, 0, latency, latency)

        assert metrics.cumulative_count(EventType.SUCCESS) == threads * each + 1
        assert metrics.snapshot(PERCENTS) == reference.snapshot(PERCENTS)

    def test_a_waiting_success_leaves_the_window_with_its_own_bucket(
        self, fake_clock: FakeClock
    ) -> None:
        """Successes first counted long after they happened still expire when their bucket does."""
        metrics, now = _metrics_with_successes_waiting(fake_clock)
        for _ in range(5):
            metrics.record_success(now, 1, 7, 7)

        fake_clock.advance(60.0)  # past the rolling (10 s) and the percentile (60 s) window

        assert metrics.rolling_count(EventType.SUCCESS) == 0
        assert metrics.health_counts().total_requests == 0
        assert metrics.execution_time_percentile(100) == 0
        assert metrics.cumulative_count(EventType.SUCCESS) == 6

    def test_a_success_recorded_as_its_bucket_ends_is_counted_under_the_lock(
        self, fake_clock: FakeClock
    ) -> None:
        """At a bucket's end a success moves the window itself, and is counted in the new bucket."""
        metrics, now = _metrics_with_successes_waiting(fake_clock)
        metrics.record_success(now, 1, 3, 3)

        fake_clock.advance(5.0)
        later = fake_clock.monotonic()
        metrics.note_concurrency(1, later)
        metrics.record_success(later, 1, 9, 9)
        fake_clock.advance(5.0)  # the first bucket has left the window; the later one has not

        assert metrics.rolling_count(EventType.SUCCESS) == 1
        assert metrics.cumulative_count(EventType.SUCCESS) == 3

    def test_resetting_health_counts_the_waiting_successes_first(
        self, fake_clock: FakeClock
    ) -> None:
        """A circuit that closes starts its health counts afresh, without earlier successes."""
        metrics, now = _metrics_with_successes_waiting(fake_clock)
        for _ in range(3):
            metrics.record_success(now, 1, 0, 0)

        metrics.reset_health()

        assert metrics.health_counts() == HealthCounts(total_requests=0, error_count=0)
        assert metrics.rolling_count(EventType.SUCCESS) == 4

    def test_a_new_window_keeps_the_waiting_successes_in_the_cumulative_counts(
        self, fake_clock: FakeClock
    ) -> None:
        """Reconfiguring the windows counts what waits first: nothing is lost."""
        metrics, now = _metrics_with_successes_waiting(fake_clock)
        for _ in range(3):
            metrics.record_success(now, 1, 0, 0)

        metrics.reconfigure(
            CommandProperties(
                metrics_rolling_stats_time_ms=20_000,
                metrics_rolling_stats_num_buckets=20,
                metrics_rolling_percentile_enabled=False,
            )
        )
        metrics.record_success(now, 1, 0, 0)

        assert metrics.cumulative_count(EventType.SUCCESS) == 5
        assert metrics.rolling_count(EventType.SUCCESS) == 1

    def test_waiting_successes_stay_few(self, fake_clock: FakeClock) -> None:
        """However many successes are recorded, only a small batch ever waits uncounted."""
        metrics, now = _metrics_with_successes_waiting(fake_clock)
        most = 0
        for _ in range(1_000):
            metrics.record_success(now, 1, 0, 0)
            most = max(most, len(metrics.waiting))

        assert 0 < most <= 32
        assert metrics.cumulative_count(EventType.SUCCESS) == 1_001


class TestHealthCounts:
    @pytest.mark.parametrize(
        ("total", "errors", "percentage"),
        [(0, 0, 0), (3, 2, 66), (3, 1, 33), (20, 10, 50), (7, 7, 100), (1000, 1, 0)],
    )
    def test_error_percentage_is_truncated_to_an_int(
        self, total: int, errors: int, percentage: int
    ) -> None:
        """The error percentage is int(errors / total * 100), and 0 with no requests."""
        health = HealthCounts(total_requests=total, error_count=errors)

        assert health.error_percentage == percentage
        assert isinstance(health.error_percentage, int)

    def test_is_immutable(self) -> None:
        """Health counts are a snapshot that cannot be altered."""
        health = HealthCounts(total_requests=1, error_count=0)

        with pytest.raises(AttributeError):
            health.total_requests = 5  # type: ignore[misc]
