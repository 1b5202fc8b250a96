"""The standalone circuit breaker: :class:`Breaker` (the registry is :mod:`hystrixpy.breakers`).

A call on a closed circuit costs two clock readings and a few list operations:
the closed circuit's fast path (``allow_until``), the metrics' lock-free count
of a success, no lock, and no pool unless the breaker has a request timeout.
"""

from __future__ import annotations

import math
import os
import threading
import weakref
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from hystrixpy import _log, clock
from hystrixpy._breaker_config import BreakerConfig
from hystrixpy._breaker_timeout import PoolShutDownError, TimedCall
from hystrixpy._breaker_view import BreakerStats, BreakerView
from hystrixpy.bulkhead import ThreadPoolBulkhead
from hystrixpy.circuit_breaker import DENIED, TRIAL, CircuitBreaker, CircuitState
from hystrixpy.events import EventType
from hystrixpy.exceptions import (
    BadRequestError,
    CallTimeoutError,
    CircuitBreakerError,
    CommandTimeoutError,
    RejectedError,
)
from hystrixpy.metrics import WAITING_LIMIT as _WAITING_LIMIT
from hystrixpy.metrics import CommandMetrics

__all__ = ["Breaker"]

P = ParamSpec("P")
R = TypeVar("R")

_floor = math.floor
_CLOSED, _OPEN = CircuitState.CLOSED, CircuitState.OPEN
_SUCCESS = EventType.SUCCESS
_FAILURE = EventType.FAILURE
_TIMEOUT = EventType.TIMEOUT
_POOL_REJECTED = EventType.THREAD_POOL_REJECTED
_BAD_REQUEST = EventType.BAD_REQUEST
_SHORT_CIRCUITED = EventType.SHORT_CIRCUITED
_THROWN = EventType.EXCEPTION_THROWN
_JUST_CANCELLED = (EventType.CANCELLED,)
_FAILURES = (_FAILURE, _TIMEOUT, _POOL_REJECTED)

# Every breaker made, registered or not, so a forked child can renew their locks.
_every_lock = threading.Lock()
_every: weakref.WeakSet[Breaker] = weakref.WeakSet()


class Breaker:
    """A circuit breaker guarding whatever it is asked to :meth:`call`.

    Usually made by :func:`hystrixpy.breakers.get_or_create` or
    :func:`~hystrixpy.breakers.protect`; one made directly
    works the same but is not registered (not found by name, not monitored).
    ``config`` defaults to :class:`~hystrixpy.breakers.BreakerConfig`'s defaults.
    """

    def __init__(self, name: str, config: BreakerConfig | None = None) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"a breaker's name must be a non-empty str, got {name!r}")
        self.name = name
        self.config = config = BreakerConfig() if config is None else config
        #: The command properties the options stand for (windows, sleep window, timeout).
        self.properties = config.command_properties()
        self._timeout = (
            None if config.request_timeout_ms is None else config.request_timeout_ms / 1000.0
        )
        #: How monitoring sees this breaker.
        self.view = BreakerView(self)
        self._fresh_runtime()
        with _every_lock:
            _every.add(self)

    def _fresh_runtime(self) -> None:
        """New locks, metrics and state machine, and no pool (when made, and after a fork)."""
        self._lock = threading.Lock()
        self._pool: ThreadPoolBulkhead | None = None
        self._cause = threading.local()  # the error being reported, for on_open
        self._fresh_parts()

    def _fresh_parts(self) -> None:
        config = self.config
        metrics = CommandMetrics(self.name, config.group, self.name, self.properties)
        self._last_failure: tuple[str, float] | None = None
        self._metrics = metrics
        self._breaker = CircuitBreaker(
            self.name,
            metrics,
            self.properties,
            self._moved,
            failure_threshold=config.failure_threshold,
            monitoring_period_ms=config.monitoring_period_ms,
            success_threshold=config.success_threshold,
            half_open_max_calls=config.half_open_max_calls,
        )

    # -- calling (the hot path) ----------------------------------------------

    def call(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Call ``fn(*args, **kwargs)`` through the breaker and return its value.

        Raises :class:`~hystrixpy.exceptions.CircuitBreakerError` without calling
        ``fn`` while the circuit is open; with a request timeout,
        :class:`~hystrixpy.exceptions.CallTimeoutError` at the deadline and
        :class:`~hystrixpy.exceptions.RejectedError` when its pool is full.
        Whatever ``fn`` raises reaches the caller as it was.
        """
        breaker = self._breaker
        start = clock.monotonic()
        trial = False
        if start >= breaker.allow_until:  # not the closed circuit's fast path: ask it
            decision = DENIED if start < breaker.deny_until else breaker.attempt_execution(start)
            if decision == DENIED:
                raise self._short_circuited(breaker, start)
            trial = decision == TRIAL
        if self._timeout is not None:
            return self._call_in_pool(fn, args, kwargs, start, trial=trial, breaker=breaker)
        metrics = self._metrics
        # metrics.run_started(start), written out.
        running = metrics.running
        running.append(None)
        concurrency = len(running)
        rolling = metrics.rolling
        if concurrency > rolling.current_peak or start >= rolling.bucket_end:
            metrics.note_concurrency(concurrency, start)
        try:
            value = fn(*args, **kwargs)
        except BaseException as error:
            running.pop()
            end = clock.monotonic()
            elapsed_ms = _floor((end - start) * 1000.0 + 0.5)
            self._concluded(error, end, concurrency, elapsed_ms, elapsed_ms, trial, breaker)
            raise
        end = clock.monotonic()
        running.pop()
        elapsed_ms = _floor((end - start) * 1000.0 + 0.5)
        # metrics.record_success(), with its lock-free case written out (as a semaphore
        # command's success is): a success that moves no window and raises no peak waits.
        if end < metrics.wait_until and concurrency <= metrics.rolling.current_peak:
            waiting = metrics.waiting
            waiting.append(elapsed_ms)
            if len(waiting) >= _WAITING_LIMIT:
                metrics.count_waiting()
        else:
            metrics.record_success(end, concurrency, elapsed_ms, elapsed_ms)
        if trial or breaker.consecutive_failures:
            breaker.on_result(True, False, trial, end)
        return value

    def _call_in_pool(
        self,
        fn: Callable[..., R],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        start: float,
        *,
        trial: bool,
        breaker: CircuitBreaker,
    ) -> R:
        """Run the call on the breaker's pool; the caller waits for its outcome or the deadline."""
        assert self._timeout is not None
        deadline = start + self._timeout
        task = TimedCall(self.name, self._metrics, fn, args, kwargs, deadline=deadline)
        if not self._timeout_pool().try_dispatch(task):
            raise self._rejected(start, trial, breaker)
        try:
            finished = clock.wait(task.done, deadline - clock.monotonic())
        except BaseException:  # interrupted while waiting: the worker's outcome is dropped
            task.claim()
            self._metrics.record(_JUST_CANCELLED, clock.monotonic())
            if trial:
                breaker.release_trial()
            raise
        if not finished:
            if task.claim():
                raise self._timed_out(start, task, trial, breaker)
            task.done.acquire()  # the worker took the claim at the deadline; it is finishing
        end = clock.monotonic()
        total_ms = _floor((end - start) * 1000.0 + 0.5)
        value, error = task.outcome
        if error is None:
            self._metrics.record_success(end, task.concurrency, task.execution_ms, total_ms)
            if trial or breaker.consecutive_failures:
                breaker.on_result(True, False, trial, end)
            result: R = value
            return result
        if type(error) is PoolShutDownError:
            raise self._rejected(start, trial, breaker, error)
        self._concluded(error, end, task.concurrency, task.execution_ms, total_ms, trial, breaker)
        raise error

    def _timeout_pool(self) -> ThreadPoolBulkhead:
        pool = self._pool
        if pool is None:
            with self._lock:
                pool = self._pool
                if pool is None:  # pragma: no branch - another caller may have made it
                    pool = self._pool = ThreadPoolBulkhead(
                        f"breaker-{self.name}", self.config.pool_properties()
                    )
        return pool

    # -- outcomes ------------------------------------------------------------

    def _short_circuited(self, breaker: CircuitBreaker, now: float) -> CircuitBreakerError:
        self._metrics.record((_SHORT_CIRCUITED, _THROWN), now, False, 0, -1, 0)
        reopens_at = breaker.reopens_at
        if reopens_at is None:
            retry_after = None
            words = "half-open, with its trial calls in flight"
        else:
            retry_after = max(reopens_at - now, 0.0)
            words = f"open; a trial call is let through in {retry_after:.3f} s"
        return CircuitBreakerError(
            f"circuit breaker {self.name!r} is {words}",
            breaker_name=self.name,
            retry_after=retry_after,
        )

    def _rejected(
        self,
        start: float,
        trial: bool,
        breaker: CircuitBreaker,
        error: RejectedError | None = None,
    ) -> RejectedError:
        if error is None:
            size = self.config.timeout_pool_size
            error = RejectedError(
                f"breaker {self.name!r}: its timeout pool is full ({size} calls running)"
            )
        now = clock.monotonic()
        _log.info("call_rejected", breaker=self.name, group=self.config.group)
        total_ms = _floor((now - start) * 1000.0 + 0.5)
        self._failed(_POOL_REJECTED, error, now, 0, -1, total_ms, trial, breaker)
        return error

    def _timed_out(
        self, start: float, task: TimedCall, trial: bool, breaker: CircuitBreaker
    ) -> CallTimeoutError:
        now = clock.monotonic()
        timeout_ms = self.config.request_timeout_ms
        _log.info("call_timed_out", breaker=self.name, timeout_ms=timeout_ms)
        error = CallTimeoutError(f"breaker {self.name!r}: the call took over {timeout_ms} ms")
        total_ms = _floor((now - start) * 1000.0 + 0.5)
        self._failed(_TIMEOUT, error, now, task.concurrency, -1, total_ms, trial, breaker)
        return error

    def _concluded(  # noqa: PLR0917 - positional on purpose: the hot path's error exit
        self,
        error: BaseException,
        now: float,
        concurrency: int,
        execution_ms: int,
        total_ms: int,
        trial: bool,
        breaker: CircuitBreaker,
    ) -> None:
        """Count what the call raised (the caller re-raises it)."""
        metrics = self._metrics
        if not isinstance(error, Exception):  # KeyboardInterrupt, SystemExit: never a failure
            metrics.record(_JUST_CANCELLED, now, False, concurrency, execution_ms, total_ms)
            if trial:
                breaker.release_trial()
            return
        if self._counts_as_failure(error):
            event = _TIMEOUT if isinstance(error, CommandTimeoutError) else _FAILURE
            self._failed(event, error, now, concurrency, execution_ms, total_ms, trial, breaker)
            return
        # Not the dependency's fault: it answered, so the state machine counts a success.
        metrics.record((_BAD_REQUEST, _THROWN), now, False, concurrency, execution_ms, total_ms)
        if trial or breaker.consecutive_failures:
            breaker.on_result(True, False, trial, now)

    def _failed(  # noqa: PLR0917 - positional, as _concluded
        self,
        event: EventType,
        error: BaseException,
        now: float,
        concurrency: int,
        execution_ms: int,
        total_ms: int,
        trial: bool,
        breaker: CircuitBreaker,
    ) -> None:
        self._last_failure = (repr(error), clock.wall_time())
        self._metrics.record((event, _THROWN), now, False, concurrency, execution_ms, total_ms)
        cause = self._cause
        cause.error = error  # for on_open, should this failure trip the circuit
        try:
            breaker.on_result(False, True, trial, now)
        finally:
            cause.error = None

    def _counts_as_failure(self, error: Exception) -> bool:
        if isinstance(error, BadRequestError):
            return False
        config = self.config
        if config.exclude and isinstance(error, config.exclude):
            return False
        if config.include is not None and not isinstance(error, config.include):
            return False
        predicate = config.is_failure
        if predicate is None:
            return True
        try:
            return bool(predicate(error))
        except Exception as broken:
            _log.error(
                "breaker_predicate_failed",
                breaker=self.name,
                error=repr(broken),
                call_error=repr(error),
            )
            return True  # counted, as it would be without a predicate

    # -- transitions ---------------------------------------------------------

    def _moved(self, name: str, old: CircuitState, new: CircuitState) -> None:
        """The state machine moved (called outside its lock): log it and tell the listeners."""
        config = self.config
        log = _log.warning if new is _OPEN else _log.info
        log(
            "circuit_" + new.name.lower(),
            breaker=name,
            group=config.group,
            previous_state=old.name,
        )
        self._tell("on_state_change", config.on_state_change, old, new)
        if new is _OPEN:
            self._tell("on_open", config.on_open, getattr(self._cause, "error", None))
        elif new is _CLOSED:
            self._tell("on_close", config.on_close)

    def _tell(self, kind: str, listener: Callable[..., object] | None, *args: object) -> None:
        if listener is None:
            return
        try:
            listener(*args)
        except Exception as error:
            _log.error(
                "breaker_listener_failed", breaker=self.name, listener=kind, error=repr(error)
            )

    # -- reading and managing ------------------------------------------------

    @property
    def state(self) -> CircuitState:
        """The circuit's state now."""
        return self._breaker.state

    @property
    def metrics(self) -> CommandMetrics:
        """The rolling and cumulative counts, health and latencies of the calls."""
        return self._metrics

    @property
    def circuit_breaker(self) -> CircuitBreaker:
        """The state machine (the same class a command's circuit uses)."""
        return self._breaker

    def stats(self) -> BreakerStats:
        """The breaker's state and counts, read now."""
        breaker, metrics = self._breaker, self._metrics
        state = breaker.state
        snapshot = metrics.snapshot()
        counts = snapshot.rolling_counts
        total = metrics.cumulative_count
        to_wall = clock.wall_time() - clock.monotonic()
        opened_at, reopens_at = breaker.opened_at, breaker.reopens_at
        last = self._last_failure
        return BreakerStats(
            name=self.name,
            state=state,
            mode=self.config.mode,
            successes=counts[_SUCCESS.index],
            failures=sum(counts[event.index] for event in _FAILURES),
            timeouts=counts[_TIMEOUT.index],
            ignored_errors=counts[_BAD_REQUEST.index],
            rejections=counts[_SHORT_CIRCUITED.index],
            total_successes=total(_SUCCESS),
            total_failures=sum(total(event) for event in _FAILURES),
            total_ignored_errors=total(_BAD_REQUEST),
            total_rejections=total(_SHORT_CIRCUITED),
            consecutive_failures=breaker.consecutive_failures,
            error_percentage=snapshot.health.error_percentage,
            last_failure=None if last is None else last[0],
            last_failure_at=None if last is None else last[1],
            opened_at=None if opened_at is None else opened_at + to_wall,
            next_attempt_at=None if reopens_at is None else reopens_at + to_wall,
            half_open_calls=breaker.trials_in_flight,
        )

    def reset(self) -> None:
        """Close the circuit and forget every count; listeners hear of a change of state.

        Calls already running finish uncounted.
        """
        old = self._breaker.state
        with self._lock:
            self._fresh_parts()
        if old is not _CLOSED:
            self._moved(self.name, old, _CLOSED)

    def shutdown(self) -> None:
        """Stop the timeout pool, if any (running calls finish); a later call starts a new one."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False)

    def __repr__(self) -> str:
        return f"Breaker({self.name!r}, {self._breaker.state.name})"


def _after_fork_in_child() -> None:
    """Give every breaker new locks, metrics and state machine, and no pool, in the child.

    A parent's thread may have held one of their locks at the fork; the child's
    breakers start closed and uncounted, as its commands do.
    """
    global _every_lock
    _every_lock = threading.Lock()
    for breaker in list(_every):
        breaker._fresh_runtime()


if hasattr(os, "register_at_fork"):  # pragma: no branch - every POSIX Python has it
    os.register_at_fork(after_in_child=_after_fork_in_child)
