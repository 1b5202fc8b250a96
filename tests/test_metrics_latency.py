"""Tests for the latency percentiles and peak concurrency of CommandMetrics, from real executions.

Every run() and fallback here moves the fake clock by a known number of
milliseconds, so each execution's latencies are known exactly and the
readings can be checked against percentiles computed from the same samples.
"""

from __future__ import annotations

import dataclasses
import math
import random
import threading
from concurrent.futures import Future

import pytest

import hystrixpy
from hystrixpy import (
    BadRequestError,
    Command,
    CommandMetrics,
    CommandProperties,
    EventType,
    HystrixRuntimeError,
    IsolationStrategy,
    ThreadPoolProperties,
)
from hystrixpy.testing import FakeClock

SEMAPHORE = IsolationStrategy.SEMAPHORE
PERCENTS = [0.0, 1.0, 5.0, 10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.5, 100.0]


def long_window(properties: CommandProperties) -> CommandProperties:
    """``properties`` with a percentile window (1 h) long enough for every sample a test makes."""
    return dataclasses.replace(
        properties,
        metrics_rolling_percentile_time_ms=3_600_000,
        metrics_rolling_percentile_num_buckets=6,
    )


def nearest_rank(samples: list[int], percent: float) -> int:
    """The exact nearest-rank percentile of ``samples``."""
    ordered = sorted(samples)
    rank = max(math.ceil(percent / 100.0 * len(ordered)), 1)
    return ordered[rank - 1]


def assert_close(reading: int, exact: int, percent: float) -> None:
    """``reading`` is within 1 ms or 2% (whichever is larger) of ``exact``."""
    allowed = max(1.0, 0.02 * exact)
    assert abs(reading - exact) <= allowed, f"p{percent}: read {reading}, exact {exact}"


def assert_percentiles_match(readings: list[int], samples: list[int]) -> None:
    """Every reading (for PERCENTS) is close to the exact percentile of ``samples``."""
    assert len(readings) == len(PERCENTS)
    for percent, reading in zip(PERCENTS, readings, strict=True):
        assert_close(reading, nearest_rank(samples, percent), percent)


def assert_latencies(metrics: CommandMetrics, execution: list[int], total: list[int]) -> None:
    """The metrics read the given execution and total samples (an empty list: no sample).

    Percentiles are within the promised accuracy, the 100th is the exact
    maximum, and the mean is the exact mean rounded to a whole millisecond.
    """
    series = (
        (metrics.execution_time_percentiles(PERCENTS), metrics.execution_time_mean(), execution),
        (metrics.total_time_percentiles(PERCENTS), metrics.total_time_mean(), total),
    )
    for readings, mean, samples in series:
        if not samples:
            assert readings == [0] * len(PERCENTS)
            assert mean == 0
            continue
        assert_percentiles_match(readings, samples)
        assert readings[-1] == max(samples)
        assert abs(mean - sum(samples) / len(samples)) <= 0.5


class Timed(Command[str]):
    """run() takes ``run_ms`` of fake time and fails if told to; get_fallback() ``fallback_ms``."""

    group_key = "LatencyTests"
    properties = long_window(
        CommandProperties(execution_isolation_strategy=SEMAPHORE, execution_timeout_enabled=False)
    )

    def __init__(
        self,
        clock: FakeClock,
        run_ms: float,
        *,
        fail: bool = False,
        fallback_ms: float = 0,
        command_key: str | None = None,
    ) -> None:
        super().__init__(command_key=command_key)
        self.clock = clock
        self.run_ms = run_ms
        self.fail = fail
        self.fallback_ms = fallback_ms

    def run(self) -> str:
        self.clock.advance_ms(self.run_ms)
        if self.fail:
            raise RuntimeError("dependency failed")
        return "ran"

    def get_fallback(self) -> str:
        self.clock.advance_ms(self.fallback_ms)
        return "fallback"


class TimedOnPool(Timed):
    group_key = "LatencyPoolTests"
    properties = long_window(CommandProperties(execution_timeout_enabled=False))
    thread_pool_properties = ThreadPoolProperties(core_size=2)


class Unbroken(Timed):
    """Timed with no circuit breaker, so every execution of a failure-heavy mix calls run()."""

    properties = long_window(
        CommandProperties(
            execution_isolation_strategy=SEMAPHORE,
            execution_timeout_enabled=False,
            circuit_breaker_enabled=False,
        )
    )


class UnbrokenOnPool(TimedOnPool):
    properties = long_window(
        CommandProperties(execution_timeout_enabled=False, circuit_breaker_enabled=False)
    )


class TimedNoFallback(Command[str]):
    group_key = "LatencyTests"
    properties = CommandProperties(execution_isolation_strategy=SEMAPHORE)

    def __init__(self, clock: FakeClock, run_ms: int) -> None:
        super().__init__()
        self.clock = clock
        self.run_ms = run_ms

    def run(self) -> str:
        self.clock.advance_ms(self.run_ms)
        raise RuntimeError("dependency failed")


class TimedBadRequest(TimedNoFallback):
    def run(self) -> str:
        self.clock.advance_ms(self.run_ms)
        raise BadRequestError("the caller's mistake")


class OverrunsOnCaller(Timed):
    properties = CommandProperties(execution_isolation_strategy=SEMAPHORE, execution_timeout_ms=100)


class OverrunsOnPool(Command[str]):
    """run() moves the clock past the 100 ms timeout, then stays inside run() until released."""

    group_key = "LatencyOverrunPool"
    properties = CommandProperties(execution_timeout_ms=100)

    def __init__(self, clock: FakeClock, release: threading.Event) -> None:
        super().__init__()
        self.clock = clock
        self.release = release

    def run(self) -> str:
        self.clock.advance_ms(150)
        self.release.wait(5)
        return "late"

    def get_fallback(self) -> str:
        self.clock.advance_ms(5)
        return "fallback"


class TestExecutionAndTotalLatency:
    def test_a_success_counts_run_time_as_both_latencies(self, fake_clock: FakeClock) -> None:
        """Successful run() calls of 25 and 64 ms read as both execution and total latency."""
        assert Timed(fake_clock, 25).execute() == "ran"
        assert Timed(fake_clock, 64).execute() == "ran"

        assert_latencies(hystrixpy.command_metrics("Timed"), [25, 64], [25, 64])

    def test_fallback_time_adds_to_total_latency_only(self, fake_clock: FakeClock) -> None:
        """A run() of 40 ms failing into a 15 ms fallback reads 40 ms executing, 55 ms in total."""
        assert Timed(fake_clock, 40, fail=True, fallback_ms=15).execute() == "fallback"

        assert_latencies(hystrixpy.command_metrics("Timed"), [40], [55])

    def test_on_a_pool_the_fallback_adds_to_total_latency_only(self, fake_clock: FakeClock) -> None:
        """Thread-isolated: run() on the worker is execution latency; the fallback is not."""
        assert TimedOnPool(fake_clock, 30).execute() == "ran"
        assert TimedOnPool(fake_clock, 70, fail=True, fallback_ms=12).execute() == "fallback"

        assert_latencies(hystrixpy.command_metrics("TimedOnPool"), [30, 70], [30, 82])

    def test_a_failure_without_fallback_counts_its_run_time(self, fake_clock: FakeClock) -> None:
        """A run() that fails with no fallback still adds its 18 ms to both latencies."""
        with pytest.raises(HystrixRuntimeError):
            TimedNoFallback(fake_clock, 18).execute()

        assert_latencies(hystrixpy.command_metrics("TimedNoFallback"), [18], [18])

    def test_a_bad_request_counts_its_run_time(self, fake_clock: FakeClock) -> None:
        """run() raising BadRequestError after 9 ms adds 9 ms to both latencies."""
        with pytest.raises(BadRequestError):
            TimedBadRequest(fake_clock, 9).execute()

        assert_latencies(hystrixpy.command_metrics("TimedBadRequest"), [9], [9])

    @pytest.mark.parametrize(
        ("setting", "value", "event"),
        [
            ("circuit_breaker_force_open", True, EventType.SHORT_CIRCUITED),
            (
                "execution_isolation_semaphore_max_concurrent_requests",
                0,
                EventType.SEMAPHORE_REJECTED,
            ),
        ],
    )
    def test_an_execution_that_never_ran_adds_total_latency_only(
        self, fake_clock: FakeClock, setting: str, value: object, event: EventType
    ) -> None:
        """Short-circuited or rejected: the 8 ms fallback is total latency; nothing executed."""
        assert Timed(fake_clock, 20, command_key="Gated").execute() == "ran"
        hystrixpy.configure({f"command.Gated.{setting}": value})

        command = Timed(fake_clock, 20, fallback_ms=8, command_key="Gated")
        assert command.execute() == "fallback"
        assert event in command.execution_events
        assert command.execution_time_ms == -1

        assert_latencies(hystrixpy.command_metrics("Gated"), [20], [20, 8])

    def test_a_thread_pool_rejection_adds_total_latency_only(self, fake_clock: FakeClock) -> None:
        """A command refused by its full pool adds its fallback's 6 ms to total latency only."""
        inside = threading.Event()
        release = threading.Event()

        class Occupies(Command[str]):
            group_key = "LatencyFullPool"
            properties = CommandProperties(execution_timeout_enabled=False)
            thread_pool_properties = ThreadPoolProperties(core_size=1)

            def run(self) -> str:
                inside.set()
                release.wait(5)
                return "done"

        class Refused(Timed):
            group_key = "LatencyFullPool"
            properties = CommandProperties(execution_timeout_enabled=False)

        held: Future[str] | None = None
        try:
            held = Occupies().queue()
            assert inside.wait(5)
            command = Refused(fake_clock, 20, fallback_ms=6)
            assert command.execute() == "fallback"
            assert command.is_response_thread_pool_rejected
        finally:
            release.set()
        assert held.result(5) == "done"

        assert_latencies(hystrixpy.command_metrics("Refused"), [], [6])

    def test_a_timeout_on_a_pool_adds_total_latency_only(self, fake_clock: FakeClock) -> None:
        """A pool run() still going at its timeout adds no execution latency, only total."""
        # The caller waited 150 ms, then ran a 5 ms fallback; the late run() is dropped.
        release = threading.Event()
        try:
            command = OverrunsOnPool(fake_clock, release)
            assert command.execute() == "fallback"
            assert command.is_response_timed_out
        finally:
            release.set()
        hystrixpy.thread_pool("LatencyOverrunPool").shutdown(wait=True)  # run() has returned

        metrics = hystrixpy.command_metrics("OverrunsOnPool")
        assert metrics.current_concurrent_execution_count == 0
        assert_latencies(metrics, [], [155])

    def test_a_run_overrunning_on_the_callers_thread_counts_what_it_took(
        self, fake_clock: FakeClock
    ) -> None:
        """A semaphore-isolated run() returning after its timeout counts its 150 ms as executing."""
        # The caller waited for it and then for a 5 ms fallback: 155 ms in total.
        command = OverrunsOnCaller(fake_clock, 150, fallback_ms=5)
        assert command.execute() == "fallback"
        assert command.is_response_timed_out

        assert_latencies(hystrixpy.command_metrics("OverrunsOnCaller"), [150], [155])

    def test_latency_is_rounded_to_the_nearest_millisecond(self, fake_clock: FakeClock) -> None:
        """run() calls of 2.6 ms and 7.4 ms read as 3 ms and 7 ms, not truncated."""
        first = Timed(fake_clock, 2.6)
        second = Timed(fake_clock, 7.4)
        first.execute()
        second.execute()

        assert (first.execution_time_ms, second.execution_time_ms) == (3, 7)
        assert_latencies(hystrixpy.command_metrics("Timed"), [3, 7], [3, 7])

    def test_nothing_executed_reads_zero(self, fake_clock: FakeClock) -> None:
        """Before any execution every latency reading is 0."""
        Timed(fake_clock, 0).metrics  # noqa: B018 - creates the key's state

        assert_latencies(hystrixpy.command_metrics("Timed"), [], [])

    def test_a_percentile_outside_0_to_100_is_refused(self, fake_clock: FakeClock) -> None:
        """Asking for the 101st or the -1st percentile raises ValueError naming it."""
        Timed(fake_clock, 5).execute()
        metrics = hystrixpy.command_metrics("Timed")

        with pytest.raises(ValueError, match="101"):
            metrics.execution_time_percentile(101)
        with pytest.raises(ValueError, match="-1"):
            metrics.total_time_percentiles([50, -1])


class TestPercentileAccuracy:
    @pytest.mark.parametrize("seed", [3, 17, 2024])
    def test_execution_percentiles_match_the_exact_ones(
        self, fake_clock: FakeClock, seed: int
    ) -> None:
        """Over 1,500 varied run() times, every percentile is within 1 ms or 2% of exact."""
        rng = random.Random(seed)
        samples = [
            rng.choice(
                [
                    rng.randint(0, 20),
                    rng.randint(20, 300),
                    int(rng.lognormvariate(4.0, 1.0)),
                    rng.randint(1000, 5000),
                ]
            )
            for _ in range(1500)
        ]
        for run_ms in samples:
            Timed(fake_clock, run_ms).execute()

        metrics = hystrixpy.command_metrics("Timed")
        assert_percentiles_match(metrics.execution_time_percentiles(PERCENTS), samples)
        assert_percentiles_match(metrics.total_time_percentiles(PERCENTS), samples)
        assert metrics.execution_time_percentile(100) == max(samples)
        assert abs(metrics.execution_time_mean() - sum(samples) / len(samples)) <= 0.5
        assert abs(metrics.total_time_mean() - sum(samples) / len(samples)) <= 0.5

    def test_total_percentiles_match_the_exact_ones_with_fallbacks(
        self, fake_clock: FakeClock
    ) -> None:
        """Failures with fallbacks of varied length: total percentiles track run() plus fallback."""
        rng = random.Random(99)
        runs: list[int] = []
        totals: list[int] = []
        for _ in range(800):
            run_ms, fallback_ms = rng.randint(0, 400), rng.randint(0, 600)
            failing = rng.random() < 0.5
            Unbroken(fake_clock, run_ms, fail=failing, fallback_ms=fallback_ms).execute()
            runs.append(run_ms)
            totals.append(run_ms + fallback_ms if failing else run_ms)

        metrics = hystrixpy.command_metrics("Unbroken")
        assert_percentiles_match(metrics.execution_time_percentiles(PERCENTS), runs)
        assert_percentiles_match(metrics.total_time_percentiles(PERCENTS), totals)
        assert abs(metrics.execution_time_mean() - sum(runs) / len(runs)) <= 0.5
        assert abs(metrics.total_time_mean() - sum(totals) / len(totals)) <= 0.5

    def test_thread_isolated_percentiles_match_the_exact_ones(self, fake_clock: FakeClock) -> None:
        """On a pool, percentiles of run() and of the caller's wait plus fallback are accurate."""
        rng = random.Random(5)
        runs: list[int] = []
        totals: list[int] = []
        for _ in range(150):
            run_ms, fallback_ms = rng.randint(0, 900), rng.randint(0, 90)
            failing = rng.random() < 0.3
            UnbrokenOnPool(fake_clock, run_ms, fail=failing, fallback_ms=fallback_ms).execute()
            runs.append(run_ms)
            totals.append(run_ms + fallback_ms if failing else run_ms)

        metrics = hystrixpy.command_metrics("UnbrokenOnPool")
        assert_percentiles_match(metrics.execution_time_percentiles(PERCENTS), runs)
        assert_percentiles_match(metrics.total_time_percentiles(PERCENTS), totals)

    def test_single_and_batched_readings_agree(self, fake_clock: FakeClock) -> None:
        """execution_time_percentile(p) equals the matching entry of execution_time_percentiles."""
        for run_ms in range(0, 1000, 7):
            Unbroken(fake_clock, run_ms, fail=run_ms % 2 == 1, fallback_ms=3).execute()

        metrics = hystrixpy.command_metrics("Unbroken")
        batched = metrics.execution_time_percentiles(PERCENTS)
        totals = metrics.total_time_percentiles(PERCENTS)
        assert [metrics.execution_time_percentile(p) for p in PERCENTS] == batched
        assert [metrics.total_time_percentile(p) for p in PERCENTS] == totals

    def test_snapshot_matches_the_separate_readings(self, fake_clock: FakeClock) -> None:
        """A snapshot's percentiles and means equal those read one by one at the same time."""
        for run_ms in (3, 14, 15, 92, 650, 2100):
            Timed(fake_clock, run_ms, fail=run_ms > 100, fallback_ms=11).execute()

        metrics = hystrixpy.command_metrics("Timed")
        snapshot = metrics.snapshot(PERCENTS)
        assert snapshot.execution_percentiles == metrics.execution_time_percentiles(PERCENTS)
        assert snapshot.total_percentiles == metrics.total_time_percentiles(PERCENTS)
        assert snapshot.execution_mean == metrics.execution_time_mean()
        assert snapshot.total_mean == metrics.total_time_mean()
        assert snapshot.rolling_count(EventType.SUCCESS) == 4
        assert snapshot.rolling_count(EventType.FALLBACK_SUCCESS) == 2


class TestPercentileWindow:
    def test_samples_leave_with_their_bucket(self, fake_clock: FakeClock) -> None:
        """In a 1 s window of 4 buckets, an old sample leaves while a newer one stays."""

        class ShortWindow(Timed):
            properties = CommandProperties(
                execution_isolation_strategy=SEMAPHORE,
                metrics_rolling_percentile_time_ms=1000,
                metrics_rolling_percentile_num_buckets=4,
            )

        ShortWindow(fake_clock, 10).execute()  # ends 10 ms into the first bucket
        fake_clock.advance(0.49)
        ShortWindow(fake_clock, 50).execute()  # ends 550 ms in: the third bucket
        metrics = hystrixpy.command_metrics("ShortWindow")
        assert_latencies(metrics, [10, 50], [10, 50])

        fake_clock.advance(0.55)  # 1.1 s in: the first bucket has left the window

        assert_latencies(metrics, [50], [50])

        fake_clock.advance(0.5)  # 1.6 s in: so has the third

        assert_latencies(metrics, [], [])

    def test_the_default_window_keeps_samples_for_sixty_seconds(
        self, fake_clock: FakeClock
    ) -> None:
        """With the defaults (60 s in 6 buckets) a sample is read for a minute, then not."""

        class DefaultWindow(Timed):
            properties = CommandProperties(execution_isolation_strategy=SEMAPHORE)

        DefaultWindow(fake_clock, 40).execute()
        metrics = hystrixpy.command_metrics("DefaultWindow")

        fake_clock.advance(59.9)
        assert_latencies(metrics, [40], [40])

        fake_clock.advance(0.2)
        assert_latencies(metrics, [], [])

    def test_a_configured_window_applies_to_a_key_in_use(self, fake_clock: FakeClock) -> None:
        """Configuring a 2 s percentile window at run time makes samples leave after 2 s."""

        class Reconfigured(Timed):
            properties = CommandProperties(execution_isolation_strategy=SEMAPHORE)

        hystrixpy.configure(
            {
                "command.Reconfigured.metrics_rolling_percentile_time_ms": 2000,
                "command.Reconfigured.metrics_rolling_percentile_num_buckets": 2,
            }
        )
        Reconfigured(fake_clock, 33).execute()
        metrics = hystrixpy.command_metrics("Reconfigured")
        assert_latencies(metrics, [33], [33])

        fake_clock.advance(1.5)
        assert_latencies(metrics, [33], [33])
        fake_clock.advance(1.0)
        assert_latencies(metrics, [], [])


class TestPercentilesDisabled:
    def test_disabled_percentiles_read_zero_while_counts_go_on(self, fake_clock: FakeClock) -> None:
        """metrics_rolling_percentile_enabled=False: latencies read 0; events are still counted."""

        class Unmeasured(Timed):
            properties = CommandProperties(
                execution_isolation_strategy=SEMAPHORE,
                metrics_rolling_percentile_enabled=False,
            )

        for run_ms in (5, 50, 500):
            Unmeasured(fake_clock, run_ms, fail=run_ms == 50, fallback_ms=7).execute()

        metrics = hystrixpy.command_metrics("Unmeasured")
        assert_latencies(metrics, [], [])
        snapshot = metrics.snapshot([50, 99])
        assert snapshot.execution_percentiles == [0, 0]
        assert snapshot.total_percentiles == [0, 0]
        assert snapshot.execution_mean == snapshot.total_mean == 0
        assert metrics.rolling_count(EventType.SUCCESS) == 2
        assert metrics.rolling_count(EventType.FAILURE) == 1

    def test_switching_percentiles_off_and_on_at_run_time(self, fake_clock: FakeClock) -> None:
        """configure() turns percentiles off (reads 0) and on again (only new samples count)."""
        Timed(fake_clock, 20).execute()
        assert_latencies(hystrixpy.command_metrics("Timed"), [20], [20])

        hystrixpy.configure({"command.Timed.metrics_rolling_percentile_enabled": False})
        assert_latencies(hystrixpy.command_metrics("Timed"), [], [])
        Timed(fake_clock, 30).execute()
        assert_latencies(hystrixpy.command_metrics("Timed"), [], [])

        hystrixpy.configure({"command.Timed.metrics_rolling_percentile_enabled": None})
        assert_latencies(hystrixpy.command_metrics("Timed"), [], [])
        Timed(fake_clock, 40, fail=True, fallback_ms=4).execute()

        metrics = hystrixpy.command_metrics("Timed")
        assert_latencies(metrics, [40], [44])
        assert metrics.rolling_count(EventType.SUCCESS) == 2

    def test_the_hystrix_name_turns_percentiles_off_for_every_command(
        self, fake_clock: FakeClock
    ) -> None:
        """hystrix.command.default.metrics.rollingPercentile.enabled=false reaches every key."""
        hystrixpy.configure({"hystrix.command.default.metrics.rollingPercentile.enabled": "false"})
        Timed(fake_clock, 12).execute()
        TimedOnPool(fake_clock, 12).execute()

        for key in ("Timed", "TimedOnPool"):
            assert_latencies(hystrixpy.command_metrics(key), [], [])


class TestRollingMaxConcurrentExecutions:
    @staticmethod
    def _held_class(
        isolation: IsolationStrategy, entered: threading.Barrier, release: threading.Event
    ) -> type[Command[str]]:
        class Held(Command[str]):
            group_key = f"LatencyHeld{isolation.name}"
            properties = CommandProperties(
                execution_isolation_strategy=isolation, execution_timeout_enabled=False
            )
            thread_pool_properties = ThreadPoolProperties(core_size=8)

            def run(self) -> str:
                entered.wait(5)
                release.wait(5)
                return "done"

        return Held

    @pytest.mark.parametrize("isolation", [SEMAPHORE, IsolationStrategy.THREAD])
    def test_the_peak_of_runs_held_at_once(
        self, fake_clock: FakeClock, isolation: IsolationStrategy
    ) -> None:
        """Four run() calls held inside at once make a peak of 4 that stays after they return."""
        entered = threading.Barrier(5)
        release = threading.Event()
        held = self._held_class(isolation, entered, release)
        results: list[str] = []
        threads = [
            threading.Thread(target=lambda: results.append(held().execute()), daemon=True)
            for _ in range(4)
        ]
        try:
            for thread in threads:
                thread.start()
            entered.wait(5)
            metrics = hystrixpy.command_metrics("Held")
            assert metrics.current_concurrent_execution_count == 4
            assert metrics.rolling_max_concurrent_executions == 4
        finally:
            release.set()
            for thread in threads:
                thread.join(5)

        assert not any(thread.is_alive() for thread in threads)
        assert results == ["done"] * 4
        assert metrics.current_concurrent_execution_count == 0
        assert metrics.rolling_max_concurrent_executions == 4

    def test_the_peak_follows_the_rolling_window(self, fake_clock: FakeClock) -> None:
        """A peak of 3 outlasts a later peak of 2 until its 10 s window passes."""

        def hold(count: int) -> None:
            entered = threading.Barrier(count + 1)
            release = threading.Event()
            held = self._held_class(SEMAPHORE, entered, release)
            threads = [
                threading.Thread(target=lambda: held().execute(), daemon=True) for _ in range(count)
            ]
            try:
                for thread in threads:
                    thread.start()
                entered.wait(5)
            finally:
                release.set()
                for thread in threads:
                    thread.join(5)
            assert not any(thread.is_alive() for thread in threads)

        hold(3)
        metrics = hystrixpy.command_metrics("Held")
        assert metrics.rolling_max_concurrent_executions == 3

        fake_clock.advance(5.0)
        hold(2)
        assert metrics.rolling_max_concurrent_executions == 3

        fake_clock.advance(5.5)  # the first peak's bucket has left; the second's has not
        assert metrics.rolling_max_concurrent_executions == 2

        fake_clock.advance(5.0)
        assert metrics.rolling_max_concurrent_executions == 0
        assert metrics.current_concurrent_execution_count == 0
