"""Tests for ThreadPoolMetrics, read through hystrixpy.thread_pool_metrics after real executions.

Work is held inside run() by Events, so the gauges are read while a known
number of tasks run or wait. A worker settles its counts just after run()
returns; before reading completed counts a test waits for the command's
result and then shuts the pool down with ``shutdown(wait=True)``, which joins
the workers.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future

import pytest

import hystrixpy
from hystrixpy import (
    Command,
    CommandProperties,
    EventType,
    IsolationStrategy,
    RejectedError,
    ThreadPoolMetrics,
    ThreadPoolProperties,
)
from hystrixpy.testing import FakeClock

NO_TIMEOUT = CommandProperties(execution_timeout_enabled=False)


class Gate:
    """Holds run() calls inside until released, and counts those that got in."""

    def __init__(self) -> None:
        self.started = threading.Semaphore(0)
        self.release = threading.Event()

    def enter(self) -> str:
        """Called from run(): note the start, then wait to be let go."""
        self.started.release()
        assert self.release.wait(5)
        return "done"

    def wait_started(self, count: int) -> bool:
        """Wait until ``count`` more run() calls have started."""
        return all(self.started.acquire(timeout=5) for _ in range(count))


class Held(Command[str]):
    """Waits inside run() on its gate; falls back to "fallback" when refused."""

    group_key = "PoolMetricsDefault"
    properties = NO_TIMEOUT

    def __init__(self, gate: Gate, *, thread_pool_key: str | None = None) -> None:
        super().__init__(thread_pool_key=thread_pool_key)
        self.gate = gate

    def run(self) -> str:
        return self.gate.enter()

    def get_fallback(self) -> str:
        return "fallback"


def held_on(
    pool_key: str, properties: ThreadPoolProperties, gate: Gate, count: int
) -> list[Future[str]]:
    """Queue ``count`` Held commands on a new pool ``pool_key`` created with ``properties``."""
    pool = hystrixpy.thread_pool(pool_key, properties)
    assert pool.properties.core_size == properties.core_size
    return [Held(gate, thread_pool_key=pool_key).queue() for _ in range(count)]


def drain(pool_key: str, futures: list[Future[str]]) -> list[str]:
    """Every result, then a joined shutdown so the workers' counts are settled."""
    results = [future.result(5) for future in futures]
    hystrixpy.thread_pool(pool_key).shutdown(wait=True)
    return results


class TestThreadPoolGauges:
    def test_active_and_queued_tasks_while_runs_are_held(self, fake_clock: FakeClock) -> None:
        """Two workers busy and two tasks waiting read as 2 active and 2 queued."""
        gate = Gate()
        properties = ThreadPoolProperties(core_size=2, max_queue_size=5)
        futures: list[Future[str]] = []
        try:
            futures = held_on("PoolGauges", properties, gate, 4)
            assert gate.wait_started(2)
            metrics = hystrixpy.thread_pool_metrics("PoolGauges")

            assert metrics.current_active_count == 2
            assert metrics.current_queue_size == 2
            assert metrics.current_pool_size == 2
            assert metrics.current_largest_pool_size == 2
            assert metrics.current_completed_task_count == 0
            assert metrics.current_task_count == 4
            assert metrics.rolling_count_threads_executed == 2
            assert metrics.rolling_max_active_threads == 2
        finally:
            gate.release.set()

        assert drain("PoolGauges", futures) == ["done"] * 4
        assert metrics.current_active_count == 0
        assert metrics.current_queue_size == 0
        assert metrics.current_completed_task_count == 4
        assert metrics.current_task_count == 4
        assert metrics.current_largest_pool_size == 2
        assert metrics.rolling_count_threads_executed == 4
        assert metrics.cumulative_count_threads_executed == 4
        assert metrics.rolling_count_threads_rejected == 0

    def test_a_queued_task_becomes_active_when_a_worker_frees_up(
        self, fake_clock: FakeClock
    ) -> None:
        """With one worker, releasing the running task lets the queued one start."""
        first, second = Gate(), Gate()
        properties = ThreadPoolProperties(core_size=1, max_queue_size=3)
        hystrixpy.thread_pool("PoolHandOver", properties)
        futures: list[Future[str]] = []
        try:
            futures.append(Held(first, thread_pool_key="PoolHandOver").queue())
            futures.append(Held(second, thread_pool_key="PoolHandOver").queue())
            assert first.wait_started(1)
            metrics = hystrixpy.thread_pool_metrics("PoolHandOver")
            assert (metrics.current_active_count, metrics.current_queue_size) == (1, 1)

            first.release.set()
            assert second.wait_started(1)

            assert (metrics.current_active_count, metrics.current_queue_size) == (1, 0)
            assert metrics.current_task_count == 2
            assert metrics.rolling_count_threads_executed == 2
            assert metrics.rolling_max_active_threads == 1
        finally:
            first.release.set()
            second.release.set()

        assert drain("PoolHandOver", futures) == ["done", "done"]
        assert metrics.current_completed_task_count == 2

    def test_workers_grow_up_to_the_maximum_size(self, fake_clock: FakeClock) -> None:
        """A pool allowed to diverge runs up to maximum_size workers; the largest size stays."""
        gate = Gate()
        properties = ThreadPoolProperties(
            core_size=1, maximum_size=3, allow_maximum_size_to_diverge_from_core_size=True
        )
        futures: list[Future[str]] = []
        try:
            futures = held_on("PoolGrows", properties, gate, 3)
            assert gate.wait_started(3)
            metrics = hystrixpy.thread_pool_metrics("PoolGrows")

            assert metrics.current_pool_size == 3
            assert metrics.current_largest_pool_size == 3
            assert metrics.current_active_count == 3
            assert metrics.rolling_max_active_threads == 3
            assert (metrics.current_core_pool_size, metrics.current_maximum_pool_size) == (1, 3)
        finally:
            gate.release.set()

        assert drain("PoolGrows", futures) == ["done"] * 3
        assert metrics.current_pool_size == 0  # shut down: every worker has left
        assert metrics.current_largest_pool_size == 3
        assert metrics.current_completed_task_count == 3

    @pytest.mark.parametrize(
        ("properties", "core", "maximum"),
        [
            (ThreadPoolProperties(), 10, 10),
            (ThreadPoolProperties(core_size=3, maximum_size=8), 3, 3),
            (
                ThreadPoolProperties(
                    core_size=3, maximum_size=8, allow_maximum_size_to_diverge_from_core_size=True
                ),
                3,
                8,
            ),
        ],
    )
    def test_core_and_maximum_sizes(
        self, fake_clock: FakeClock, properties: ThreadPoolProperties, core: int, maximum: int
    ) -> None:
        """The core size is as configured; the maximum is maximum_size only when allowed."""
        hystrixpy.thread_pool("PoolSizes", properties)
        metrics = hystrixpy.thread_pool_metrics("PoolSizes")

        assert metrics.current_core_pool_size == core
        assert metrics.current_maximum_pool_size == maximum
        assert metrics.current_pool_size == 0  # no worker until work arrives

    def test_configured_sizes_show_once_the_pool_is_used_again(self, fake_clock: FakeClock) -> None:
        """After configure() changes the sizes, the pool's next use shows the new ones."""

        class Quick(Command[str]):
            group_key = "PoolResized"
            properties = NO_TIMEOUT
            thread_pool_properties = ThreadPoolProperties(core_size=2)

            def run(self) -> str:
                return "quick"

        assert Quick().execute() == "quick"
        metrics = hystrixpy.thread_pool_metrics("PoolResized")
        assert (metrics.current_core_pool_size, metrics.current_maximum_pool_size) == (2, 2)

        hystrixpy.configure({"threadpool.PoolResized.core_size": 4})
        assert Quick().execute() == "quick"

        metrics = hystrixpy.thread_pool_metrics("PoolResized")
        assert (metrics.current_core_pool_size, metrics.current_maximum_pool_size) == (4, 4)

    def test_a_pool_shared_by_two_commands_counts_both(self, fake_clock: FakeClock) -> None:
        """Tasks of two command keys on one pool key add up in that pool's metrics."""

        class Reads(Command[str]):
            group_key = "PoolShared"
            properties = NO_TIMEOUT

            def run(self) -> str:
                return "read"

        class Writes(Reads):
            def run(self) -> str:
                return "written"

        results = [Reads().execute(), Writes().execute(), Writes().execute()]
        assert results == ["read", "written", "written"]
        hystrixpy.thread_pool("PoolShared").shutdown(wait=True)

        metrics = hystrixpy.thread_pool_metrics("PoolShared")
        assert metrics.cumulative_count_threads_executed == 3
        assert metrics.current_completed_task_count == 3
        assert hystrixpy.command_metrics("Writes").rolling_count(EventType.SUCCESS) == 2


class TestThreadPoolRollingCounts:
    def test_rejections_from_a_full_pool_are_counted(self, fake_clock: FakeClock) -> None:
        """One worker, no queue: while it is busy three more executions are rejected and counted."""
        gate = Gate()
        futures: list[Future[str]] = []
        try:
            futures = held_on("PoolFull", ThreadPoolProperties(core_size=1), gate, 1)
            assert gate.wait_started(1)
            refused = [Held(gate, thread_pool_key="PoolFull") for _ in range(3)]
            assert [command.execute() for command in refused] == ["fallback"] * 3
            assert all(command.is_response_thread_pool_rejected for command in refused)

            metrics = hystrixpy.thread_pool_metrics("PoolFull")
            assert metrics.rolling_count_threads_rejected == 3
            assert metrics.cumulative_count_threads_rejected == 3
            assert metrics.rolling_count_threads_executed == 1
            assert metrics.current_task_count == 1
        finally:
            gate.release.set()

        assert drain("PoolFull", futures) == ["done"]
        assert hystrixpy.command_metrics("Held").rolling_count(EventType.THREAD_POOL_REJECTED) == 3

    def test_the_queue_rejection_threshold_counts_as_full(self, fake_clock: FakeClock) -> None:
        """A queue of 10 with a threshold of 2 holds two waiting tasks; the next is rejected."""
        gate = Gate()
        properties = ThreadPoolProperties(
            core_size=1, max_queue_size=10, queue_size_rejection_threshold=2
        )
        futures: list[Future[str]] = []
        try:
            futures = held_on("PoolThreshold", properties, gate, 3)
            assert gate.wait_started(1)
            assert Held(gate, thread_pool_key="PoolThreshold").execute() == "fallback"

            metrics = hystrixpy.thread_pool_metrics("PoolThreshold")
            assert metrics.current_queue_size == 2
            assert metrics.current_active_count == 1
            assert metrics.rolling_count_threads_rejected == 1
        finally:
            gate.release.set()

        assert drain("PoolThreshold", futures) == ["done"] * 3
        assert metrics.cumulative_count_threads_executed == 3
        assert metrics.cumulative_count_threads_rejected == 1

    def test_work_submitted_directly_is_counted(self, fake_clock: FakeClock) -> None:
        """Callables given to submit() count as executed, and refused ones as rejected."""
        gate = Gate()
        pool = hystrixpy.thread_pool("PoolSubmit", ThreadPoolProperties(core_size=1))
        try:
            busy = pool.submit(gate.enter)
            assert gate.wait_started(1)
            with pytest.raises(RejectedError):
                pool.submit(gate.enter)
        finally:
            gate.release.set()
        assert busy.result(5) == "done"
        pool.shutdown(wait=True)

        metrics = hystrixpy.thread_pool_metrics("PoolSubmit")
        assert metrics.cumulative_count_threads_executed == 1
        assert metrics.cumulative_count_threads_rejected == 1
        assert metrics.current_completed_task_count == 1

    def test_counts_leave_the_rolling_window_but_stay_cumulative(
        self, fake_clock: FakeClock
    ) -> None:
        """After the pool's 10 s window rolling counts and the peak read 0; cumulative ones stay."""
        gate = Gate()
        futures: list[Future[str]] = []
        try:
            futures = held_on("PoolExpiry", ThreadPoolProperties(core_size=2), gate, 2)
            assert gate.wait_started(2)
            assert Held(gate, thread_pool_key="PoolExpiry").execute() == "fallback"
        finally:
            gate.release.set()
        assert drain("PoolExpiry", futures) == ["done", "done"]
        metrics = hystrixpy.thread_pool_metrics("PoolExpiry")
        assert metrics.rolling_count_threads_executed == 2
        assert metrics.rolling_count_threads_rejected == 1
        assert metrics.rolling_max_active_threads == 2

        fake_clock.advance(9.5)
        assert metrics.rolling_count_threads_executed == 2

        fake_clock.advance(0.6)

        assert metrics.rolling_count_threads_executed == 0
        assert metrics.rolling_count_threads_rejected == 0
        assert metrics.rolling_max_active_threads == 0
        assert metrics.cumulative_count_threads_executed == 2
        assert metrics.cumulative_count_threads_rejected == 1
        assert metrics.current_completed_task_count == 2

    def test_the_pools_own_window_decides_expiry(self, fake_clock: FakeClock) -> None:
        """A pool with a 2 s window in 2 buckets forgets its counts after 2 s, not 10 s."""
        properties = ThreadPoolProperties(
            core_size=1, metrics_rolling_stats_time_ms=2000, metrics_rolling_stats_num_buckets=2
        )
        pool = hystrixpy.thread_pool("PoolShortWindow", properties)
        assert pool.submit(lambda: "x").result(5) == "x"
        pool.shutdown(wait=True)
        metrics = hystrixpy.thread_pool_metrics("PoolShortWindow")
        assert metrics.rolling_window_ms == 2000

        fake_clock.advance(1.5)
        assert metrics.rolling_count_threads_executed == 1
        fake_clock.advance(1.0)
        assert metrics.rolling_count_threads_executed == 0
        assert metrics.cumulative_count_threads_executed == 1

    def test_a_window_configured_at_run_time_starts_afresh(self, fake_clock: FakeClock) -> None:
        """A new pool window from configure() empties rolling counts, not cumulative ones."""
        pool = hystrixpy.thread_pool("PoolRewindowed", ThreadPoolProperties(core_size=1))
        assert pool.submit(lambda: "x").result(5) == "x"
        metrics = hystrixpy.thread_pool_metrics("PoolRewindowed")
        assert metrics.rolling_count_threads_executed == 1

        hystrixpy.configure(
            {
                "threadpool.PoolRewindowed.metrics_rolling_stats_time_ms": 4000,
                "threadpool.PoolRewindowed.metrics_rolling_stats_num_buckets": 4,
            }
        )
        assert hystrixpy.thread_pool("PoolRewindowed") is pool  # the next use adopts it
        pool.shutdown(wait=True)

        assert metrics.rolling_window_ms == 4000
        assert metrics.rolling_count_threads_executed == 0
        assert metrics.cumulative_count_threads_executed == 1
        assert metrics.current_completed_task_count == 1

    def test_the_peak_of_active_threads_follows_the_window(self, fake_clock: FakeClock) -> None:
        """A peak of 3 busy workers is read for the pool's 10 s window, and not after."""
        gate = Gate()
        futures: list[Future[str]] = []
        try:
            futures = held_on("PoolPeak", ThreadPoolProperties(core_size=4), gate, 3)
            assert gate.wait_started(3)
            metrics = hystrixpy.thread_pool_metrics("PoolPeak")
            assert metrics.rolling_max_active_threads == 3
        finally:
            gate.release.set()
        assert drain("PoolPeak", futures) == ["done"] * 3
        assert metrics.current_active_count == 0
        assert metrics.rolling_max_active_threads == 3

        fake_clock.advance(9.9)
        assert metrics.rolling_max_active_threads == 3
        fake_clock.advance(0.2)
        assert metrics.rolling_max_active_threads == 0


class TestThreadPoolMetricsLookup:
    def test_an_unknown_pool_key_raises_key_error(self) -> None:
        """Asking for a pool nothing has used raises KeyError naming the key."""
        with pytest.raises(KeyError, match="NoSuchPool"):
            hystrixpy.thread_pool_metrics("NoSuchPool")

    def test_semaphore_isolated_commands_make_no_pool(self, fake_clock: FakeClock) -> None:
        """A semaphore-isolated command runs without a pool, so its group has no pool metrics."""

        class OnCaller(Command[str]):
            group_key = "PoolNeverMade"
            properties = CommandProperties(execution_isolation_strategy=IsolationStrategy.SEMAPHORE)

            def run(self) -> str:
                return "here"

        assert OnCaller().execute() == "here"
        with pytest.raises(KeyError):
            hystrixpy.thread_pool_metrics("PoolNeverMade")

    def test_the_metrics_belong_to_their_pool(self, fake_clock: FakeClock) -> None:
        """thread_pool_metrics(key) is the ThreadPoolMetrics of that very pool, named after it."""
        pool = hystrixpy.thread_pool("PoolOwned")
        metrics = hystrixpy.thread_pool_metrics("PoolOwned")

        assert isinstance(metrics, ThreadPoolMetrics)
        assert metrics is pool.metrics
        assert metrics.pool_key == "PoolOwned"
        assert "PoolOwned" in repr(metrics)

    def test_a_reset_forgets_the_pools_metrics(self, fake_clock: FakeClock) -> None:
        """After hystrixpy.reset() a used pool key is unknown again."""
        assert hystrixpy.thread_pool("PoolForgotten").submit(lambda: 1).result(5) == 1
        hystrixpy.reset()

        with pytest.raises(KeyError):
            hystrixpy.thread_pool_metrics("PoolForgotten")
