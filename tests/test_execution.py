"""Scenario tests of whole executions: execute() and queue() in THREAD and SEMAPHORE isolation."""

from __future__ import annotations

import contextlib
import contextvars
import gc
import threading
import weakref
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from concurrent.futures import wait as wait_for_futures
from datetime import timedelta
from typing import Any, TypeVar

import pytest
from freezegun import freeze_time

import hystrixpy
from hystrixpy import (
    BadRequestError,
    CircuitState,
    Command,
    CommandProperties,
    CommandTimeoutError,
    EventType,
    FailureType,
    HealthCounts,
    HystrixRuntimeError,
    IsolationStrategy,
    RejectedError,
    ShortCircuitedError,
    ThreadPoolProperties,
)
from hystrixpy.bulkhead import ThreadPoolBulkhead
from hystrixpy.testing import FakeClock, use_clock
from tests.gates import Caller, Gate

T = TypeVar("T")

THREAD = IsolationStrategy.THREAD
SEMAPHORE = IsolationStrategy.SEMAPHORE
E = EventType

BOTH_ISOLATIONS = pytest.mark.parametrize(
    "isolation", [THREAD, SEMAPHORE], ids=["thread", "semaphore"]
)
BOTH_CALLS = pytest.mark.parametrize("how", ["execute", "queue"])

# What the caller sets before executing, to see where it is visible.
REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("REQUEST_ID", default="unset")

Behaviour = Callable[["Scripted"], str]


def _value(command: Scripted) -> str:
    return "value"


def _fallback(command: Scripted) -> str:
    return "fallback"


def returns(value: str) -> Behaviour:
    """A run() or get_fallback() that returns ``value``."""
    return lambda command: value


def raises(error: BaseException) -> Behaviour:
    """A run() or get_fallback() that raises ``error``."""

    def behaviour(command: Scripted) -> str:
        raise error

    return behaviour


def overruns(clock: FakeClock, seconds: float, then: Behaviour) -> Behaviour:
    """A run() that takes ``seconds`` of fake time, then behaves as ``then``."""

    def behaviour(command: Scripted) -> str:
        clock.advance(seconds)
        return then(command)

    return behaviour


class Scripted(Command[str]):
    """A command that runs the behaviour it is given; ``scripted()`` makes configured subclasses."""

    group_key = "Scripted"

    def __init__(
        self, run: Behaviour = _value, fallback: Behaviour = _fallback, **keys: str
    ) -> None:
        super().__init__(**keys)
        self.behaviour = run
        self.fallback_behaviour = fallback
        self.run_threads: list[threading.Thread] = []
        self.fallback_threads: list[threading.Thread] = []

    def run(self) -> str:
        self.run_threads.append(threading.current_thread())
        return self.behaviour(self)


class ScriptedWithFallback(Scripted):
    """A scripted command that also defines get_fallback()."""

    def get_fallback(self) -> str:
        self.fallback_threads.append(threading.current_thread())
        return self.fallback_behaviour(self)


def scripted(
    name: str,
    *,
    isolation: IsolationStrategy = THREAD,
    fallback: bool = True,
    pool: ThreadPoolProperties | None = None,
    **settings: Any,
) -> type[Scripted]:
    """A command class named ``name`` (its command, group and pool key) with these properties."""
    base = ScriptedWithFallback if fallback else Scripted
    namespace = {
        "group_key": name,
        "properties": CommandProperties(execution_isolation_strategy=isolation, **settings),
        "thread_pool_properties": pool if pool is not None else ThreadPoolProperties(),
    }
    return type(name, (base,), namespace)


class WatchedClock(FakeClock):
    """A fake clock that also tells the test which threads are blocked waiting on it."""

    def __init__(self) -> None:
        super().__init__()
        self._changed = threading.Condition()
        self._waiting: set[threading.Thread] = set()

    def wait(self, lock: threading.Lock, timeout: float) -> bool:
        me = threading.current_thread()
        with self._changed:
            self._waiting.add(me)
            self._changed.notify_all()
        try:
            return super().wait(lock, timeout)
        finally:
            with self._changed:
                self._waiting.discard(me)

    def wait_for_waiter(self, thread: threading.Thread) -> bool:
        """Block (at most 5 s) until ``thread`` waits on this clock."""
        with self._changed:
            return self._changed.wait_for(lambda: thread in self._waiting, 5)


@pytest.fixture
def watched_clock() -> Iterator[WatchedClock]:
    """A WatchedClock installed as hystrixpy's clock for the test."""
    clock = WatchedClock()
    with use_clock(clock):
        yield clock


def call(command: Command[T], how: str) -> T:
    """Run ``command`` with execute(), or with queue() and the future's result."""
    if how == "execute":
        return command.execute()
    return command.queue().result(5)


def rolling(command: Command[Any]) -> dict[EventType, int]:
    """The non-zero rolling event counts of the command's key."""
    metrics = command.metrics
    return {event: count for event in EventType if (count := metrics.rolling_count(event))}


def finish_pool(pool_key: str) -> ThreadPoolBulkhead:
    """Shut the pool down and wait (at most 5 s) until its workers have finished every task."""
    pool = hystrixpy.thread_pool(pool_key)
    stopper = threading.Thread(target=pool.shutdown, daemon=True)
    stopper.start()
    stopper.join(5)
    assert not stopper.is_alive(), "a worker of the pool is still busy"
    return pool


def trip(command_class: type[Scripted], failures: int) -> None:
    """Fail ``failures`` executions of the class so that its breaker opens."""
    for _ in range(failures):
        command_class(run=raises(ValueError("down"))).execute()
    assert hystrixpy.circuit_breaker(command_class.command_key).state is CircuitState.OPEN


# -- one scenario per event type ----------------------------------------------


class TestEventScenarios:
    @BOTH_ISOLATIONS
    @BOTH_CALLS
    def test_success(self, isolation: IsolationStrategy, how: str, fake_clock: FakeClock) -> None:
        """run()'s value reaches the caller and one SUCCESS is counted, in health counts too."""
        command = scripted("Succeeds", isolation=isolation)(run=returns("data"))

        assert call(command, how) == "data"

        assert command.execution_events == [E.SUCCESS]
        assert rolling(command) == {E.SUCCESS: 1}
        assert command.metrics.health_counts() == HealthCounts(total_requests=1, error_count=0)
        assert command.fallback_threads == []

    @BOTH_ISOLATIONS
    @BOTH_CALLS
    def test_failure(self, isolation: IsolationStrategy, how: str, fake_clock: FakeClock) -> None:
        """run() raising gives FAILURE, the fallback's value, and an error in the health counts."""
        error = ValueError("boom")
        command = scripted("Fails", isolation=isolation)(run=raises(error))

        assert call(command, how) == "fallback"

        assert command.execution_events == [E.FAILURE, E.FALLBACK_SUCCESS]
        assert rolling(command) == {E.FAILURE: 1, E.FALLBACK_SUCCESS: 1}
        assert command.metrics.health_counts() == HealthCounts(total_requests=1, error_count=1)
        assert command.failed_execution_exception is error

    def test_timeout_in_thread_isolation(self, fake_clock: FakeClock) -> None:
        """A run() still busy at the deadline gives TIMEOUT and the fallback to the caller."""
        gate = Gate()
        command = scripted("TimesOutThread")(run=gate.hold())
        try:
            caller = Caller(command.execute)
            assert gate.entered.wait(5)
            fake_clock.advance(1.5)
            assert caller.outcome() == "fallback"
        finally:
            gate.open()

        assert command.execution_events == [E.TIMEOUT, E.FALLBACK_SUCCESS]
        assert rolling(command) == {E.TIMEOUT: 1, E.FALLBACK_SUCCESS: 1}
        assert command.metrics.health_counts() == HealthCounts(total_requests=1, error_count=1)

    @BOTH_CALLS
    def test_timeout_in_semaphore_isolation(self, how: str, fake_clock: FakeClock) -> None:
        """A run() on the caller's thread that overran its deadline gives TIMEOUT and fallback."""
        command = scripted("TimesOutSemaphore", isolation=SEMAPHORE)(
            run=overruns(fake_clock, 1.5, returns("late"))
        )

        assert call(command, how) == "fallback"

        assert command.execution_events == [E.TIMEOUT, E.FALLBACK_SUCCESS]
        assert rolling(command) == {E.TIMEOUT: 1, E.FALLBACK_SUCCESS: 1}

    @BOTH_ISOLATIONS
    @BOTH_CALLS
    def test_bad_request(
        self, isolation: IsolationStrategy, how: str, fake_clock: FakeClock
    ) -> None:
        """BadRequestError reaches the caller as it is: BAD_REQUEST then EXCEPTION_THROWN."""
        error = BadRequestError("no such user")
        command = scripted("BadRequest", isolation=isolation)(run=raises(error))

        with pytest.raises(BadRequestError) as raised:
            call(command, how)

        assert raised.value is error
        assert command.execution_events == [E.BAD_REQUEST, E.EXCEPTION_THROWN]
        assert rolling(command) == {E.BAD_REQUEST: 1, E.EXCEPTION_THROWN: 1}
        assert command.fallback_threads == []

    @BOTH_ISOLATIONS
    @BOTH_CALLS
    def test_short_circuited(
        self, isolation: IsolationStrategy, how: str, fake_clock: FakeClock
    ) -> None:
        """Once enough failures open the circuit, run() is skipped and the fallback answers."""
        command_class = scripted(
            "ShortCircuits", isolation=isolation, circuit_breaker_request_volume_threshold=2
        )
        trip(command_class, 2)
        command = command_class(run=returns("fresh"))

        assert call(command, how) == "fallback"

        assert command.run_threads == []
        assert command.execution_events == [E.SHORT_CIRCUITED, E.FALLBACK_SUCCESS]
        assert rolling(command) == {E.FAILURE: 2, E.SHORT_CIRCUITED: 1, E.FALLBACK_SUCCESS: 3}
        assert command.metrics.health_counts() == HealthCounts(total_requests=2, error_count=2)

    @BOTH_CALLS
    def test_thread_pool_rejected(self, how: str, fake_clock: FakeClock) -> None:
        """With every worker busy the next command is refused at once and falls back."""
        gate = Gate()
        command_class = scripted("PoolRejects", pool=ThreadPoolProperties(core_size=1))
        holder = command_class(run=gate.hold(returns("held")))
        try:
            held = holder.queue()
            assert gate.entered.wait(5)
            command = command_class()
            assert call(command, how) == "fallback"
        finally:
            gate.open()

        assert held.result(5) == "held"
        assert command.run_threads == []
        assert command.execution_events == [E.THREAD_POOL_REJECTED, E.FALLBACK_SUCCESS]
        assert rolling(command) == {
            E.SUCCESS: 1,
            E.THREAD_POOL_REJECTED: 1,
            E.FALLBACK_SUCCESS: 1,
        }

    @BOTH_CALLS
    def test_semaphore_rejected(self, how: str) -> None:
        """With every execution permit taken the next command is refused at once and falls back."""
        gate = Gate()
        command_class = scripted(
            "SemaphoreRejects",
            isolation=SEMAPHORE,
            execution_isolation_semaphore_max_concurrent_requests=1,
        )
        holder = command_class(run=gate.hold(returns("held")))
        try:
            caller = Caller(holder.execute)
            assert gate.entered.wait(5)
            command = command_class()
            assert call(command, how) == "fallback"
        finally:
            gate.open()

        assert caller.outcome() == "held"
        assert command.run_threads == []
        assert command.execution_events == [E.SEMAPHORE_REJECTED, E.FALLBACK_SUCCESS]
        assert rolling(command) == {
            E.SUCCESS: 1,
            E.SEMAPHORE_REJECTED: 1,
            E.FALLBACK_SUCCESS: 1,
        }

    @BOTH_ISOLATIONS
    @BOTH_CALLS
    def test_fallback_success(
        self, isolation: IsolationStrategy, how: str, fake_clock: FakeClock
    ) -> None:
        """The fallback's own value, computed from the command, is what the caller receives."""
        command = scripted("FallsBack", isolation=isolation)(
            run=raises(ConnectionError("refused")),
            fallback=lambda command: f"cached answer of {command.command_key}",
        )

        assert call(command, how) == "cached answer of FallsBack"

        assert command.is_response_from_fallback
        assert command.execution_events == [E.FAILURE, E.FALLBACK_SUCCESS]
        assert rolling(command) == {E.FAILURE: 1, E.FALLBACK_SUCCESS: 1}

    @BOTH_ISOLATIONS
    @BOTH_CALLS
    def test_fallback_failure(
        self, isolation: IsolationStrategy, how: str, fake_clock: FakeClock
    ) -> None:
        """A fallback that raises gives FALLBACK_FAILURE and a HystrixRuntimeError."""
        fallback_error = LookupError("cache empty")
        command = scripted("FallbackFails", isolation=isolation)(
            run=raises(ValueError("boom")), fallback=raises(fallback_error)
        )

        with pytest.raises(HystrixRuntimeError) as raised:
            call(command, how)

        assert raised.value.fallback_exception is fallback_error
        assert command.execution_events == [E.FAILURE, E.FALLBACK_FAILURE, E.EXCEPTION_THROWN]
        assert rolling(command) == {E.FAILURE: 1, E.FALLBACK_FAILURE: 1, E.EXCEPTION_THROWN: 1}

    @BOTH_ISOLATIONS
    @BOTH_CALLS
    def test_fallback_rejection(
        self, isolation: IsolationStrategy, how: str, fake_clock: FakeClock
    ) -> None:
        """With no fallback permit free the fallback is not called: FALLBACK_REJECTION."""
        command = scripted(
            "FallbackRejected",
            isolation=isolation,
            fallback_isolation_semaphore_max_concurrent_requests=0,
        )(run=raises(ValueError("boom")))

        with pytest.raises(HystrixRuntimeError):
            call(command, how)

        assert command.fallback_threads == []
        assert command.execution_events == [E.FAILURE, E.FALLBACK_REJECTION, E.EXCEPTION_THROWN]
        assert rolling(command) == {
            E.FAILURE: 1,
            E.FALLBACK_REJECTION: 1,
            E.EXCEPTION_THROWN: 1,
        }

    @BOTH_ISOLATIONS
    @BOTH_CALLS
    def test_fallback_disabled(
        self, isolation: IsolationStrategy, how: str, fake_clock: FakeClock
    ) -> None:
        """fallback_enabled=False skips the defined fallback: FALLBACK_DISABLED."""
        command = scripted("FallbackOff", isolation=isolation, fallback_enabled=False)(
            run=raises(ValueError("boom"))
        )

        with pytest.raises(HystrixRuntimeError):
            call(command, how)

        assert command.fallback_threads == []
        assert command.execution_events == [E.FAILURE, E.FALLBACK_DISABLED, E.EXCEPTION_THROWN]
        assert rolling(command) == {E.FAILURE: 1, E.FALLBACK_DISABLED: 1, E.EXCEPTION_THROWN: 1}

    @BOTH_ISOLATIONS
    @BOTH_CALLS
    def test_fallback_missing(
        self, isolation: IsolationStrategy, how: str, fake_clock: FakeClock
    ) -> None:
        """A class without get_fallback() gives FALLBACK_MISSING and a HystrixRuntimeError."""
        command = scripted("NoFallback", isolation=isolation, fallback=False)(
            run=raises(ValueError("boom"))
        )

        with pytest.raises(HystrixRuntimeError):
            call(command, how)

        assert command.execution_events == [E.FAILURE, E.FALLBACK_MISSING, E.EXCEPTION_THROWN]
        assert rolling(command) == {E.FAILURE: 1, E.FALLBACK_MISSING: 1, E.EXCEPTION_THROWN: 1}

    @BOTH_ISOLATIONS
    def test_exception_thrown_counts_each_exception_the_caller_receives(
        self, isolation: IsolationStrategy, fake_clock: FakeClock
    ) -> None:
        """EXCEPTION_THROWN is counted once per raised call and never for an answered one."""
        with_fallback = scripted("Thrown", isolation=isolation)
        without_fallback = scripted("ThrownNoFallback", isolation=isolation, fallback=False)

        assert with_fallback().execute() == "value"
        assert with_fallback(run=raises(ValueError("boom"))).execute() == "fallback"
        with pytest.raises(BadRequestError):
            with_fallback(run=raises(BadRequestError("bad"))).execute()
        with pytest.raises(HystrixRuntimeError):
            with_fallback(
                run=raises(ValueError("boom")), fallback=raises(ValueError("again"))
            ).execute()
        with pytest.raises(HystrixRuntimeError):
            without_fallback(run=raises(ValueError("boom"))).execute()

        assert with_fallback.command_key == "Thrown"
        assert hystrixpy.command_metrics("Thrown").rolling_count(E.EXCEPTION_THROWN) == 2
        assert hystrixpy.command_metrics("ThrownNoFallback").rolling_count(E.EXCEPTION_THROWN) == 1

    @BOTH_ISOLATIONS
    @BOTH_CALLS
    def test_cancelled(self, isolation: IsolationStrategy, how: str, fake_clock: FakeClock) -> None:
        """A KeyboardInterrupt from run() is recorded as CANCELLED and reaches the caller."""
        interrupt = KeyboardInterrupt()
        command = scripted("Cancelled", isolation=isolation)(run=raises(interrupt))

        with pytest.raises(KeyboardInterrupt) as raised:
            call(command, how)

        assert raised.value is interrupt
        assert command.fallback_threads == []
        assert command.execution_events == [E.CANCELLED]
        assert rolling(command) == {E.CANCELLED: 1}
        assert command.metrics.health_counts() == HealthCounts(total_requests=0, error_count=0)
        assert command.metrics.current_concurrent_execution_count == 0


# -- one scenario per failure type --------------------------------------------


def assert_runtime_error(
    error: HystrixRuntimeError,
    failure_type: FailureType,
    command_class: type[Command[Any]],
    message: str,
) -> None:
    """The error says why, which class, and in its message which command."""
    assert type(error) is HystrixRuntimeError
    assert error.failure_type is failure_type
    assert error.command_class is command_class
    assert str(error) == message
    assert command_class.command_key in str(error)


class TestFailureTypes:
    @BOTH_ISOLATIONS
    @BOTH_CALLS
    def test_bad_request_exception(
        self, isolation: IsolationStrategy, how: str, fake_clock: FakeClock
    ) -> None:
        """BadRequestError comes back unwrapped, without fallback, and never trips the breaker."""
        command_class = scripted(
            "BadRequestType",
            isolation=isolation,
            circuit_breaker_request_volume_threshold=1,
            circuit_breaker_error_threshold_percentage=1,
        )
        errors = [BadRequestError(f"bad input {n}") for n in range(3)]
        commands = [command_class(run=raises(error)) for error in errors]

        for command, error in zip(commands, errors, strict=True):
            with pytest.raises(BadRequestError) as raised:
                call(command, how)
            assert raised.value is error
            assert raised.value.__cause__ is None

        assert all(command.fallback_threads == [] for command in commands)
        metrics = hystrixpy.command_metrics("BadRequestType")
        assert metrics.health_counts() == HealthCounts(total_requests=0, error_count=0)
        assert metrics.rolling_count(E.BAD_REQUEST) == 3
        assert hystrixpy.circuit_breaker("BadRequestType").state is CircuitState.CLOSED

    @BOTH_ISOLATIONS
    @BOTH_CALLS
    def test_command_exception(
        self, isolation: IsolationStrategy, how: str, fake_clock: FakeClock
    ) -> None:
        """run()'s error is the cause of a COMMAND_EXCEPTION when there is no fallback."""
        command_class = scripted("CommandException", isolation=isolation, fallback=False)
        cause = ValueError("boom")

        with pytest.raises(HystrixRuntimeError) as raised:
            call(command_class(run=raises(cause)), how)

        assert_runtime_error(
            raised.value,
            FailureType.COMMAND_EXCEPTION,
            command_class,
            "CommandException failed and no fallback is defined",
        )
        assert raised.value.__cause__ is cause
        assert raised.value.fallback_exception is None

    @BOTH_ISOLATIONS
    def test_command_exception_with_failing_fallback(
        self, isolation: IsolationStrategy, fake_clock: FakeClock
    ) -> None:
        """When the fallback fails too, its error is kept as fallback_exception."""
        command_class = scripted("CommandExceptionFallback", isolation=isolation)
        cause = ValueError("boom")
        fallback_error = KeyError("no cached value")

        with pytest.raises(HystrixRuntimeError) as raised:
            command_class(run=raises(cause), fallback=raises(fallback_error)).execute()

        assert_runtime_error(
            raised.value,
            FailureType.COMMAND_EXCEPTION,
            command_class,
            "CommandExceptionFallback failed and its fallback failed",
        )
        assert raised.value.__cause__ is cause
        assert raised.value.fallback_exception is fallback_error

    def test_timeout_in_thread_isolation(self, fake_clock: FakeClock) -> None:
        """A timed-out run() with no fallback gives TIMEOUT caused by a CommandTimeoutError."""
        command_class = scripted("TimeoutType", fallback=False, execution_timeout_ms=200)
        gate = Gate()
        try:
            caller = Caller(command_class(run=gate.hold()).execute)
            assert gate.entered.wait(5)
            fake_clock.advance(0.3)
            with pytest.raises(HystrixRuntimeError) as raised:
                caller.outcome()
        finally:
            gate.open()

        assert_runtime_error(
            raised.value,
            FailureType.TIMEOUT,
            command_class,
            "TimeoutType timed out and no fallback is defined",
        )
        assert isinstance(raised.value.__cause__, CommandTimeoutError)
        assert str(raised.value.__cause__) == "TimeoutType did not finish within 200 ms"
        assert raised.value.fallback_exception is None

    def test_timeout_in_semaphore_isolation(self, fake_clock: FakeClock) -> None:
        """An overrun on the caller's thread gives TIMEOUT caused by a CommandTimeoutError."""
        command_class = scripted(
            "TimeoutTypeSemaphore", isolation=SEMAPHORE, fallback=False, execution_timeout_ms=200
        )

        with pytest.raises(HystrixRuntimeError) as raised:
            command_class(run=overruns(fake_clock, 0.3, returns("late"))).execute()

        assert_runtime_error(
            raised.value,
            FailureType.TIMEOUT,
            command_class,
            "TimeoutTypeSemaphore timed out and no fallback is defined",
        )
        assert isinstance(raised.value.__cause__, CommandTimeoutError)

    @BOTH_ISOLATIONS
    @BOTH_CALLS
    def test_shortcircuit(
        self, isolation: IsolationStrategy, how: str, fake_clock: FakeClock
    ) -> None:
        """An open circuit with no fallback gives SHORTCIRCUIT caused by ShortCircuitedError."""
        command_class = scripted(
            "ShortCircuitType",
            isolation=isolation,
            fallback=False,
            circuit_breaker_force_open=True,
        )

        with pytest.raises(HystrixRuntimeError) as raised:
            call(command_class(), how)

        assert_runtime_error(
            raised.value,
            FailureType.SHORTCIRCUIT,
            command_class,
            "ShortCircuitType was short-circuited and no fallback is defined",
        )
        assert isinstance(raised.value.__cause__, ShortCircuitedError)

    @BOTH_CALLS
    def test_rejected_thread_execution(self, how: str, fake_clock: FakeClock) -> None:
        """A full pool with no fallback gives REJECTED_THREAD_EXECUTION caused by RejectedError."""
        command_class = scripted(
            "PoolRejectType", fallback=False, pool=ThreadPoolProperties(core_size=1)
        )
        gate = Gate()
        try:
            held = command_class(run=gate.hold()).queue()
            assert gate.entered.wait(5)
            with pytest.raises(HystrixRuntimeError) as raised:
                call(command_class(), how)
        finally:
            gate.open()

        assert held.result(5) == "value"
        assert_runtime_error(
            raised.value,
            FailureType.REJECTED_THREAD_EXECUTION,
            command_class,
            "PoolRejectType was rejected by its thread pool and no fallback is defined",
        )
        assert isinstance(raised.value.__cause__, RejectedError)

    @BOTH_CALLS
    def test_rejected_semaphore_execution(self, how: str) -> None:
        """A full semaphore with no fallback gives REJECTED_SEMAPHORE_EXECUTION."""
        command_class = scripted(
            "SemaphoreRejectType",
            isolation=SEMAPHORE,
            fallback=False,
            execution_isolation_semaphore_max_concurrent_requests=0,
        )
        command = command_class()

        with pytest.raises(HystrixRuntimeError) as raised:
            call(command, how)

        assert command.run_threads == []
        assert_runtime_error(
            raised.value,
            FailureType.REJECTED_SEMAPHORE_EXECUTION,
            command_class,
            "SemaphoreRejectType was rejected by its semaphore and no fallback is defined",
        )
        assert isinstance(raised.value.__cause__, RejectedError)

    @BOTH_ISOLATIONS
    @BOTH_CALLS
    def test_rejected_semaphore_fallback(
        self, isolation: IsolationStrategy, how: str, fake_clock: FakeClock
    ) -> None:
        """A full fallback semaphore gives REJECTED_SEMAPHORE_FALLBACK caused by run()'s error."""
        command_class = scripted(
            "FallbackRejectType",
            isolation=isolation,
            fallback_isolation_semaphore_max_concurrent_requests=0,
        )
        cause = ValueError("boom")

        with pytest.raises(HystrixRuntimeError) as raised:
            call(command_class(run=raises(cause)), how)

        assert_runtime_error(
            raised.value,
            FailureType.REJECTED_SEMAPHORE_FALLBACK,
            command_class,
            "FallbackRejectType failed and its fallback was rejected (fallback semaphore full)",
        )
        assert raised.value.__cause__ is cause
        assert raised.value.fallback_exception is None


class TestTimeoutRaisedByRun:
    @BOTH_ISOLATIONS
    @BOTH_CALLS
    def test_counts_as_timeout(
        self, isolation: IsolationStrategy, how: str, fake_clock: FakeClock
    ) -> None:
        """run() raising CommandTimeoutError itself is recorded as TIMEOUT, not FAILURE."""
        error = CommandTimeoutError("the database gave up")
        command = scripted("RaisesTimeout", isolation=isolation)(run=raises(error))

        assert call(command, how) == "fallback"

        assert command.execution_events == [E.TIMEOUT, E.FALLBACK_SUCCESS]
        assert rolling(command) == {E.TIMEOUT: 1, E.FALLBACK_SUCCESS: 1}
        assert command.is_response_timed_out
        assert not command.is_failed_execution
        assert command.failed_execution_exception is error

    @BOTH_ISOLATIONS
    def test_is_the_cause_without_fallback(
        self, isolation: IsolationStrategy, fake_clock: FakeClock
    ) -> None:
        """Without a fallback the TIMEOUT's cause is the very error run() raised."""
        error = CommandTimeoutError("the database gave up")
        command_class = scripted("RaisesTimeoutNoFallback", isolation=isolation, fallback=False)

        with pytest.raises(HystrixRuntimeError) as raised:
            command_class(run=raises(error)).execute()

        assert raised.value.failure_type is FailureType.TIMEOUT
        assert raised.value.__cause__ is error


# -- THREAD isolation timeouts ------------------------------------------------


class TestThreadTimeout:
    def test_caller_gets_fallback_when_fake_time_passes_deadline(
        self, fake_clock: FakeClock
    ) -> None:
        """The blocked caller of execute() is released with the fallback at the deadline."""
        gate = Gate()
        command = scripted("DeadlineFallback", execution_timeout_ms=500)(run=gate.hold())
        try:
            caller = Caller(command.execute)
            assert gate.entered.wait(5)
            fake_clock.advance(0.5)
            assert caller.outcome() == "fallback"
            assert command.is_executed_in_thread
            assert command.execution_time_ms == -1
            assert command.fallback_threads == [caller.thread]
        finally:
            gate.open()

    def test_run_finishing_before_deadline_succeeds(self, fake_clock: FakeClock) -> None:
        """A worker that returns just inside the deadline delivers its value."""
        command = scripted("JustInTime")(run=overruns(fake_clock, 0.999, returns("in time")))

        assert command.execute() == "in time"

        assert command.execution_events == [E.SUCCESS]
        assert command.execution_time_ms == 999

    def test_late_result_is_dropped(self, fake_clock: FakeClock) -> None:
        """A run() that returns after the deadline changes neither the outcome nor the metrics."""
        gate = Gate()
        command = scripted("LateResult", pool=ThreadPoolProperties(core_size=1))(
            run=gate.hold(returns("late value"))
        )
        try:
            caller = Caller(command.execute)
            assert gate.entered.wait(5)
            fake_clock.advance(1.5)
            assert caller.outcome() == "fallback"
        finally:
            gate.open()
        pool = finish_pool("LateResult")

        assert pool.completed_task_count == 1
        assert command.execution_time_ms == -1
        assert command.execution_events == [E.TIMEOUT, E.FALLBACK_SUCCESS]
        assert not command.is_successful_execution
        assert rolling(command) == {E.TIMEOUT: 1, E.FALLBACK_SUCCESS: 1}
        assert command.metrics.current_concurrent_execution_count == 0

    def test_timed_out_worker_keeps_its_slot_until_run_returns(self, fake_clock: FakeClock) -> None:
        """A pool of one worker rejects the next command while a timed-out run() is still busy."""
        gate = Gate()
        command_class = scripted("StuckWorker", pool=ThreadPoolProperties(core_size=1))
        stuck = command_class(run=gate.hold())
        try:
            caller = Caller(stuck.execute)
            assert gate.entered.wait(5)
            fake_clock.advance(1.5)
            assert caller.outcome() == "fallback"

            rejected = command_class()
            assert rejected.execute() == "fallback"
            assert rejected.execution_events == [E.THREAD_POOL_REJECTED, E.FALLBACK_SUCCESS]
            assert rejected.run_threads == []
            assert hystrixpy.thread_pool("StuckWorker").active_count == 1
        finally:
            gate.open()

    def test_queued_command_starts_once_the_stuck_run_returns(self, fake_clock: FakeClock) -> None:
        """The slot of a timed-out run() frees when it returns, and the queued command then runs."""
        gate = Gate()
        command_class = scripted(
            "FreedSlot",
            pool=ThreadPoolProperties(
                core_size=1, max_queue_size=1, queue_size_rejection_threshold=1
            ),
        )
        stuck = command_class(run=gate.hold())
        try:
            caller = Caller(stuck.execute)
            assert gate.entered.wait(5)
            fake_clock.advance(1.5)
            assert caller.outcome() == "fallback"

            waiting = command_class(run=returns("ran after"))
            waiting_future = waiting.queue()
            pool = hystrixpy.thread_pool("FreedSlot")
            assert (pool.active_count, pool.queue_size) == (1, 1)
            overflow = command_class()
            assert overflow.execute() == "fallback"
            assert overflow.execution_events == [E.THREAD_POOL_REJECTED, E.FALLBACK_SUCCESS]
        finally:
            gate.open()

        assert waiting_future.result(5) == "ran after"
        assert waiting.execution_events == [E.SUCCESS]

    def test_time_in_queue_counts_and_a_command_timed_out_in_queue_never_runs(
        self, watched_clock: WatchedClock
    ) -> None:
        """The deadline starts at queue time; a command that times out there never starts run()."""
        gate = Gate()
        command_class = scripted(
            "QueueTime",
            pool=ThreadPoolProperties(
                core_size=1, max_queue_size=1, queue_size_rejection_threshold=1
            ),
        )
        first = command_class(run=gate.hold())
        queued = command_class(run=returns("should not run"))
        try:
            first_future = first.queue()
            assert gate.entered.wait(5)
            watched_clock.advance(0.5)
            caller = Caller(queued.execute)
            assert watched_clock.wait_for_waiter(caller.thread)
            assert hystrixpy.thread_pool("QueueTime").queue_size == 1
            watched_clock.advance(1.0)  # first's deadline and then queued's deadline pass
            assert caller.outcome() == "fallback"
            assert first_future.result(5) == "fallback"
        finally:
            gate.open()
        pool = finish_pool("QueueTime")

        assert pool.completed_task_count == 2
        assert queued.run_threads == []
        assert queued.execution_events == [E.TIMEOUT, E.FALLBACK_SUCCESS]
        assert not queued.is_executed_in_thread
        assert queued.execution_time_ms == -1

    def test_without_timeout_the_caller_waits_for_run(self, fake_clock: FakeClock) -> None:
        """With execution_timeout_enabled=False the caller waits however long run() takes."""
        command = scripted("NoDeadline", execution_timeout_enabled=False)(
            run=overruns(fake_clock, 60.0, returns("slow but sure"))
        )

        assert command.execute() == "slow but sure"

        assert command.execution_events == [E.SUCCESS]
        assert command.execution_time_ms == 60_000

    def test_run_finishing_as_the_wait_times_out_still_delivers(self) -> None:
        """If the worker settles just as the caller's wait times out, the worker's value stands."""

        class WakesLate(FakeClock):
            """A clock whose timed wait reports a timeout only once the lock has become free."""

            def wait(self, lock: threading.Lock, timeout: float) -> bool:
                if lock.acquire(True, 5):
                    lock.release()
                return False

        with use_clock(WakesLate()):
            command = scripted("SettledAtDeadline")(run=returns("on the line"))
            assert command.execute() == "on the line"

        assert command.execution_events == [E.SUCCESS]

    def test_interrupt_while_waiting_cancels_and_propagates(self) -> None:
        """Ctrl-C while the caller waits for the worker records CANCELLED and reaches the caller."""
        gate = Gate()

        class InterruptedWait(FakeClock):
            """A clock whose timed wait is cut short by a KeyboardInterrupt, as Ctrl-C would."""

            def wait(self, lock: threading.Lock, timeout: float) -> bool:
                gate.entered.wait(5)
                raise KeyboardInterrupt

        command = scripted("InterruptedCaller")(run=gate.hold(returns("too late")))
        with use_clock(InterruptedWait()):
            try:
                with pytest.raises(KeyboardInterrupt):
                    command.execute()
            finally:
                gate.open()
            finish_pool("InterruptedCaller")

            assert command.execution_events == [E.CANCELLED]
            assert rolling(command) == {E.CANCELLED: 1}
            assert command.fallback_threads == []
            assert command.metrics.current_concurrent_execution_count == 0

    def test_interrupt_as_the_worker_finishes_still_ends_the_execution(self) -> None:
        """Ctrl-C arriving just after the worker settled reaches the caller; the run is recorded."""

        class InterruptedOnWaking(FakeClock):
            """A clock whose timed wait is cut short by Ctrl-C just as the worker has finished."""

            def wait(self, lock: threading.Lock, timeout: float) -> bool:
                if lock.acquire(True, 5):
                    lock.release()
                raise KeyboardInterrupt

        with use_clock(InterruptedOnWaking()):
            command = scripted("InterruptedAtTheEnd")(run=returns("finished"))
            with pytest.raises(KeyboardInterrupt):
                command.execute()

            assert command.run_threads != []
            assert command.execution_events in ([E.SUCCESS], [E.CANCELLED])
            assert rolling(command) == {command.execution_events[0]: 1}


# -- queue() ------------------------------------------------------------------


class TestQueue:
    def test_thread_queue_returns_at_once_and_resolves_at_deadline(
        self, fake_clock: FakeClock
    ) -> None:
        """queue() returns before run() ends; the future gets the fallback at the deadline."""
        gate = Gate()
        command = scripted("QueuedDeadline")(run=gate.hold())
        try:
            future = command.queue()
            assert gate.entered.wait(5)
            assert not future.done()
            assert not future.cancel()
            fake_clock.advance(1.0)
            assert future.result(5) == "fallback"
            assert command.execution_events == [E.TIMEOUT, E.FALLBACK_SUCCESS]
        finally:
            gate.open()

    def test_a_slow_fallback_does_not_hold_back_another_deadline(
        self, fake_clock: FakeClock
    ) -> None:
        """While one timed-out command's fallback is still running, another's deadline is kept."""
        slow_run, quick_run, slow_fallback = Gate(), Gate(), Gate()
        slow = scripted("SlowFallback", execution_timeout_ms=100)(
            run=slow_run.hold(), fallback=slow_fallback.hold(lambda command: "slow fallback")
        )
        quick = scripted("QuickFallback", execution_timeout_ms=150)(run=quick_run.hold())
        try:
            slow_future = slow.queue()
            quick_future = quick.queue()
            assert slow_run.entered.wait(5)
            assert quick_run.entered.wait(5)
            fake_clock.advance(0.12)
            assert slow_fallback.entered.wait(5)
            fake_clock.advance(0.05)

            # Well before the slow fallback's gate would give up (5 s).
            assert quick_future.result(2) == "fallback"
            assert not slow_future.done()
        finally:
            slow_fallback.open()
            slow_run.open()
            quick_run.open()

        assert slow_future.result(5) == "slow fallback"

    def test_queued_fallback_at_deadline_runs_off_the_caller_thread_in_its_context(
        self, fake_clock: FakeClock
    ) -> None:
        """The deadline's fallback runs on another thread but sees the caller's contextvars."""
        gate = Gate()
        seen: list[str] = []
        command = scripted("QueuedContext")(
            run=gate.hold(), fallback=lambda command: seen.append(REQUEST_ID.get()) or "fallback"
        )
        token = REQUEST_ID.set("request-7")
        try:
            future = command.queue()
            assert gate.entered.wait(5)
            fake_clock.advance(1.5)
            assert future.result(5) == "fallback"
        finally:
            gate.open()
            REQUEST_ID.reset(token)

        assert seen == ["request-7"]
        assert len(command.fallback_threads) == 1
        assert command.fallback_threads[0] is not threading.current_thread()
        assert command.fallback_threads[0] is not command.run_threads[0]

    def test_queued_fallback_after_failure_runs_on_the_worker_in_callers_context(
        self, fake_clock: FakeClock
    ) -> None:
        """After run() fails, the fallback of a queued command runs on its worker, in context."""
        seen: list[str] = []
        command = scripted("QueuedFailureContext")(
            run=raises(ValueError("boom")),
            fallback=lambda command: seen.append(REQUEST_ID.get()) or "fallback",
        )
        token = REQUEST_ID.set("request-8")
        try:
            assert command.queue().result(5) == "fallback"
        finally:
            REQUEST_ID.reset(token)

        assert seen == ["request-8"]
        assert command.fallback_threads == command.run_threads
        assert command.fallback_threads[0] is not threading.current_thread()

    def test_semaphore_queue_returns_a_completed_future(self) -> None:
        """In SEMAPHORE isolation queue() runs run() on the caller and returns a done future."""
        command = scripted("QueuedSemaphore", isolation=SEMAPHORE)(run=returns("done"))

        future = command.queue()

        assert future.done()
        assert future.result(0) == "done"
        assert command.run_threads == [threading.current_thread()]

    @BOTH_ISOLATIONS
    def test_failing_queued_command_future_raises_runtime_error(
        self, isolation: IsolationStrategy, fake_clock: FakeClock
    ) -> None:
        """A queued command with no usable fallback completes its future with the error."""
        cause = ValueError("boom")
        command = scripted("QueuedFails", isolation=isolation, fallback=False)(run=raises(cause))

        future = command.queue()

        error = future.exception(5)
        assert isinstance(error, HystrixRuntimeError)
        assert error.failure_type is FailureType.COMMAND_EXCEPTION
        assert error.__cause__ is cause
        with pytest.raises(HystrixRuntimeError):
            future.result(0)

    def test_queue_without_timeout_is_settled_by_the_worker(self, fake_clock: FakeClock) -> None:
        """With timeouts disabled the worker alone completes the future, however late."""
        command = scripted("QueuedNoDeadline", execution_timeout_enabled=False)(
            run=overruns(fake_clock, 30.0, returns("eventually"))
        )

        assert command.queue().result(5) == "eventually"
        assert command.execution_events == [E.SUCCESS]

    @pytest.mark.parametrize("timeout_enabled", [True, False], ids=["timeout", "no-timeout"])
    def test_queue_rejected_by_full_pool_resolves_with_fallback(
        self, timeout_enabled: bool, fake_clock: FakeClock
    ) -> None:
        """A queued command the pool refuses resolves at once with the fallback."""
        gate = Gate()
        command_class = scripted(
            "QueuedRejected",
            execution_timeout_enabled=timeout_enabled,
            pool=ThreadPoolProperties(core_size=1),
        )
        try:
            held = command_class(run=gate.hold()).queue()
            assert gate.entered.wait(5)
            rejected = command_class()
            future = rejected.queue()
            assert future.done()
            assert future.result(0) == "fallback"
            assert rejected.execution_events == [E.THREAD_POOL_REJECTED, E.FALLBACK_SUCCESS]
        finally:
            gate.open()
        assert held.result(5) == "value"

    def test_every_queued_future_completes(self, fake_clock: FakeClock) -> None:
        """Whatever the outcome, every future that queue() returns is completed."""
        gate = Gate()
        slow = scripted("MixSlow", pool=ThreadPoolProperties(core_size=1))
        plain = scripted("MixPlain", fallback=False)
        try:
            stuck = slow(run=gate.hold()).queue()
            assert gate.entered.wait(5)
            others = [
                slow().queue(),
                plain().queue(),
                plain(run=raises(ValueError("boom"))).queue(),
                plain(run=raises(BadRequestError("bad"))).queue(),
                scripted("MixOpen", circuit_breaker_force_open=True)().queue(),
                scripted("MixSemaphore", isolation=SEMAPHORE)().queue(),
                scripted("MixSemaphoreFails", isolation=SEMAPHORE, fallback=False)(
                    run=raises(ValueError("boom"))
                ).queue(),
            ]
            _, pending = wait_for_futures(others, timeout=5)
            assert not pending
            fake_clock.advance(1.0)
            _, pending = wait_for_futures([stuck], timeout=5)
            assert not pending
        finally:
            gate.open()

        def outcome(future: Future[str]) -> object:
            error = future.exception(0)
            return type(error) if error is not None else future.result(0)

        assert [outcome(future) for future in [stuck, *others]] == [
            "fallback",
            "fallback",
            "value",
            HystrixRuntimeError,
            BadRequestError,
            "fallback",
            "value",
            HystrixRuntimeError,
        ]


# -- SEMAPHORE isolation timeouts ---------------------------------------------


class TestSemaphoreTimeout:
    @BOTH_CALLS
    @pytest.mark.parametrize(
        "then",
        [returns("late"), raises(ValueError("late failure")), raises(BadRequestError("late"))],
        ids=["returned", "raised", "raised-bad-request"],
    )
    def test_overrun_is_a_timeout_whatever_run_did(
        self, how: str, then: Behaviour, fake_clock: FakeClock
    ) -> None:
        """A run() that overran its deadline is a TIMEOUT whatever it returned or raised."""
        command = scripted("Overrun", isolation=SEMAPHORE)(run=overruns(fake_clock, 1.5, then))

        assert call(command, how) == "fallback"

        assert command.execution_events == [E.TIMEOUT, E.FALLBACK_SUCCESS]
        assert rolling(command) == {E.TIMEOUT: 1, E.FALLBACK_SUCCESS: 1}
        assert command.is_response_timed_out
        assert command.execution_time_ms == 1500
        assert command.metrics.current_concurrent_execution_count == 0

    def test_run_within_deadline_succeeds(self, fake_clock: FakeClock) -> None:
        """A run() on the caller's thread that ends inside its deadline succeeds."""
        command = scripted("WithinDeadline", isolation=SEMAPHORE)(
            run=overruns(fake_clock, 0.5, returns("on time"))
        )

        assert command.execute() == "on time"
        assert command.execution_events == [E.SUCCESS]

    @pytest.mark.parametrize(
        ("then", "expected_events"),
        [
            (returns("slow"), [E.SUCCESS]),
            (raises(ValueError("slow failure")), [E.FAILURE, E.FALLBACK_SUCCESS]),
        ],
        ids=["returned", "raised"],
    )
    def test_without_timeout_a_long_run_is_not_a_timeout(
        self, then: Behaviour, expected_events: list[EventType], fake_clock: FakeClock
    ) -> None:
        """With execution_timeout_enabled=False a long run() keeps its own outcome."""
        command = scripted(
            "NoDeadlineSemaphore", isolation=SEMAPHORE, execution_timeout_enabled=False
        )(run=overruns(fake_clock, 60.0, then))

        command.execute()

        assert command.execution_events == expected_events


# -- contextvars --------------------------------------------------------------


class TestContextVars:
    @BOTH_ISOLATIONS
    @BOTH_CALLS
    def test_run_and_fallback_see_the_callers_context(
        self, isolation: IsolationStrategy, how: str, fake_clock: FakeClock
    ) -> None:
        """A ContextVar set by the caller is visible in run() and in get_fallback()."""
        seen: dict[str, str] = {}

        def run(command: Scripted) -> str:
            seen["run"] = REQUEST_ID.get()
            raise ValueError("boom")

        def fallback(command: Scripted) -> str:
            seen["fallback"] = REQUEST_ID.get()
            return "fallback"

        command = scripted("SeesContext", isolation=isolation)(run=run, fallback=fallback)
        token = REQUEST_ID.set("request-42")
        try:
            assert call(command, how) == "fallback"
        finally:
            REQUEST_ID.reset(token)

        assert seen == {"run": "request-42", "fallback": "request-42"}

    @BOTH_ISOLATIONS
    @BOTH_CALLS
    def test_changes_made_by_run_do_not_leak_to_the_caller(
        self, isolation: IsolationStrategy, how: str, fake_clock: FakeClock
    ) -> None:
        """A ContextVar that run() sets stays in run()'s copy of the context."""

        def run(command: Scripted) -> str:
            REQUEST_ID.set("changed by run")
            return REQUEST_ID.get()

        command = scripted("KeepsContext", isolation=isolation)(run=run)
        token = REQUEST_ID.set("request-42")
        try:
            assert call(command, how) == "changed by run"
            assert REQUEST_ID.get() == "request-42"
        finally:
            REQUEST_ID.reset(token)


# -- KeyboardInterrupt and SystemExit -----------------------------------------


class TestInterrupts:
    @pytest.mark.parametrize("error_type", [KeyboardInterrupt, SystemExit])
    @pytest.mark.parametrize("source", ["run", "fallback"])
    @BOTH_ISOLATIONS
    @BOTH_CALLS
    def test_propagate_unwrapped_without_fallback(
        self,
        error_type: type[BaseException],
        source: str,
        isolation: IsolationStrategy,
        how: str,
        fake_clock: FakeClock,
    ) -> None:
        """KeyboardInterrupt and SystemExit reach the caller as raised and trigger no fallback."""
        error = error_type()
        command_class = scripted(
            "Interrupted",
            isolation=isolation,
            fallback_isolation_semaphore_max_concurrent_requests=1,
        )
        if source == "run":
            command = command_class(run=raises(error))
        else:
            command = command_class(run=raises(ValueError("boom")), fallback=raises(error))

        with pytest.raises(error_type) as raised:
            call(command, how)

        assert raised.value is error
        assert raised.value.__cause__ is None
        if source == "run":
            assert command.fallback_threads == []
            assert command.execution_events == [E.CANCELLED]
            assert rolling(command) == {E.CANCELLED: 1}
        else:
            assert len(command.fallback_threads) == 1
            assert command.execution_events == [E.FAILURE, E.CANCELLED]
            assert rolling(command) == {E.FAILURE: 1, E.CANCELLED: 1}
        # the fallback semaphore is given back
        assert command_class(run=raises(ValueError("boom"))).execute() == "fallback"

    @pytest.mark.parametrize("error_type", [KeyboardInterrupt, SystemExit])
    def test_semaphore_queue_raises_at_once_on_the_callers_thread(
        self, error_type: type[BaseException]
    ) -> None:
        """In SEMAPHORE isolation run() runs inside queue(), so the interrupt leaves queue()."""
        error = error_type()
        command = scripted("InterruptedQueue", isolation=SEMAPHORE)(run=raises(error))

        with pytest.raises(error_type) as raised:
            command.queue()

        assert raised.value is error
        assert command.execution_events == [E.CANCELLED]

    @pytest.mark.parametrize("error_type", [KeyboardInterrupt, SystemExit])
    def test_thread_queue_delivers_the_interrupt_through_the_future(
        self, error_type: type[BaseException], fake_clock: FakeClock
    ) -> None:
        """In THREAD isolation queue() returns, and future.result() raises the interrupt as is."""
        error = error_type()
        command = scripted("InterruptedFuture")(run=raises(error))

        future = command.queue()

        with pytest.raises(error_type) as raised:
            future.result(5)
        assert raised.value is error
        assert command.execution_events == [E.CANCELLED]


# -- the fallback semaphore ---------------------------------------------------


class TestFallbackSemaphore:
    @BOTH_ISOLATIONS
    def test_fallbacks_beyond_the_limit_are_rejected(
        self, isolation: IsolationStrategy, fake_clock: FakeClock
    ) -> None:
        """With two fallbacks running, a third gets FALLBACK_REJECTION; later ones run again."""
        command_class = scripted(
            "FallbackLimit",
            isolation=isolation,
            fallback_isolation_semaphore_max_concurrent_requests=2,
        )
        gates = [Gate(), Gate()]
        try:
            callers = [
                Caller(
                    command_class(
                        run=raises(ValueError("boom")), fallback=gate.hold(returns("slow fallback"))
                    ).execute
                )
                for gate in gates
            ]
            assert all(gate.entered.wait(5) for gate in gates)

            rejected = command_class(run=raises(ValueError("boom")))
            with pytest.raises(HystrixRuntimeError) as raised:
                rejected.execute()
        finally:
            for gate in gates:
                gate.open()

        assert [caller.outcome() for caller in callers] == ["slow fallback", "slow fallback"]
        assert raised.value.failure_type is FailureType.REJECTED_SEMAPHORE_FALLBACK
        assert rejected.fallback_threads == []
        assert rejected.execution_events == [E.FAILURE, E.FALLBACK_REJECTION, E.EXCEPTION_THROWN]
        assert command_class(run=raises(ValueError("boom"))).execute() == "fallback"
        assert rolling(rejected) == {
            E.FAILURE: 4,
            E.FALLBACK_SUCCESS: 3,
            E.FALLBACK_REJECTION: 1,
            E.EXCEPTION_THROWN: 1,
        }


class TestFallbackDisabled:
    @BOTH_ISOLATIONS
    @pytest.mark.parametrize("cause", ["failure", "short-circuit", "rejection"])
    def test_gives_fallback_disabled(
        self, isolation: IsolationStrategy, cause: str, fake_clock: FakeClock
    ) -> None:
        """With fallback_enabled=False every failure gives FALLBACK_DISABLED, never the fallback."""
        command_class = scripted(
            "NoFallbackAllowed",
            isolation=isolation,
            fallback_enabled=False,
            circuit_breaker_force_open=cause == "short-circuit",
            execution_isolation_semaphore_max_concurrent_requests=0 if cause == "rejection" else 10,
            pool=ThreadPoolProperties(core_size=1),
        )
        gate = Gate()
        try:
            if cause == "rejection" and isolation is THREAD:
                command_class(run=gate.hold()).queue()
                assert gate.entered.wait(5)
            command = command_class(run=raises(ValueError("boom")))
            with pytest.raises(HystrixRuntimeError) as raised:
                command.execute()
        finally:
            gate.open()

        first_event = {
            "failure": E.FAILURE,
            "short-circuit": E.SHORT_CIRCUITED,
            "rejection": E.THREAD_POOL_REJECTED if isolation is THREAD else E.SEMAPHORE_REJECTED,
        }[cause]
        assert command.execution_events == [first_event, E.FALLBACK_DISABLED, E.EXCEPTION_THROWN]
        assert command.fallback_threads == []
        assert str(raised.value).endswith("and fallback is disabled")


# -- the circuit breaker's trial ----------------------------------------------


class TestTrial:
    @BOTH_ISOLATIONS
    @pytest.mark.parametrize(
        ("trial", "raised", "closes"),
        [
            (returns("recovered"), None, True),
            (raises(ValueError("still down")), None, False),
            (raises(BadRequestError("bad")), BadRequestError, False),
            (raises(KeyboardInterrupt()), KeyboardInterrupt, False),
        ],
        ids=["success", "failure", "bad-request", "interrupt"],
    )
    def test_trial_outcome_decides_the_circuit(
        self,
        isolation: IsolationStrategy,
        trial: Behaviour,
        raised: type[BaseException] | None,
        closes: bool,
        fake_clock: FakeClock,
    ) -> None:
        """After the sleep window one trial runs; only its success closes the circuit."""
        command_class = scripted(
            "Trial", isolation=isolation, circuit_breaker_request_volume_threshold=2
        )
        trip(command_class, 2)
        fake_clock.advance(5.0)

        trial_command = command_class(run=trial)
        if raised is None:
            trial_command.execute()
        else:
            with pytest.raises(raised):
                trial_command.execute()

        assert len(trial_command.run_threads) == 1
        breaker = hystrixpy.circuit_breaker("Trial")
        assert breaker.state is (CircuitState.CLOSED if closes else CircuitState.OPEN)
        after = command_class()
        after.execute()
        assert len(after.run_threads) == (1 if closes else 0)


# -- freezegun ----------------------------------------------------------------


class TestFreezegun:
    def test_breaker_recovers_after_sleep_window_in_frozen_time(self) -> None:
        """With freezegun's time, an open circuit lets a trial through after the sleep window."""
        command_class = scripted(
            "Frozen",
            isolation=SEMAPHORE,
            circuit_breaker_request_volume_threshold=3,
            circuit_breaker_sleep_window_ms=5000,
        )
        with freeze_time("2024-05-01 12:00:00") as frozen:
            trip(command_class, 3)
            breaker = hystrixpy.circuit_breaker("Frozen")

            frozen.tick(timedelta(seconds=4.9))
            early = command_class(run=returns("too early"))
            assert early.execute() == "fallback"
            assert early.execution_events == [E.SHORT_CIRCUITED, E.FALLBACK_SUCCESS]

            frozen.move_to("2024-05-01 12:00:05")
            trial = command_class(run=returns("recovered"))
            assert trial.execute() == "recovered"
            assert trial.execution_events == [E.SUCCESS]
            assert breaker.state is CircuitState.CLOSED
            assert trial.metrics.health_counts() == HealthCounts(total_requests=0, error_count=0)

            frozen.tick(timedelta(seconds=1))
            assert command_class(run=returns("normal")).execute() == "normal"

    def test_failed_trial_reopens_for_a_new_sleep_window_in_frozen_time(self) -> None:
        """A failed trial re-opens the circuit, and the next trial waits a full window again."""
        command_class = scripted(
            "FrozenAgain",
            isolation=SEMAPHORE,
            circuit_breaker_request_volume_threshold=2,
            circuit_breaker_sleep_window_ms=1000,
        )
        with freeze_time("2024-05-01 08:00:00") as frozen:
            trip(command_class, 2)
            frozen.tick(timedelta(seconds=1))
            failed_trial = command_class(run=raises(ValueError("still down")))
            assert failed_trial.execute() == "fallback"
            assert failed_trial.execution_events == [E.FAILURE, E.FALLBACK_SUCCESS]

            frozen.tick(timedelta(milliseconds=999))
            assert command_class().execute() == "fallback"
            frozen.tick(timedelta(milliseconds=1))
            assert command_class().execute() == "value"
            assert hystrixpy.circuit_breaker("FrozenAgain").state is CircuitState.CLOSED


# -- pool shut down under queued work -----------------------------------------


class TestPoolShutdown:
    @BOTH_CALLS
    def test_queued_command_of_a_pool_shut_down_with_cancel_is_rejected(
        self, how: str, watched_clock: WatchedClock
    ) -> None:
        """A command still waiting in a pool that is shut down with cancel_futures falls back."""
        gate = Gate()
        command_class = scripted(
            "ShutDownPool",
            pool=ThreadPoolProperties(
                core_size=1, max_queue_size=1, queue_size_rejection_threshold=1
            ),
        )
        waiting = command_class(run=returns("never"))
        try:
            held = command_class(run=gate.hold()).queue()
            assert gate.entered.wait(5)
            outcome: Callable[[], str]
            if how == "execute":
                caller = Caller(waiting.execute)
                assert watched_clock.wait_for_waiter(caller.thread)
                outcome = caller.outcome
            else:
                future = waiting.queue()
                outcome = lambda: future.result(5)  # noqa: E731
            pool = hystrixpy.thread_pool("ShutDownPool")
            assert pool.queue_size == 1
            pool.shutdown(wait=False, cancel_futures=True)
            assert outcome() == "fallback"
        finally:
            gate.open()

        assert held.result(5) == "value"
        assert waiting.run_threads == []
        assert waiting.execution_events == [E.THREAD_POOL_REJECTED, E.FALLBACK_SUCCESS]

    def test_a_cancelled_queued_command_falls_back_in_its_callers_context(self) -> None:
        """Shut down from another context, a queued command's fallback still sees its caller's."""
        gate = Gate()
        seen: list[str] = []
        command_class = scripted(
            "ShutDownContext",
            pool=ThreadPoolProperties(
                core_size=1, max_queue_size=1, queue_size_rejection_threshold=1
            ),
        )
        waiting = command_class(
            run=returns("never"),
            fallback=lambda command: seen.append(REQUEST_ID.get()) or "fallback",
        )
        try:
            held = command_class(run=gate.hold()).queue()
            assert gate.entered.wait(5)
            token = REQUEST_ID.set("request-9")
            try:
                future = waiting.queue()
            finally:
                REQUEST_ID.reset(token)
            pool = hystrixpy.thread_pool("ShutDownContext")
            contextvars.Context().run(pool.shutdown, wait=False, cancel_futures=True)
            assert future.result(5) == "fallback"
        finally:
            gate.open()

        assert held.result(5) == "value"
        assert seen == ["request-9"]

    def test_cancelling_a_command_that_already_timed_out_changes_nothing(
        self, fake_clock: FakeClock
    ) -> None:
        """A queued command that timed out keeps its outcome when its pool is shut down later."""
        gate = Gate()
        command_class = scripted(
            "ShutDownAfterTimeout",
            pool=ThreadPoolProperties(
                core_size=1, max_queue_size=1, queue_size_rejection_threshold=1
            ),
        )
        waiting = command_class(run=returns("never"))
        try:
            held = command_class(run=gate.hold()).queue()
            assert gate.entered.wait(5)
            future = waiting.queue()
            fake_clock.advance(1.0)
            assert future.result(5) == "fallback"
            assert held.result(5) == "fallback"
            hystrixpy.thread_pool("ShutDownAfterTimeout").shutdown(wait=False, cancel_futures=True)
        finally:
            gate.open()

        assert waiting.execution_events == [E.TIMEOUT, E.FALLBACK_SUCCESS]
        assert rolling(waiting) == {E.TIMEOUT: 2, E.FALLBACK_SUCCESS: 2}


class TestNoReferenceCycles:
    @pytest.mark.parametrize(
        ("isolation", "settings", "how"),
        [
            (SEMAPHORE, {}, "execute"),
            (SEMAPHORE, {}, "queue"),
            (SEMAPHORE, {"circuit_breaker_force_open": True}, "execute"),
            (SEMAPHORE, {"circuit_breaker_force_open": True}, "queue"),
            (THREAD, {}, "execute"),
            (THREAD, {"circuit_breaker_force_open": True}, "execute"),
            (THREAD, {"circuit_breaker_force_open": True}, "queue"),
        ],
        ids=[
            "semaphore-execute",
            "semaphore-queue",
            "short-circuit-execute",
            "short-circuit-queue",
            "thread-execute",
            "thread-short-circuit-execute",
            "thread-short-circuit-queue",
        ],
    )
    def test_a_finished_command_is_freed_without_the_garbage_collector(
        self, isolation: IsolationStrategy, settings: dict[str, Any], how: str
    ) -> None:
        """Dropping a finished command frees it and its execution at once: no cycle to collect."""
        name = f"Freed{isolation.name.title()}{'Open' if settings else ''}"
        command = scripted(name, isolation=isolation, **settings)(run=returns("value"))
        expected = "fallback" if settings else "value"
        gc.disable()
        try:
            answer = command.execute() if how == "execute" else command.queue().result(5)
            assert answer == expected
            if isolation is THREAD and not settings:
                hystrixpy.thread_pool(name).shutdown(wait=True)  # the worker has moved on
            command_ref = weakref.ref(command)
            execution_ref = weakref.ref(command._execution)  # type: ignore[arg-type]
            del command

            assert command_ref() is None
            assert execution_ref() is None
        finally:
            gc.enable()


class TestAttributeNames:
    @BOTH_ISOLATIONS
    @BOTH_CALLS
    @pytest.mark.parametrize(
        "outcome",
        ["success", "failure", "bad-request", "timeout", "short-circuit", "no-fallback"],
    )
    def test_every_attribute_an_execution_sets_is_declared(
        self, isolation: IsolationStrategy, how: str, outcome: str, fake_clock: FakeClock
    ) -> None:
        """Every path sets only names in ``ATTRIBUTES``, the names made shared at import."""
        behaviours: dict[str, Behaviour] = {
            "success": returns("value"),
            "failure": raises(ValueError("down")),
            "bad-request": raises(BadRequestError("bad")),
            "timeout": overruns(fake_clock, 1.5, returns("late")),
            "short-circuit": returns("value"),
            "no-fallback": raises(ValueError("down")),
        }
        command = scripted(
            f"Names{isolation.name.title()}{outcome.title().replace('-', '')}",
            isolation=isolation,
            fallback=outcome != "no-fallback",
            circuit_breaker_force_open=outcome == "short-circuit",
        )(run=behaviours[outcome])
        with contextlib.suppress(BadRequestError, HystrixRuntimeError):
            call(command, how)
        execution = command._execution
        assert execution is not None
        assert len(execution.events) > 0

        assert set(vars(execution)) <= set(hystrixpy.execution.ATTRIBUTES)


class TestSuccessCounting:
    def test_every_success_of_many_callers_is_counted(self, fake_clock: FakeClock) -> None:
        """Successes counted without the lock are in the rolling, cumulative and health counts."""
        callers, each = 4, 500
        command_class = scripted(
            "ManyCallers",
            isolation=SEMAPHORE,
            execution_isolation_semaphore_max_concurrent_requests=callers,
        )
        start = threading.Barrier(callers)

        def call_many() -> None:
            start.wait()
            for _ in range(each):
                assert command_class().execute() == "value"

        threads = [threading.Thread(target=call_many) for _ in range(callers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        metrics = hystrixpy.command_metrics("ManyCallers")
        total = callers * each

        assert metrics.cumulative_count(E.SUCCESS) == total
        assert metrics.rolling_count(E.SUCCESS) == total
        assert metrics.health_counts() == HealthCounts(total, 0)
