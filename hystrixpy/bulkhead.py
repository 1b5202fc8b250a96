"""Bulkheads: limits on how much of one dependency's work may run or wait at once.

* :class:`SemaphoreBulkhead`: try-acquire permits for run() on the caller's
  thread (SEMAPHORE isolation) and for fallbacks. It never blocks.
* :class:`ThreadPoolBulkhead`: a :class:`~concurrent.futures.ThreadPoolExecutor`
  whose queue is bounded by the Hystrix rules. A task that does not fit is
  refused at once instead of waiting.

Both can be resized while in use; a smaller limit takes effect as the work
already admitted finishes.
"""

from __future__ import annotations

import contextvars
import dataclasses
import itertools
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Protocol, TypeVar

from hystrixpy import clock
from hystrixpy.exceptions import RejectedError
from hystrixpy.metrics import ThreadPoolMetrics
from hystrixpy.properties import ThreadPoolProperties

__all__ = ["SemaphoreBulkhead", "Task", "ThreadPoolBulkhead"]

_T = TypeVar("_T")


class SemaphoreBulkhead:
    """A non-blocking counting semaphore whose limit can change while permits are held.

    Acquiring and releasing are single list operations, atomic in CPython, so
    the common path takes no lock. ``permits`` holds one item per free permit:
    a hot path may take one with ``permits.pop()`` (``IndexError`` when none is
    free) instead of calling :meth:`try_acquire`, and give it back with
    ``permits.append(None)`` while ``debt`` (permits owed after the limit was
    lowered) is 0, else with :meth:`release`.
    """

    __slots__ = ("_limit", "_lock", "debt", "permits")

    def __init__(self, limit: int) -> None:
        self._lock = threading.Lock()
        self._limit = limit
        self.debt = 0
        self.permits: list[None] = [None] * limit

    def try_acquire(self) -> bool:
        """Take a permit if one is free; never waits."""
        try:
            self.permits.pop()
        except IndexError:
            return False
        return True

    def release(self) -> None:
        """Give a permit back (to the debt first, after the limit was lowered)."""
        if self.debt:
            with self._lock:
                if self.debt:
                    self.debt -= 1
                    return
        self.permits.append(None)

    def resize(self, limit: int) -> None:
        """Change the limit; a lower one is reached as holders release."""
        with self._lock:
            delta = limit - self._limit
            self._limit = limit
            if delta > 0:
                repaid = min(self.debt, delta)
                self.debt -= repaid
                self.permits.extend([None] * (delta - repaid))
            else:
                owed = -delta
                while owed:
                    try:
                        self.permits.pop()
                    except IndexError:
                        break
                    owed -= 1
                self.debt += owed

    @property
    def limit(self) -> int:
        """The number of permits."""
        return self._limit

    @property
    def in_use(self) -> int:
        """Permits held right now."""
        return self._limit + self.debt - len(self.permits)

    def __repr__(self) -> str:
        return f"SemaphoreBulkhead({self.in_use}/{self._limit})"


class Task(Protocol):
    """A unit of work for the pool; ``cancel`` is called instead if it will never run."""

    def __call__(self) -> None:
        """Do the work (on a worker thread); must not raise."""

    def cancel(self) -> None:
        """The pool was shut down before the work started."""


class _FutureTask:
    """Runs a plain callable for :meth:`ThreadPoolBulkhead.submit`, in the submitter's context."""

    __slots__ = ("context", "fn", "future")

    def __init__(self, fn: Callable[[], Any], future: Future[Any]) -> None:
        self.fn = fn
        self.future = future
        self.context = contextvars.copy_context()

    def __call__(self) -> None:
        if not self.future.set_running_or_notify_cancel():
            return
        try:
            result = self.context.run(self.fn)
        except BaseException as error:  # handed to the future's owner
            self.future.set_exception(error)
        else:
            self.future.set_result(result)

    def cancel(self) -> None:
        self.future.cancel()


_STOP = None


class ThreadPoolBulkhead(ThreadPoolExecutor):
    """One pool key's worker threads, with a bounded queue and immediate rejection.

    Workers are daemon threads named ``hystrix-<PoolKey>-<n>``, started as
    work arrives, so a run() that never returns cannot keep the process from
    exiting. The pool admits at most ``effective_maximum_size`` running tasks
    plus ``queue_capacity`` waiting ones; a task beyond that is refused.
    A task keeps its place until it returns, even if its caller has given up.
    """

    def __init__(self, pool_key: str, properties: ThreadPoolProperties) -> None:
        super().__init__(
            max_workers=properties.effective_maximum_size,
            thread_name_prefix=f"hystrix-{pool_key}",
        )
        self.pool_key = pool_key
        self.properties = properties
        self._tasks: queue.SimpleQueue[Task | None] = queue.SimpleQueue()
        self._permits = SemaphoreBulkhead(
            properties.effective_maximum_size + properties.queue_capacity
        )
        self._spawn_lock = threading.Lock()
        self._workers: set[threading.Thread] = set()
        self._worker_count = 0
        self._names = itertools.count(1)
        self._largest = 0
        self._closed = False
        self._max_size = properties.effective_maximum_size
        self._core_size = properties.core_size
        self._keep_alive = properties.keep_alive_time_minutes * 60.0
        self.metrics = ThreadPoolMetrics(self, properties)
        #: When work was last offered (monotonic seconds), for idle eviction.
        self.last_used = clock.monotonic()

    def reconfigure(self, properties: ThreadPoolProperties) -> None:
        """Adopt new sizes; ``max_queue_size`` stays as the pool was created, as in Hystrix.

        ``properties`` then shows the sizes in force, that ``max_queue_size`` included.
        """
        if properties.max_queue_size != self.properties.max_queue_size:
            properties = dataclasses.replace(
                properties, max_queue_size=self.properties.max_queue_size
            )
        with self._spawn_lock:
            self._max_size = properties.effective_maximum_size
            self._core_size = properties.core_size
            self._keep_alive = properties.keep_alive_time_minutes * 60.0
            self._permits.resize(self._max_size + properties.queue_capacity)
            self.properties = properties
        self.metrics.reconfigure(properties)

    # -- admission (hot path) ------------------------------------------------

    def try_dispatch(self, task: Task) -> bool:
        """Queue ``task`` if the bulkhead has room; return ``False`` (and do nothing) if not."""
        now = clock.monotonic()
        self.last_used = now
        if self._closed or not self._permits.try_acquire():
            self.metrics.task_rejected(now)
            return False
        self._tasks.put(task)
        workers = self._worker_count
        if workers < self._max_size and self._permits.in_use > workers:
            self._spawn_if_needed()
        return True

    def _spawn_if_needed(self) -> None:
        with self._spawn_lock:
            if self._worker_count >= self._max_size or self._permits.in_use <= self._worker_count:
                return
            self._worker_count += 1
            self._largest = max(self._largest, self._worker_count)
            worker = threading.Thread(
                target=self._work,
                name=f"hystrix-{self.pool_key}-{next(self._names)}",
                daemon=True,
            )
            self._workers.add(worker)
        worker.start()

    def _work(self) -> None:
        tasks = self._tasks
        while True:
            if self._worker_count > self._core_size:
                try:
                    task = tasks.get(timeout=self._keep_alive)
                except queue.Empty:
                    if self._retire_if_surplus(self._core_size):
                        return
                    continue
            else:
                task = tasks.get()
            if task is _STOP:
                tasks.put(_STOP)
                self._retire_if_surplus(0)
                return
            metrics = self.metrics
            metrics.task_started(clock.monotonic())
            try:
                task()
            finally:
                metrics.task_finished()
                self._permits.release()
                task = None  # not kept alive while this worker waits for the next one
            if self._worker_count > self._max_size and self._retire_if_surplus(self._max_size):
                return

    def _retire_if_surplus(self, keep: int) -> bool:
        with self._spawn_lock:
            if self._worker_count <= keep:
                return False
            self._worker_count -= 1
            self._workers.discard(threading.current_thread())
            return True

    # -- the Executor interface ----------------------------------------------

    def submit(self, fn: Callable[..., _T], /, *args: Any, **kwargs: Any) -> Future[_T]:
        """Run ``fn(*args, **kwargs)`` on the pool; raise :class:`RejectedError` if it is full."""
        if self._closed:
            raise RuntimeError(f"thread pool {self.pool_key!r} is shut down")
        future: Future[_T] = Future()
        if not self.try_dispatch(_FutureTask(lambda: fn(*args, **kwargs), future)):
            raise RejectedError(f"thread pool {self.pool_key!r} is full")
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop accepting work; queued tasks still run unless ``cancel_futures``."""
        with self._spawn_lock:
            self._closed = True
            workers = list(self._workers)
        if cancel_futures:
            while True:
                try:
                    task = self._tasks.get_nowait()
                except queue.Empty:
                    break
                if task is not _STOP:
                    task.cancel()
                    self._permits.release()
        self._tasks.put(_STOP)
        if wait:
            for worker in workers:
                if worker is not threading.current_thread():
                    worker.join()

    # -- reading -------------------------------------------------------------

    @property
    def active_count(self) -> int:
        """Tasks running on a worker right now."""
        return self.metrics.current_active_count

    @property
    def admitted_count(self) -> int:
        """Tasks admitted and not yet finished (running or waiting)."""
        return self._permits.in_use

    @property
    def queue_size(self) -> int:
        """Tasks admitted but not yet started."""
        return self.metrics.current_queue_size

    @property
    def pool_size(self) -> int:
        """Worker threads alive now."""
        return self._worker_count

    @property
    def largest_pool_size(self) -> int:
        """The most worker threads alive at once."""
        return self._largest

    @property
    def completed_task_count(self) -> int:
        """Tasks that have finished."""
        return self.metrics.current_completed_task_count

    def __repr__(self) -> str:
        return f"ThreadPoolBulkhead({self.pool_key!r}, workers={self._worker_count})"
