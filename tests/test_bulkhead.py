"""Tests for hystrixpy.bulkhead: the semaphore and the thread-pool bulkheads."""

from __future__ import annotations

import contextvars
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest

import hystrixpy
from hystrixpy import Command, RejectedError, ThreadPoolProperties
from hystrixpy.bulkhead import SemaphoreBulkhead, ThreadPoolBulkhead
from hystrixpy.testing import FakeClock, use_clock

PROJECT_ROOT = Path(hystrixpy.__file__).resolve().parent.parent
request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id")


class Blocker:
    """A task that reports when it starts and then waits to be released."""

    def __init__(self, value: str = "done") -> None:
        self.value = value
        self.started = threading.Event()
        self.release = threading.Event()
        self.thread: threading.Thread | None = None

    def __call__(self) -> str:
        self.thread = threading.current_thread()
        self.started.set()
        self.release.wait(10)
        return self.value


@pytest.fixture
def new_pool() -> Iterator[Callable[..., ThreadPoolBulkhead]]:
    """Make pools that are shut down (waiting for their workers) after the test."""
    pools: list[ThreadPoolBulkhead] = []

    def make(pool_key: str, **properties: Any) -> ThreadPoolBulkhead:
        pool = ThreadPoolBulkhead(pool_key, ThreadPoolProperties(**properties))
        pools.append(pool)
        return pool

    yield make
    for pool in pools:
        pool.shutdown(wait=True)


@pytest.fixture
def blocker(new_pool: Callable[..., ThreadPoolBulkhead]) -> Iterator[Callable[..., Blocker]]:
    """Make blocking tasks that are all released before the pools shut down."""
    made: list[Blocker] = []

    def make(value: str = "done") -> Blocker:
        task = Blocker(value)
        made.append(task)
        return task

    yield make
    for task in made:
        task.release.set()


class WaitSignallingClock(FakeClock):
    """A fake clock that tells when the thread named ``thread_name`` starts waiting on it."""

    def __init__(self, thread_name: str) -> None:
        super().__init__()
        self.thread_name = thread_name
        self.waiting = threading.Event()

    def wait(self, lock: threading.Lock, timeout: float) -> bool:
        if threading.current_thread().name == self.thread_name:
            self.waiting.set()
        return super().wait(lock, timeout)


class Queued(Command[str]):
    """A thread-isolated command on the CancelledPool pool."""

    group_key = "CancelledGroup"
    thread_pool_key = "CancelledPool"

    def __init__(self) -> None:
        super().__init__()
        self.ran = False

    def run(self) -> str:
        self.ran = True
        return "ran"

    def get_fallback(self) -> str:
        return "fallback"


def start_running(pool: ThreadPoolBulkhead, task: Blocker) -> Future[Any]:
    """Submit ``task`` and wait until it runs on a worker."""
    future = pool.submit(task)
    assert task.started.wait(5)
    return future


class TestSemaphoreBulkhead:
    def test_acquire_up_to_the_limit_then_refuse(self) -> None:
        """Permits are handed out up to the limit; one more is refused until one is released."""
        semaphore = SemaphoreBulkhead(2)

        assert semaphore.try_acquire()
        assert semaphore.try_acquire()
        assert not semaphore.try_acquire()
        assert semaphore.in_use == 2

        semaphore.release()
        assert semaphore.in_use == 1
        assert semaphore.try_acquire()
        assert repr(semaphore) == "SemaphoreBulkhead(2/2)"

    def test_zero_limit_refuses_everything(self) -> None:
        """A semaphore of size zero admits nothing."""
        semaphore = SemaphoreBulkhead(0)

        assert not semaphore.try_acquire()
        assert semaphore.in_use == 0

    def test_never_blocks_when_full(self) -> None:
        """try_acquire on a full semaphore returns False at once, even from another thread."""
        semaphore = SemaphoreBulkhead(1)
        assert semaphore.try_acquire()
        answers: list[bool] = []

        thread = threading.Thread(target=lambda: answers.append(semaphore.try_acquire()))
        thread.start()
        thread.join(5)

        assert not thread.is_alive()
        assert answers == [False]

    def test_concurrent_acquirers_never_exceed_the_limit(self) -> None:
        """Many threads racing for permits get exactly as many as the limit."""
        semaphore = SemaphoreBulkhead(3)
        racers = 8
        barrier = threading.Barrier(racers)
        answers: list[bool] = []

        def race() -> None:
            barrier.wait(5)
            answers.append(semaphore.try_acquire())

        threads = [threading.Thread(target=race) for _ in range(racers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(5)

        assert sorted(answers) == [False] * 5 + [True] * 3
        assert semaphore.in_use == 3

    def test_shrinking_while_permits_are_held_takes_effect_as_they_are_released(self) -> None:
        """Lowering the limit below the permits in use refuses new ones until enough return."""
        semaphore = SemaphoreBulkhead(3)
        for _ in range(3):
            assert semaphore.try_acquire()

        semaphore.resize(1)

        assert semaphore.limit == 1
        assert semaphore.in_use == 3
        assert not semaphore.try_acquire()
        semaphore.release()
        semaphore.release()
        assert semaphore.in_use == 1
        assert not semaphore.try_acquire()
        semaphore.release()
        assert semaphore.in_use == 0
        assert semaphore.try_acquire()
        assert not semaphore.try_acquire()

    def test_shrinking_with_free_permits_removes_them_at_once(self) -> None:
        """Lowering the limit takes free permits away immediately."""
        semaphore = SemaphoreBulkhead(3)
        assert semaphore.try_acquire()

        semaphore.resize(2)

        assert semaphore.in_use == 1
        assert semaphore.try_acquire()
        assert not semaphore.try_acquire()

    def test_growing_while_in_debt_repays_the_debt_first(self) -> None:
        """Raising the limit after a shrink first cancels what is still owed."""
        semaphore = SemaphoreBulkhead(3)
        for _ in range(3):
            assert semaphore.try_acquire()
        semaphore.resize(1)

        semaphore.resize(2)

        assert semaphore.in_use == 3
        assert not semaphore.try_acquire()
        semaphore.release()
        assert semaphore.in_use == 2
        assert not semaphore.try_acquire()
        semaphore.release()
        assert semaphore.try_acquire()
        assert not semaphore.try_acquire()

    def test_growing_adds_free_permits(self) -> None:
        """Raising the limit makes more permits available at once."""
        semaphore = SemaphoreBulkhead(1)
        assert semaphore.try_acquire()

        semaphore.resize(3)

        assert semaphore.try_acquire()
        assert semaphore.try_acquire()
        assert not semaphore.try_acquire()
        assert semaphore.in_use == 3


class TestThreadPoolBulkhead:
    def test_workers_are_named_daemon_threads(
        self, new_pool: Callable[..., ThreadPoolBulkhead], blocker: Callable[..., Blocker]
    ) -> None:
        """Each worker is a daemon thread named hystrix-<PoolKey>-<n>."""
        pool = new_pool("Names", core_size=3)
        tasks = [blocker() for _ in range(3)]
        for task in tasks:
            start_running(pool, task)

        threads = [task.thread for task in tasks]
        assert sorted(t.name for t in threads if t) == [
            "hystrix-Names-1",
            "hystrix-Names-2",
            "hystrix-Names-3",
        ]
        assert all(t is not None and t.daemon for t in threads)

    def test_workers_start_lazily_up_to_core_size(
        self, new_pool: Callable[..., ThreadPoolBulkhead], blocker: Callable[..., Blocker]
    ) -> None:
        """No thread exists before work arrives; each busy task adds one up to core_size."""
        pool = new_pool("Lazy", core_size=2, max_queue_size=5)
        assert pool.pool_size == 0
        assert not [t for t in threading.enumerate() if t.name.startswith("hystrix-Lazy-")]

        start_running(pool, blocker())
        assert pool.pool_size == 1
        start_running(pool, blocker())
        assert pool.pool_size == 2
        pool.submit(blocker())
        pool.submit(blocker())

        assert pool.pool_size == 2
        assert pool.largest_pool_size == 2
        assert pool.queue_size == 2

    @pytest.mark.parametrize("max_queue_size", [-1, 0])
    def test_without_a_queue_rejects_when_every_worker_is_busy(
        self,
        new_pool: Callable[..., ThreadPoolBulkhead],
        blocker: Callable[..., Blocker],
        max_queue_size: int,
    ) -> None:
        """max_queue_size -1 or 0 means no waiting: a task beyond the busy workers is refused."""
        pool = new_pool(f"NoQueue{max_queue_size}", core_size=2, max_queue_size=max_queue_size)
        start_running(pool, blocker())
        start_running(pool, blocker())

        refused = blocker()
        with pytest.raises(RejectedError, match="is full"):
            pool.submit(refused)
        assert not refused.started.is_set()
        assert pool.queue_size == 0

    @pytest.mark.parametrize(
        ("max_queue_size", "threshold", "waiting"),
        [(10, 3, 3), (2, 5, 2), (4, 4, 4), (10, 0, 0)],
        ids=["threshold-first", "queue-full-first", "equal", "zero-threshold"],
    )
    def test_bounded_queue_rejects_once_the_threshold_or_the_queue_is_reached(
        self,
        new_pool: Callable[..., ThreadPoolBulkhead],
        blocker: Callable[..., Blocker],
        max_queue_size: int,
        threshold: int,
        waiting: int,
    ) -> None:
        """Tasks wait until min(max_queue_size, queue_size_rejection_threshold) are queued."""
        pool = new_pool(
            f"Queue{max_queue_size}x{threshold}",
            core_size=1,
            max_queue_size=max_queue_size,
            queue_size_rejection_threshold=threshold,
        )
        start_running(pool, blocker())
        for _ in range(waiting):
            pool.submit(blocker())
        assert pool.queue_size == waiting
        assert pool.active_count == 1

        with pytest.raises(RejectedError):
            pool.submit(blocker())
        assert pool.queue_size == waiting

    @pytest.mark.parametrize(("allow", "concurrent"), [(True, 3), (False, 1)])
    def test_maximum_size_applies_only_when_allowed_to_diverge(
        self,
        new_pool: Callable[..., ThreadPoolBulkhead],
        blocker: Callable[..., Blocker],
        allow: bool,
        concurrent: int,
    ) -> None:
        """maximum_size raises the worker limit above core_size only with the divergence flag."""
        pool = new_pool(
            f"Diverge{allow}",
            core_size=1,
            maximum_size=3,
            allow_maximum_size_to_diverge_from_core_size=allow,
        )
        for _ in range(concurrent):
            start_running(pool, blocker())

        with pytest.raises(RejectedError):
            pool.submit(blocker())
        assert pool.pool_size == concurrent
        assert pool.active_count == concurrent

    def test_growing_core_size_admits_more_concurrent_work(
        self, new_pool: Callable[..., ThreadPoolBulkhead], blocker: Callable[..., Blocker]
    ) -> None:
        """After core_size grows, a task that was refused runs alongside the busy one."""
        pool = new_pool("Grow", core_size=1)
        first = blocker()
        start_running(pool, first)
        with pytest.raises(RejectedError):
            pool.submit(blocker())

        pool.reconfigure(ThreadPoolProperties(core_size=2))

        second = blocker()
        start_running(pool, second)
        assert not first.release.is_set()
        assert pool.pool_size == 2
        assert pool.properties.core_size == 2

    def test_shrinking_core_size_retires_workers_as_they_finish(
        self, new_pool: Callable[..., ThreadPoolBulkhead], blocker: Callable[..., Blocker]
    ) -> None:
        """After core_size shrinks, busy work finishes, surplus workers exit, admission narrows."""
        pool = new_pool("Shrink", core_size=2)
        first, second = blocker(), blocker()
        start_running(pool, first)
        second_future = start_running(pool, second)

        pool.reconfigure(ThreadPoolProperties(core_size=1))
        with pytest.raises(RejectedError):
            pool.submit(blocker())

        first.release.set()
        assert first.thread is not None
        first.thread.join(5)
        assert not first.thread.is_alive()
        assert pool.pool_size == 1
        with pytest.raises(RejectedError):
            pool.submit(blocker())

        second.release.set()
        assert second_future.result(5) == "done"
        assert second.thread is not None
        assert second.thread.is_alive()

    def test_changing_the_rejection_threshold_at_run_time(
        self, new_pool: Callable[..., ThreadPoolBulkhead], blocker: Callable[..., Blocker]
    ) -> None:
        """A higher queue_size_rejection_threshold lets more tasks wait, up to max_queue_size."""
        pool = new_pool(
            "Threshold", core_size=1, max_queue_size=4, queue_size_rejection_threshold=1
        )
        start_running(pool, blocker())
        pool.submit(blocker())
        with pytest.raises(RejectedError):
            pool.submit(blocker())

        pool.reconfigure(
            ThreadPoolProperties(core_size=1, max_queue_size=4, queue_size_rejection_threshold=10)
        )

        for _ in range(3):
            pool.submit(blocker())
        assert pool.queue_size == 4
        with pytest.raises(RejectedError):
            pool.submit(blocker())

    def test_max_queue_size_keeps_the_value_the_pool_was_created_with(
        self, new_pool: Callable[..., ThreadPoolBulkhead], blocker: Callable[..., Blocker]
    ) -> None:
        """Reconfiguring never adds, removes or resizes the queue, however often it happens."""
        pool = new_pool(
            "FixedQueue", core_size=1, max_queue_size=5, queue_size_rejection_threshold=1
        )
        start_running(pool, blocker())

        pool.reconfigure(
            ThreadPoolProperties(core_size=1, max_queue_size=-1, queue_size_rejection_threshold=2)
        )
        pool.reconfigure(
            ThreadPoolProperties(core_size=1, max_queue_size=-1, queue_size_rejection_threshold=3)
        )

        for _ in range(3):
            pool.submit(blocker())
        assert pool.queue_size == 3
        with pytest.raises(RejectedError):
            pool.submit(blocker())

    def test_submit_returns_a_future_of_the_result(
        self, new_pool: Callable[..., ThreadPoolBulkhead]
    ) -> None:
        """submit() passes arguments through and hands back the value or the exception."""
        pool = new_pool("Submit", core_size=2)

        def power(base: int, *, exponent: int) -> int:
            return base**exponent

        def broken() -> None:
            raise ValueError("broken task")

        assert pool.submit(power, 2, exponent=10).result(5) == 1024
        failed = pool.submit(broken)
        error = failed.exception(5)
        assert isinstance(error, ValueError)
        assert str(error) == "broken task"

    def test_submitted_work_sees_the_submitters_contextvars(
        self, new_pool: Callable[..., ThreadPoolBulkhead]
    ) -> None:
        """Work sees the context variables set where it was submitted, and cannot change them."""
        pool = new_pool("Context", core_size=1, max_queue_size=5)

        def overwrite() -> str:
            request_id.set("changed-in-worker")
            return request_id.get()

        token = request_id.set("req-42")
        try:
            changed = pool.submit(overwrite)
            seen = pool.submit(request_id.get)
            assert changed.result(5) == "changed-in-worker"
            assert seen.result(5) == "req-42"
            assert request_id.get() == "req-42"
        finally:
            request_id.reset(token)
        assert pool.submit(request_id.get, "unset").result(5) == "unset"

    def test_submit_after_shutdown_raises_runtime_error(
        self, new_pool: Callable[..., ThreadPoolBulkhead]
    ) -> None:
        """A shut-down pool refuses new work with RuntimeError naming the pool."""
        pool = new_pool("Closed", core_size=1)
        pool.shutdown()

        with pytest.raises(RuntimeError, match="'Closed' is shut down"):
            pool.submit(lambda: None)

    def test_shutdown_lets_queued_tasks_run(
        self, new_pool: Callable[..., ThreadPoolBulkhead], blocker: Callable[..., Blocker]
    ) -> None:
        """Tasks waiting at shutdown still run; shutdown(wait=True) returns after they finish."""
        pool = new_pool("Drain", core_size=1, max_queue_size=5)
        running = blocker("first")
        first = start_running(pool, running)
        queued = [pool.submit(lambda n=n: n * 10) for n in range(3)]
        seen_at_return: list[object] = []

        def shut_down() -> None:
            pool.shutdown(wait=True)
            seen_at_return.extend([all(f.done() for f in queued), pool.completed_task_count])

        closer = threading.Thread(target=shut_down)
        closer.start()
        running.release.set()
        closer.join(5)

        assert not closer.is_alive()
        assert seen_at_return == [True, 4]
        assert first.result(0) == "first"
        assert [f.result(0) for f in queued] == [0, 10, 20]
        assert running.thread is not None
        assert not running.thread.is_alive()
        assert pool.pool_size == 0

    def test_shutdown_without_waiting_returns_while_work_runs(
        self, new_pool: Callable[..., ThreadPoolBulkhead], blocker: Callable[..., Blocker]
    ) -> None:
        """shutdown(wait=False) returns at once; the running and queued work still completes."""
        pool = new_pool("NoWait", core_size=1, max_queue_size=5)
        running = blocker()
        first = start_running(pool, running)
        later = pool.submit(lambda: "later")

        pool.shutdown(wait=False)

        assert not first.done()
        running.release.set()
        assert first.result(5) == "done"
        assert later.result(5) == "later"

    def test_shutdown_with_cancel_futures_cancels_queued_tasks(
        self, new_pool: Callable[..., ThreadPoolBulkhead], blocker: Callable[..., Blocker]
    ) -> None:
        """cancel_futures=True cancels the tasks still waiting; the running one finishes."""
        pool = new_pool("Cancel", core_size=1, max_queue_size=5)
        running = blocker()
        first = start_running(pool, running)
        waiting = [blocker() for _ in range(2)]
        queued = [pool.submit(task) for task in waiting]

        pool.shutdown(wait=False, cancel_futures=True)

        assert all(f.cancelled() for f in queued)
        running.release.set()
        assert first.result(5) == "done"
        assert not any(task.started.is_set() for task in waiting)
        assert pool.queue_size == 0

    def test_second_shutdown_can_still_cancel_queued_tasks(
        self, new_pool: Callable[..., ThreadPoolBulkhead], blocker: Callable[..., Blocker]
    ) -> None:
        """After a plain shutdown, shutdown(cancel_futures=True) cancels what still waits."""
        pool = new_pool("TwiceShut", core_size=1, max_queue_size=5)
        running = blocker()
        first = start_running(pool, running)
        queued = pool.submit(blocker())
        pool.shutdown(wait=False)

        pool.shutdown(wait=False, cancel_futures=True)

        assert queued.cancelled()
        running.release.set()
        assert first.result(5) == "done"
        assert running.thread is not None
        running.thread.join(5)
        assert not running.thread.is_alive()

    def test_shutdown_from_inside_a_task_does_not_wait_for_itself(
        self, new_pool: Callable[..., ThreadPoolBulkhead]
    ) -> None:
        """A task may shut its own pool down with wait=True without deadlocking."""
        pool = new_pool("SelfShut", core_size=1)

        def shut_own_pool() -> str:
            pool.shutdown(wait=True)
            return "shut"

        assert pool.submit(shut_own_pool).result(5) == "shut"
        with pytest.raises(RuntimeError):
            pool.submit(lambda: None)

    def test_future_cancelled_while_queued_never_runs(
        self, new_pool: Callable[..., ThreadPoolBulkhead], blocker: Callable[..., Blocker]
    ) -> None:
        """Cancelling the future of a waiting task stops it from running; later tasks still run."""
        pool = new_pool("CancelOne", core_size=1, max_queue_size=5)
        running = blocker()
        start_running(pool, running)
        skipped = blocker()
        skipped_future = pool.submit(skipped)
        after = pool.submit(lambda: "after")

        assert skipped_future.cancel()
        running.release.set()

        assert after.result(5) == "after"
        assert not skipped.started.is_set()
        assert skipped_future.cancelled()

    def test_idle_workers_above_core_size_retire_after_keep_alive(
        self, new_pool: Callable[..., ThreadPoolBulkhead], blocker: Callable[..., Blocker]
    ) -> None:
        """Surplus workers beyond core_size exit once idle for keep_alive_time_minutes."""
        pool = new_pool(
            "KeepAlive",
            core_size=1,
            maximum_size=3,
            allow_maximum_size_to_diverge_from_core_size=True,
            keep_alive_time_minutes=0,
        )
        tasks = [blocker() for _ in range(3)]
        futures = [start_running(pool, task) for task in tasks]
        assert pool.pool_size == 3

        for expected_size, task in zip((2, 1), tasks[:2], strict=True):
            task.release.set()
            assert task.thread is not None
            task.thread.join(5)
            assert not task.thread.is_alive()
            assert pool.pool_size == expected_size

        tasks[2].release.set()
        assert [f.result(5) for f in futures] == ["done"] * 3
        assert tasks[2].thread is not None
        assert tasks[2].thread.is_alive()
        assert pool.pool_size == 1
        assert pool.largest_pool_size == 3

    def test_counters_report_the_pools_activity(
        self, new_pool: Callable[..., ThreadPoolBulkhead], blocker: Callable[..., Blocker]
    ) -> None:
        """The pool reports its running, waiting, worker, peak-worker and finished-task counts."""
        pool = new_pool("Counters", core_size=2, max_queue_size=5)
        running = [blocker(), blocker()]
        for task in running:
            start_running(pool, task)
        pool.submit(lambda: None)

        assert (pool.active_count, pool.queue_size, pool.pool_size) == (2, 1, 2)
        assert pool.largest_pool_size == 2
        assert pool.completed_task_count == 0
        assert repr(pool) == "ThreadPoolBulkhead('Counters', workers=2)"

        for task in running:
            task.release.set()
        pool.shutdown(wait=True)

        assert (pool.active_count, pool.queue_size, pool.pool_size) == (0, 0, 0)
        assert pool.largest_pool_size == 2
        assert pool.completed_task_count == 3

    @pytest.mark.parametrize("how", ["execute", "queue"])
    def test_command_waiting_in_a_cancelled_pool_gets_a_rejection_fallback(self, how: str) -> None:
        """A command still queued when its pool is shut down with cancel_futures is rejected."""
        fake = WaitSignallingClock(thread_name="waiting-caller")
        pool = hystrixpy.thread_pool(
            "CancelledPool", ThreadPoolProperties(core_size=1, max_queue_size=5)
        )
        running = Blocker()
        waiting = Queued()
        answers: list[str] = []
        with use_clock(fake):
            first = start_running(pool, running)
            try:
                if how == "queue":
                    future = waiting.queue()
                else:
                    caller = threading.Thread(
                        target=lambda: answers.append(waiting.execute()), name="waiting-caller"
                    )
                    caller.start()
                    assert fake.waiting.wait(5)
                assert pool.queue_size == 1

                pool.shutdown(wait=False, cancel_futures=True)

                if how == "queue":
                    answers.append(future.result(5))
                else:
                    caller.join(5)
                    assert not caller.is_alive()
            finally:
                running.release.set()
        assert answers == ["fallback"]
        assert waiting.is_response_thread_pool_rejected
        assert not waiting.ran
        assert first.result(5) == "done"

    def test_process_exits_although_a_run_hangs_forever(self) -> None:
        """A worker stuck in run() does not keep the process from exiting after the fallback."""
        script = textwrap.dedent(
            """
            import threading

            from hystrixpy import Command, CommandProperties

            never = threading.Event()


            class Hangs(Command[str]):
                group_key = "HangingGroup"
                properties = CommandProperties(execution_timeout_ms=50)

                def run(self) -> str:
                    never.wait()
                    return "unreachable"

                def get_fallback(self) -> str:
                    return "fallback after timeout"


            print(Hangs().execute(), flush=True)
            """
        )
        env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}

        finished = subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=PROJECT_ROOT,
            env=env,
            check=False,
        )

        assert finished.returncode == 0, finished.stderr
        assert finished.stdout.strip() == "fallback after timeout"
