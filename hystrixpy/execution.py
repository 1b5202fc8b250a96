"""The path of one execution, as small named steps.

::

    begin ---- breaker denies ------------------------------> fail(SHORT_CIRCUITED)
      |
      +-- SEMAPHORE: bulkhead full --------------------------> fail(SEMAPHORE_REJECTED)
      |     run() on the caller's thread --> conclude
      |
      +-- THREAD: pool full ---------------------------------> fail(THREAD_POOL_REJECTED)
            run() on a worker, the caller waits to the deadline --> conclude
                                                     deadline --> fail(TIMEOUT)

    conclude: success -> record SUCCESS -> value
              BadRequestError -> record BAD_REQUEST -> raised as it is
              other error -> fail(FAILURE or TIMEOUT)
    fail:     record the event -> tell the breaker -> fallback
    fallback: FALLBACK_SUCCESS -> value, or
              FALLBACK_DISABLED / MISSING / REJECTION / FAILURE -> HystrixRuntimeError

Exactly one of the worker and the deadline settles a thread-isolated
execution: each tries to take the single claim token, and the loser stands
aside. A worker that loses (it finished after the deadline) drops its result.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from concurrent.futures import Future
from contextvars import copy_context as _copy_context
from typing import TYPE_CHECKING, Any, Generic, NoReturn, TypeVar

from hystrixpy import _log, clock, registry
from hystrixpy._log import debug_switch as _debug
from hystrixpy._timer import TimerEntry
from hystrixpy.chaos import injector as _chaos
from hystrixpy.circuit_breaker import ALLOWED, DENIED, TRIAL
from hystrixpy.deadline import CURRENT as _CURRENT_DEADLINE
from hystrixpy.events import (
    EventType,
    ExecutionResult,
    FailureType,
    IsolationStrategy,
)
from hystrixpy.exceptions import (
    BadRequestError,
    CommandTimeoutError,
    HystrixRuntimeError,
    RateLimitExceeded,
    RejectedError,
    ShortCircuitedError,
)
from hystrixpy.metrics import WAITING_LIMIT as _WAITING_LIMIT
from hystrixpy.registry import _config
from hystrixpy.registry import hooks as _hooks

if TYPE_CHECKING:
    from hystrixpy.command import Command
    from hystrixpy.properties import CommandProperties
    from hystrixpy.ratelimit import RateLimiter
    from hystrixpy.registry import CommandKeyState

__all__ = ["Execution", "execute", "queue"]

R = TypeVar("R")

# Bound by assignment, not imported: CPython 3.11 calls the methods of an imported name
# through a bound method object made per call, and of an assigned one directly.
_states = registry._states
_new_instance = object.__new__
_floor = math.floor

# Enum members read on hot paths, bound once: reading one off its class costs a lookup.
_E_SUCCESS = EventType.SUCCESS
_E_FAILURE = EventType.FAILURE
_E_TIMEOUT = EventType.TIMEOUT
_E_BAD_REQUEST = EventType.BAD_REQUEST
_E_EXCEPTION_THROWN = EventType.EXCEPTION_THROWN
_THREAD = IsolationStrategy.THREAD
_E_CANCELLED = EventType.CANCELLED
_E_FALLBACK_DISABLED = EventType.FALLBACK_DISABLED
_E_FALLBACK_FAILURE = EventType.FALLBACK_FAILURE
_E_FALLBACK_MISSING = EventType.FALLBACK_MISSING
_E_FALLBACK_REJECTION = EventType.FALLBACK_REJECTION
_E_SEMAPHORE_REJECTED = EventType.SEMAPHORE_REJECTED
_E_THREAD_POOL_REJECTED = EventType.THREAD_POOL_REJECTED
_F_BAD_REQUEST_EXCEPTION = FailureType.BAD_REQUEST_EXCEPTION
_F_COMMAND_EXCEPTION = FailureType.COMMAND_EXCEPTION
_F_REJECTED_SEMAPHORE_EXECUTION = FailureType.REJECTED_SEMAPHORE_EXECUTION
_F_REJECTED_SEMAPHORE_FALLBACK = FailureType.REJECTED_SEMAPHORE_FALLBACK
_F_REJECTED_THREAD_EXECUTION = FailureType.REJECTED_THREAD_EXECUTION
_F_SHORTCIRCUIT = FailureType.SHORTCIRCUIT
_F_TIMEOUT = FailureType.TIMEOUT
_E_SHORT_CIRCUITED = EventType.SHORT_CIRCUITED
_E_RETRY = EventType.RETRY
_E_RATE_LIMITED = EventType.RATE_LIMITED
_F_RATE_LIMITED = FailureType.RATE_LIMITED
_JUST_RETRY = (_E_RETRY,)
_set_deadline = _CURRENT_DEADLINE.set
_JUST_SHORT_CIRCUITED = (_E_SHORT_CIRCUITED,)
_JUST_FALLBACK_SUCCESS = (EventType.FALLBACK_SUCCESS,)
_REJECTIONS = (
    FailureType.REJECTED_THREAD_EXECUTION,
    FailureType.REJECTED_SEMAPHORE_EXECUTION,
    FailureType.RATE_LIMITED,
)
# The causes made on demand (Execution.cause) for the failures that have no error of their own.
_CAUSES: dict[FailureType, tuple[type[BaseException], str]] = {
    FailureType.SHORTCIRCUIT: (ShortCircuitedError, "the circuit is open"),
    FailureType.REJECTED_SEMAPHORE_EXECUTION: (RejectedError, "execution semaphore is full"),
    FailureType.REJECTED_THREAD_EXECUTION: (RejectedError, "thread pool is full"),
}

_FAILURE_WORDS = {
    FailureType.COMMAND_EXCEPTION: "failed",
    FailureType.TIMEOUT: "timed out",
    FailureType.SHORTCIRCUIT: "was short-circuited",
    FailureType.REJECTED_THREAD_EXECUTION: "was rejected by its thread pool",
    FailureType.REJECTED_SEMAPHORE_EXECUTION: "was rejected by its semaphore",
    FailureType.RATE_LIMITED: "was refused by its rate limiter",
}
_FALLBACK_WORDS = {
    EventType.FALLBACK_DISABLED: "fallback is disabled",
    EventType.FALLBACK_MISSING: "no fallback is defined",
    EventType.FALLBACK_REJECTION: "its fallback was rejected (fallback semaphore full)",
    EventType.FALLBACK_FAILURE: "its fallback failed",
}


class _PoolShutDownError(RejectedError):
    """The pool was shut down before it could start a queued execution."""


def _ms(seconds: float) -> int:
    """Whole milliseconds, rounded to the nearest (durations are never negative)."""
    return _floor(seconds * 1000.0 + 0.5)


def begin(command: Command[R]) -> Execution[R]:
    """Check that ``command`` has not run yet and set up its one execution."""
    if command._execution is not None:
        _already_executed(command)
    state = _states.get(command.command_key)
    if state is None or state.config_version != _config.version:
        state = registry.state_of(command)
    now = clock.monotonic()
    if now >= state.adapt_at:
        state.adapt_timeout(now)
    execution = command._execution = Execution(command, state, now)
    if _hooks.active:
        _hooks.notify("on_start", command)
    return execution


def _already_executed(command: Command[Any]) -> NoReturn:
    raise RuntimeError(
        f"this {type(command).__name__} instance has already been executed; "
        "a command runs once: create a new instance for each call"
    )


def execute(command: Command[R]) -> R:
    """Run and block for run()'s value, or the fallback's.

    Raises :class:`~hystrixpy.HystrixRuntimeError` when there is no usable
    fallback, and :class:`~hystrixpy.BadRequestError` as run() raised it.
    """
    # begin() and admit(), written out: this is the hottest path there is.
    if command._execution is not None:
        _already_executed(command)
    state = _states.get(command.command_key)
    if state is None or state.config_version != _config.version:
        state = registry.state_of(command)
    now = clock.monotonic()
    if now >= state.adapt_at:  # an adaptive timeout is due to be recomputed
        state.adapt_timeout(now)
    # Execution(command, state, now), written out: a class's __init__ is an expensive call.
    execution: Execution[R] = _new_instance(Execution)
    execution.start = state.last_used = now
    execution.events = []
    execution.command = command
    execution.state = state
    command._execution = execution
    if _hooks.active:
        _hooks.notify("on_start", command)
    limiter = state.rate_limiter
    if limiter is not None and not limiter.try_acquire():  # first, as the patterns are ordered
        try:
            return execution.rate_limited(limiter)
        finally:
            del execution.command  # let_go(), written out
    breaker = state.circuit_breaker
    if now >= breaker.allow_until:  # not the closed breaker's fast path: ask it
        # (unless it is open and still sleeping: the open breaker's fast path)
        decision = DENIED if now < breaker.deny_until else breaker.attempt_execution(now)
        if decision == DENIED:
            try:
                return execution.short_circuit()
            finally:
                del execution.command  # let_go(), written out
        if decision == TRIAL:
            execution.trial = True
    if state.properties.execution_isolation_strategy is _THREAD:
        return execution.execute_in_thread()
    try:
        return execution.run_on_caller()
    finally:
        del execution.command  # let_go(), written out


def queue(command: Command[R]) -> Future[R]:
    """Start running and return a future of the value (or the fallback's) at once.

    In THREAD isolation the future resolves by the timeout plus the
    fallback's own time, even if run() never returns. In SEMAPHORE
    isolation run() executes on the calling thread before this returns.
    """
    execution = begin(command)
    future: Future[R] = Future()
    future.set_running_or_notify_cancel()
    limiter = execution.state.rate_limiter
    if limiter is not None and not limiter.try_acquire():
        execution.settle(future, lambda: execution.rate_limited(limiter), on_caller=True)
        execution.let_go()
    elif execution.admit() == DENIED:
        execution.settle(future, execution.short_circuit, on_caller=True)
        execution.let_go()
    elif execution.state.properties.execution_isolation_strategy is _THREAD:
        execution.queue_in_thread(future)
    else:
        execution.settle(future, execution.run_on_caller, on_caller=True)
        execution.let_go()
    return future


class _TimedOut:
    """The timeout of a queued execution, settled on the deadline pool (a pool task)."""

    __slots__ = ("execution", "now")

    def __init__(self, execution: Execution[Any], now: float) -> None:
        self.execution = execution
        self.now = now

    def __call__(self) -> None:
        execution = self.execution
        future = execution.future
        assert future is not None
        execution.context.copy().run(
            execution.settle, future, lambda: execution.timeout(self.now, run_finished=False)
        )

    def cancel(self) -> None:
        """The deadline pool was shut down first: settle on this thread instead."""
        self()


class Execution(ExecutionResult, Generic[R]):
    """The state of one command's one execution, and its record (an :class:`ExecutionResult`).

    Only what every execution needs is set when it starts; the rest reads the
    class-level defaults until a step sets it. The THREAD-isolation fields
    (``_claim``, ``done``, ``context``, ``future``, ``timer_entry``,
    ``outcome``) are set by :meth:`execute_in_thread`, :meth:`queue_in_thread`
    and :meth:`dispatch`.
    """

    trial = False
    concurrency = 0
    #: RETRY events in ``events``, each counted by the metrics as it happened.
    retries = 0
    #: Events already in ``events`` but not yet counted by the metrics.
    uncounted: tuple[EventType, ...] = ()

    def __init__(self, command: Command[R], state: CommandKeyState, now: float) -> None:
        self.start = now
        self.events: list[EventType] = []
        self.command = command
        self.state = state
        state.last_used = now

    @property
    def properties(self) -> CommandProperties:
        """The command's properties, as they were when it started."""
        return self.state.properties

    @property
    def deadline(self) -> float | None:
        """When run() runs out of time (monotonic seconds), or ``None`` without a timeout."""
        timeout = self.state.timeout_seconds
        return None if timeout is None else self.start + timeout

    def let_go(self) -> None:
        """Forget the command once nothing will use it again.

        The command keeps its execution (for its introspection), and the execution
        refers to the command while it runs: left in place, the two would form a
        cycle that only the garbage collector frees, after every single call.
        """
        del self.command

    def claim(self) -> bool:
        """Take the right to settle this execution; only the first caller gets it."""
        try:
            self._claim.pop()
        except IndexError:
            return False
        return True

    # -- admission -----------------------------------------------------------

    def admit(self) -> int:
        """Ask the circuit breaker; remember whether this execution is its trial."""
        breaker = self.state.circuit_breaker
        if self.start < breaker.allow_until:  # the closed breaker's fast path
            return ALLOWED
        if self.start < breaker.deny_until:  # the open breaker's fast path
            return DENIED
        decision = breaker.attempt_execution(self.start)
        if decision == TRIAL:
            self.trial = True
        return decision

    def rate_limited(self, limiter: RateLimiter) -> R:
        """The rate limiter refused: go straight to the fallback (the breaker is not told)."""
        cause = RateLimitExceeded(
            f"{self.command.command_key}: rate limit reached ({limiter.name})",
            limiter=limiter.name,
            retry_after=limiter.wait_time(),
        )
        return self.fail(_E_RATE_LIMITED, _F_RATE_LIMITED, cause, self.start)

    def short_circuit(self) -> R:
        """The breaker is open: go straight to the fallback."""
        return self.fail(_E_SHORT_CIRCUITED, _F_SHORTCIRCUIT, None, self.start)

    # -- SEMAPHORE isolation -------------------------------------------------

    def run_on_caller(self) -> R:  # noqa: PLR0915 - the hottest path, written out on purpose
        """Run on the caller's thread under the execution semaphore."""
        state = self.state
        semaphore = state.execution_semaphore
        try:
            semaphore.permits.pop()
        except IndexError:
            return self.fail(
                _E_SEMAPHORE_REJECTED,
                _F_REJECTED_SEMAPHORE_EXECUTION,
                None,
                self.start,
            )
        start = self.start  # admission took no measurable time on this thread
        # metrics.run_started(start), written out.
        metrics = state.metrics
        running = metrics.running
        running.append(None)
        concurrency = self.concurrency = len(running)
        rolling = metrics.rolling
        if concurrency > rolling.current_peak or start >= rolling.bucket_end:
            metrics.note_concurrency(concurrency, start)
        # In a copy of the caller's context, as on a worker: run()'s changes stay with it,
        # and what run() calls can read its deadline (hystrixpy.deadline).
        context = _copy_context()
        timeout = state.timeout_seconds
        if timeout is not None:
            context.run(_set_deadline, start + timeout)
        policy = state.retry_policy
        run = self.command.run
        if _chaos.enabled:  # fault injection (hystrixpy.chaos), into each attempt
            run = _chaos.wrap(state.command_key, run)
        try:
            if policy is None:
                value = context.run(run)
            else:
                value = context.run(policy.run, run, self.note_retry)
        except BaseException as error:
            semaphore.release()
            end = clock.monotonic()
            self.execution_time_ms = _floor((end - start) * 1000.0 + 0.5)
            if timeout is not None and end > start + timeout and isinstance(error, Exception):
                self.run_exception = error
                return self.timeout(end, run_finished=True)
            return self.conclude_error(error, end, run_finished=True)
        if semaphore.debt:
            semaphore.release()
        else:
            semaphore.permits.append(None)
        end = clock.monotonic()
        elapsed_ms = self.execution_time_ms = _floor((end - start) * 1000.0 + 0.5)
        if timeout is not None and end > start + timeout:
            return self.timeout(end, run_finished=True)
        # succeed(), written out for the commonest outcome of all (run() and the caller's wait
        # began together, so both latencies are the same).
        self.events.append(_E_SUCCESS)
        self.total_time_ms = elapsed_ms
        # metrics.run_finished() and metrics.record_success(end, concurrency, elapsed_ms,
        # elapsed_ms), with its lock-free case written out: a success that moves no window
        # and raises no peak waits to be counted.
        running.pop()
        if end < metrics.wait_until and concurrency <= metrics.rolling.current_peak:
            waiting = metrics.waiting
            waiting.append(elapsed_ms)
            if len(waiting) >= _WAITING_LIMIT:
                metrics.count_waiting()
        else:
            metrics.record_success(end, concurrency, elapsed_ms, elapsed_ms)
        if _hooks.active:
            _hooks.notify("on_event", self.command, _E_SUCCESS)
        if _debug.enabled or not _debug.checked_at <= end < _debug.recheck_at:
            self.log_if_debug(end, elapsed_ms)
        if self.trial:
            state.circuit_breaker.on_result(True, False, True, end)
        if _hooks.active:
            _hooks.notify("on_success", self.command)
        return value

    # -- THREAD isolation ----------------------------------------------------

    def dispatch(self) -> bool:
        """Hand this execution to its pool; ``False`` if the pool refused it."""
        self.outcome: tuple[Any, BaseException | None] = (None, None)
        self.done = threading.Lock()
        self.done.acquire()
        self.context = _copy_context()
        return self.state.pool(self.command.thread_pool_key).try_dispatch(self)

    def reject_from_pool(self) -> R:
        """The pool was full."""
        return self.fail(
            _E_THREAD_POOL_REJECTED,
            _F_REJECTED_THREAD_EXECUTION,
            None,
            clock.monotonic(),
        )

    def execute_in_thread(self) -> R:
        """Run on a worker; the caller waits until the result or the deadline."""
        self.future: Future[R] | None = None
        self._claim: list[None] = [None]
        if not self.dispatch():
            try:
                return self.reject_from_pool()
            finally:
                self.let_go()
        deadline = self.deadline
        try:
            if deadline is None:
                finished = self.done.acquire()
            else:
                finished = clock.wait(self.done, deadline - clock.monotonic())
        except BaseException:
            # Interrupted while waiting. Whether or not the worker took the claim, only the
            # caller records an execute(), so record the cancellation here.
            self.claim()
            self.cancel_execution(clock.monotonic())
            raise
        if not finished:
            if self.claim():
                # The worker may still be in run(): it keeps the command for as long.
                return self.timeout(clock.monotonic(), run_finished=False)
            self.done.acquire()  # the worker took the claim at the deadline; it is finishing
        try:
            return self.conclude(clock.monotonic())
        finally:
            self.let_go()  # the worker handed its outcome over and is done with the command

    def queue_in_thread(self, future: Future[R]) -> None:
        """Run on a worker; the worker or the deadline timer completes ``future``."""
        self.future = future
        self._claim = [None]
        self.timer_entry: TimerEntry | None = None
        if self.deadline is not None:
            self.timer_entry = registry.timer().schedule(self.deadline, self.on_deadline)
        if not self.dispatch():
            if self.timer_entry is not None:
                self.timer_entry.cancel()
            if self.claim():
                self.settle(future, self.reject_from_pool, on_caller=True)

    def __call__(self) -> None:
        """Run on a pool worker (the pool calls this)."""
        self.context.run(self.run_in_worker)

    def cancel(self) -> None:
        """The pool will never run this task (it was shut down with cancel_futures)."""
        if self.claim():
            if self.future is not None:
                self.context.copy().run(self.settle, self.future, self.reject_from_pool)
            else:
                self.outcome = (None, _PoolShutDownError("the thread pool was shut down"))
                self.done.release()

    def run_in_worker(self) -> None:
        """Call run() on this worker thread and hand the outcome on, unless the deadline won."""
        if not self._claim:
            return  # timed out while waiting in the queue: do not start run()
        state = self.state
        start = clock.monotonic()
        self.concurrency = state.metrics.run_started(start)
        self.executed_in_thread = True
        error: BaseException | None = None
        value: Any = None
        timeout = state.timeout_seconds
        if timeout is not None:
            _set_deadline(self.start + timeout)  # in this execution's own context
        policy = state.retry_policy
        run = self.command.run
        if _chaos.enabled:  # fault injection (hystrixpy.chaos), into each attempt
            run = _chaos.wrap(state.command_key, run)
        try:
            value = run() if policy is None else policy.run(run, self.note_retry)
        except BaseException as raised:  # handed to the caller below
            error = raised
        end = clock.monotonic()
        state.metrics.run_finished()
        if not self.claim():
            _log.debug("late_result_dropped", **self.log_fields())
            return
        self.execution_time_ms = _ms(end - start)
        self.outcome = (value, error)
        future = self.future
        if future is None:
            self.done.release()
            return
        if self.timer_entry is not None:
            self.timer_entry.cancel()
        self.settle(future, lambda: self.conclude(end))

    def on_deadline(self) -> None:
        """The timer reached the deadline of a queued execution.

        The fallback runs on the deadline pool, never on the timer's own thread,
        so a slow fallback cannot hold back other executions' deadlines. If that
        pool is full or shut down, it runs here after all: a future is never lost.
        """
        if self.claim():
            task = _TimedOut(self, clock.monotonic())
            if not registry.deadline_pool().try_dispatch(task):
                task()

    def note_retry(self, error: BaseException, attempt: int, delay_ms: float) -> None:
        """run() failed and its retry policy will try again: count a RETRY (the policy's listener).

        Counted at once, so the rolling count shows retries as they happen. Once
        the deadline has settled a thread-isolated execution, a retry its worker
        still makes is counted but no longer added to the execution's events.
        """
        now = clock.monotonic()
        self.state.metrics.record(_JUST_RETRY, now)
        if self.executed_in_thread and not self._claim:
            return
        self.events.append(_E_RETRY)
        self.retries += 1
        if _hooks.active:
            _hooks.notify("on_event", self.command, _E_RETRY)

    @staticmethod
    def settle(future: Future[R], step: Callable[[], R], *, on_caller: bool = False) -> None:
        """Complete ``future`` with what ``step`` returns or raises.

        On a worker or timer thread every exception goes into the future, to be
        raised by ``result()``. On the caller's own thread (``on_caller``), a
        ``KeyboardInterrupt`` or other non-``Exception`` also propagates at once.
        """
        try:
            value = step()
        except BaseException as error:  # delivered to whoever holds the future
            future.set_exception(error)
            if on_caller and not isinstance(error, Exception):
                raise
        else:
            future.set_result(value)

    # -- outcomes ------------------------------------------------------------

    def conclude(self, now: float) -> R:
        """Turn the worker's outcome into the caller's answer."""
        value, error = self.outcome
        if error is None:
            return self.succeed(value, now)
        return self.conclude_error(error, now, run_finished=False)

    def succeed(self, value: R, now: float) -> R:
        """run() returned in time (run_on_caller() writes the same steps out for speed)."""
        self.events.append(_E_SUCCESS)
        total_ms = self.total_time_ms = _floor((now - self.start) * 1000.0 + 0.5)
        self.state.metrics.record_success(now, self.concurrency, self.execution_time_ms, total_ms)
        if _hooks.active:
            _hooks.notify("on_event", self.command, _E_SUCCESS)
        if _debug.enabled or not _debug.checked_at <= now < _debug.recheck_at:
            self.log_if_debug(now, total_ms)
        if self.trial:
            self.state.circuit_breaker.on_result(True, False, True, now)
        if _hooks.active:
            _hooks.notify("on_success", self.command)
        return value

    def conclude_error(self, error: BaseException, now: float, *, run_finished: bool) -> R:
        """run() raised ``error``: classify it."""
        self.run_exception = error
        if not isinstance(error, Exception):
            self.cancel_execution(now, run_finished=run_finished)
            raise error
        if isinstance(error, BadRequestError):
            self.exception = error
            self.failure_type = _F_BAD_REQUEST_EXCEPTION
            self.record((_E_BAD_REQUEST, _E_EXCEPTION_THROWN), now, run_finished=run_finished)
            if self.trial:
                self.state.circuit_breaker.on_result(False, False, True, now)
            if _hooks.active:
                _hooks.notify("on_error", self.command, _F_BAD_REQUEST_EXCEPTION, error)
            raise error
        if type(error) is _PoolShutDownError:
            return self.reject_from_pool()
        if isinstance(error, CommandTimeoutError):
            return self.fail(_E_TIMEOUT, _F_TIMEOUT, error, now, run_finished=run_finished)
        return self.fail(_E_FAILURE, _F_COMMAND_EXCEPTION, error, now, run_finished=run_finished)

    def timeout(self, now: float, *, run_finished: bool) -> R:
        """The deadline passed before run() finished."""
        timeout_ms = self.state.timeout_ms
        _log.info("execution_timed_out", timeout_ms=timeout_ms, **self.log_fields())
        return self.fail(
            _E_TIMEOUT,
            _F_TIMEOUT,
            CommandTimeoutError(
                f"{self.command.command_key} did not finish within {timeout_ms} ms"
            ),
            now,
            run_finished=run_finished,
        )

    def cancel_execution(self, now: float, *, run_finished: bool = False) -> None:
        """A KeyboardInterrupt or SystemExit cut the execution short: record CANCELLED."""
        self.record((_E_CANCELLED,), now, run_finished=run_finished)
        if self.trial:
            self.state.circuit_breaker.on_result(False, False, True, now)

    def fail(
        self,
        event: EventType,
        failure_type: FailureType,
        cause: BaseException | None,
        now: float,
        *,
        run_finished: bool = False,
    ) -> R:
        """Record why run() gave no value, tell the breaker, and fall back.

        ``cause`` may be ``None`` for a short circuit or a rejection: its
        exception is made only if something needs it (see :meth:`cause`).
        A short circuit is counted together with the fallback's outcome, as
        it tells the breaker nothing; every other event is counted at once.
        """
        self.failure_type = failure_type
        self.exception = cause
        if event is _E_SHORT_CIRCUITED:
            self.events.append(event)
            self.uncounted = _JUST_SHORT_CIRCUITED
            if _hooks.active:
                _hooks.notify("on_event", self.command, event)
        else:
            self.record((event,), now, run_finished=run_finished, final=False)
        health_error = event.is_health_error
        if health_error or self.trial:
            self.state.circuit_breaker.on_result(False, health_error, self.trial, now)
        if _hooks.active:
            _hooks.notify("on_error", self.command, failure_type, self.cause())
        if failure_type in _REJECTIONS:
            _log.info("execution_rejected", event=event.name, **self.log_fields())
        return self.fallback(failure_type)

    def cause(self) -> BaseException:
        """Why run() gave no value; made now for a short circuit or a rejection."""
        cause = self.exception
        if cause is None:
            error_type, words = _CAUSES[self.failure_type]  # type: ignore[index]
            cause = self.exception = error_type(f"{self.command.command_key}: {words}")
        return cause

    # -- fallback ------------------------------------------------------------

    def fallback(self, failure_type: FailureType) -> R:
        """Call get_fallback() under its semaphore, or explain why there is no value."""
        state = self.state
        if not state.properties.fallback_enabled:
            self.give_up(_E_FALLBACK_DISABLED, failure_type)
        command = self.command
        if not command.has_fallback():
            self.give_up(_E_FALLBACK_MISSING, failure_type)
        semaphore = state.fallback_semaphore
        try:
            semaphore.permits.pop()
        except IndexError:
            self.give_up(_E_FALLBACK_REJECTION, _F_REJECTED_SEMAPHORE_FALLBACK)
        if _hooks.active:
            _hooks.notify("on_fallback_start", command)
        try:
            value = command.get_fallback()
        except Exception as error:
            semaphore.release()
            _log.warning("fallback_failed", error=repr(error), **self.log_fields())
            if _hooks.active:
                _hooks.notify("on_fallback_error", command, error)
            self.give_up(_E_FALLBACK_FAILURE, failure_type, error)
        except BaseException:
            semaphore.release()
            self.record((_E_CANCELLED,), clock.monotonic())
            raise
        if semaphore.debt:
            semaphore.release()
        else:
            semaphore.permits.append(None)
        self.record(_JUST_FALLBACK_SUCCESS, clock.monotonic())
        if _hooks.active:
            _hooks.notify("on_fallback_success", command)
        return value

    def give_up(
        self,
        event: EventType,
        failure_type: FailureType,
        fallback_error: BaseException | None = None,
    ) -> NoReturn:
        """No usable fallback: record it and raise :class:`HystrixRuntimeError`."""
        self.fallback_exception = fallback_error
        self.record((event, _E_EXCEPTION_THROWN), clock.monotonic())
        command = self.command
        original = self.failure_type or failure_type
        message = f"{command.command_key} {_FAILURE_WORDS[original]} and {_FALLBACK_WORDS[event]}"
        raise HystrixRuntimeError(
            message,
            failure_type=failure_type,
            command_class=type(command),
            fallback_exception=fallback_error,
        ) from self.cause()

    def record(
        self,
        events: tuple[EventType, ...],
        now: float,
        *,
        run_finished: bool = False,
        final: bool = True,
    ) -> None:
        """Add ``events`` to the result and count them; ``final`` when the execution ends.

        The first record of an execution carries run()'s latency and concurrency;
        the final one the total latency the caller saw.
        """
        first = len(self.events) == len(self.uncounted) + self.retries
        self.events += events
        total_ms = -1
        if final:
            total_ms = self.total_time_ms = _floor((now - self.start) * 1000.0 + 0.5)
        counted = events
        if self.uncounted:
            counted = self.uncounted + events
            self.uncounted = ()
        self.state.metrics.record(
            counted,
            now,
            run_finished,
            self.concurrency if first else 0,
            self.execution_time_ms if first else -1,
            total_ms,
        )
        if _hooks.active:
            for event in events:
                _hooks.notify("on_event", self.command, event)
        if final and (_debug.enabled or not _debug.checked_at <= now < _debug.recheck_at):
            self.log_if_debug(now, total_ms)

    def log_if_debug(self, now: float, total_ms: int) -> None:
        """The DEBUG event of a finished execution, if DEBUG events are wanted."""
        if not _log.debug_enabled(now):
            return
        _log.debug(
            "execution_finished",
            events=[event.name for event in self.events],
            total_ms=total_ms,
            execution_ms=self.execution_time_ms,
            **self.log_fields(),
        )

    def log_fields(self) -> dict[str, str]:
        """The keys every log event carries."""
        command = self.command
        return {
            "command_key": command.command_key,
            "group_key": command.group_key,
            "thread_pool_key": self.state.thread_pool_key,
        }


#: Every attribute an :class:`Execution` instance may set, whatever path it takes.
ATTRIBUTES = (
    "start",
    "events",
    "command",
    "state",
    "trial",
    "concurrency",
    "retries",
    "uncounted",
    "execution_time_ms",
    "total_time_ms",
    "failure_type",
    "exception",
    "run_exception",
    "fallback_exception",
    "executed_in_thread",
    "outcome",
    "done",
    "context",
    "future",
    "_claim",
    "timer_entry",
)


def _share_attribute_names() -> None:
    """Let every execution keep its attributes in its class's shared table of names.

    CPython keeps an instance's attributes in a table of names that all
    instances of its class share, but the table takes new names only while
    the class's first few dozen instances are made. Afterwards an instance
    that sets a name the table lacks gets a dictionary of its own, and pays
    for it on every execution. Which names got in would depend on the paths
    the first executions happened to take (a run of successes, then a storm
    of short circuits, say), so one instance made here sets them all first.
    """
    first = Execution.__new__(Execution)
    for name in ATTRIBUTES:
        setattr(first, name, None)


_share_attribute_names()
