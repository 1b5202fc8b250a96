"""Tests for execution hooks: register_hook(), ExecutionHook, HookEvent and what hooks are told."""

from __future__ import annotations

import contextvars
import dataclasses
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

import pytest

import hystrixpy
from hystrixpy import (
    BadRequestError,
    CircuitState,
    Command,
    CommandProperties,
    CommandTimeoutError,
    EventType,
    ExecutionHook,
    FailureType,
    HookEvent,
    HystrixRuntimeError,
    IsolationStrategy,
    RejectedError,
    ShortCircuitedError,
    ThreadPoolProperties,
    clock,
)
from hystrixpy.testing import FakeClock
from tests.gates import Gate

T = TypeVar("T")

THREAD = IsolationStrategy.THREAD
SEMAPHORE = IsolationStrategy.SEMAPHORE
E = EventType
F = FailureType
CLOSED, OPEN, HALF_OPEN = CircuitState.CLOSED, CircuitState.OPEN, CircuitState.HALF_OPEN

BOTH_ISOLATIONS = pytest.mark.parametrize(
    "isolation", [THREAD, SEMAPHORE], ids=["thread", "semaphore"]
)
BOTH_CALLS = pytest.mark.parametrize("how", ["execute", "queue"])

# What the caller sets before executing, to see whether hooks see it.
REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("REQUEST_ID", default="unset")

# -- commands -----------------------------------------------------------------

Behaviour = Callable[["Probe"], str]


def returns(value: str) -> Behaviour:
    """A run() or get_fallback() that returns ``value``."""
    return lambda command: value


def raises(error: BaseException) -> Behaviour:
    """A run() or get_fallback() that raises ``error``."""

    def behaviour(command: Probe) -> str:
        raise error

    return behaviour


def overruns(clock: FakeClock, seconds: float, then: Behaviour) -> Behaviour:
    """A run() that takes ``seconds`` of fake time, then behaves as ``then``."""

    def behaviour(command: Probe) -> str:
        clock.advance(seconds)
        return then(command)

    return behaviour


_VALUE = returns("value")
_FALLBACK = returns("fallback")


class Probe(Command[str]):
    """A command that runs the behaviour it is given; ``probe()`` makes configured subclasses."""

    group_key = "Hooks"

    def __init__(
        self, run: Behaviour = _VALUE, fallback: Behaviour = _FALLBACK, **keys: str
    ) -> None:
        super().__init__(**keys)
        self.behaviour = run
        self.fallback_behaviour = fallback
        self.ran = False

    def run(self) -> str:
        self.ran = True
        return self.behaviour(self)


class ProbeWithFallback(Probe):
    """A probe that also defines get_fallback()."""

    def get_fallback(self) -> str:
        return self.fallback_behaviour(self)


def probe(
    name: str,
    *,
    isolation: IsolationStrategy = SEMAPHORE,
    fallback: bool = True,
    pool: ThreadPoolProperties | None = None,
    **settings: Any,
) -> type[Probe]:
    """A command class named ``name`` (its command, group and pool key) with these properties."""
    base = ProbeWithFallback if fallback else Probe
    namespace = {
        "group_key": name,
        "properties": CommandProperties(execution_isolation_strategy=isolation, **settings),
        "thread_pool_properties": pool if pool is not None else ThreadPoolProperties(),
    }
    return type(name, (base,), namespace)


def call(command: Command[T], how: str) -> T:
    """Run ``command`` with execute(), or with queue() and the future's result."""
    if how == "execute":
        return command.execute()
    return command.queue().result(5)


def call_in_thread(function: Callable[[], T]) -> Future[T]:
    """Call ``function`` on a thread of its own; the future gets what it returns or raises."""
    outcome: Future[T] = Future()

    def main() -> None:
        try:
            outcome.set_result(function())
        except BaseException as error:  # handed to the test through the future
            outcome.set_exception(error)

    threading.Thread(target=main, daemon=True).start()
    return outcome


def finish_pool(pool_key: str) -> None:
    """Shut the pool down and wait until its workers have finished every task."""
    hystrixpy.thread_pool(pool_key).shutdown(wait=True)


# -- hooks --------------------------------------------------------------------


class AnInstance:
    """Equal to any instance of ``kind`` (for errors the library creates itself)."""

    __hash__ = None  # type: ignore[assignment]

    def __init__(self, kind: type[BaseException]) -> None:
        self.kind = kind

    def __eq__(self, other: object) -> bool:
        return isinstance(other, self.kind)

    def __repr__(self) -> str:
        return f"AnInstance({self.kind.__name__})"


class Recorder(ExecutionHook):
    """Records every notification as ``(step, subject, *details)``, from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: list[tuple[Any, ...]] = []

    def _add(self, *call: Any) -> None:
        with self._lock:
            self.calls.append(call)

    def on_start(self, command: Command[Any]) -> None:
        self._add("start", command)

    def on_success(self, command: Command[Any]) -> None:
        self._add("success", command)

    def on_error(
        self, command: Command[Any], failure_type: FailureType, error: BaseException
    ) -> None:
        self._add("error", command, failure_type, error)

    def on_fallback_start(self, command: Command[Any]) -> None:
        self._add("fallback_start", command)

    def on_fallback_success(self, command: Command[Any]) -> None:
        self._add("fallback_success", command)

    def on_fallback_error(self, command: Command[Any], error: BaseException) -> None:
        self._add("fallback_error", command, error)

    def on_circuit_state_change(
        self, command_key: str, old: CircuitState, new: CircuitState
    ) -> None:
        self._add("circuit", command_key, old, new)

    def on_event(self, command: Command[Any], event: EventType) -> None:
        self._add("event", command, event)

    def steps(self, command: Command[Any]) -> list[tuple[Any, ...]]:
        """The notifications about ``command`` (and its key's breaker), without the subject."""
        with self._lock:
            calls = list(self.calls)
        return [
            (step, *details)
            for step, subject, *details in calls
            if subject is command or subject == command.command_key
        ]

    def events(self, command: Command[Any]) -> list[EventType]:
        """The events on_event reported for ``command``, in order."""
        return [details[0] for step, *details in self.steps(command) if step == "event"]

    def circuit_changes(self) -> list[tuple[str, CircuitState, CircuitState]]:
        """Every breaker transition reported, as ``(command_key, old, new)``."""
        with self._lock:
            return [tuple(details) for step, *details in self.calls if step == "circuit"]  # type: ignore[misc]


START = ("start",)
SUCCESS = ("success",)
FALLBACK_START = ("fallback_start",)
FALLBACK_SUCCESS = ("fallback_success",)


def event(kind: EventType) -> tuple[Any, ...]:
    return ("event", kind)


def error(failure_type: FailureType, cause: object) -> tuple[Any, ...]:
    return ("error", failure_type, cause)


def fallback_error(cause: object) -> tuple[Any, ...]:
    return ("fallback_error", cause)


def circuit(old: CircuitState, new: CircuitState) -> tuple[Any, ...]:
    return ("circuit", old, new)


def fell_back(event_type: EventType, failure_type: FailureType, cause: object) -> list[Any]:
    """The notifications of an execution that failed with ``event_type`` and fell back."""
    return [
        START,
        event(event_type),
        error(failure_type, cause),
        FALLBACK_START,
        event(E.FALLBACK_SUCCESS),
        FALLBACK_SUCCESS,
    ]


@pytest.fixture
def recorder() -> Recorder:
    """A Recorder registered as a hook for the test."""
    hook = Recorder()
    hystrixpy.register_hook(hook)
    return hook


def hook_failures(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """The ``hook_failed`` records logged to the hystrixpy logger."""
    return [
        record
        for record in caplog.records
        if record.name == "hystrixpy" and record.getMessage().startswith("hook_failed")
    ]


# -- registering and unregistering --------------------------------------------


class TestRegistration:
    def test_register_hook_returns_the_hook_so_it_can_be_a_decorator(self) -> None:
        """register_hook() returns what it was given, so it can decorate a function."""
        seen: list[HookEvent] = []

        @hystrixpy.register_hook
        def hook(hook_event: HookEvent) -> None:
            seen.append(hook_event)

        assert callable(hook)
        assert hook.__name__ == "hook"
        command = probe("Decorated")()
        assert command.execute() == "value"

        assert [e.kind for e in seen] == ["on_start", "on_event", "on_success"]
        hystrixpy.unregister_hook(hook)

    def test_execution_hook_subclass_is_notified(self, recorder: Recorder) -> None:
        """An ExecutionHook subclass gets its overridden methods called for every command."""
        first = probe("SubclassA")()
        second = probe("SubclassB")(run=returns("other"))

        assert first.execute() == "value"
        assert second.execute() == "other"

        assert recorder.steps(first) == [START, event(E.SUCCESS), SUCCESS]
        assert recorder.steps(second) == [START, event(E.SUCCESS), SUCCESS]

    def test_subclass_overriding_some_methods_gets_only_those(self) -> None:
        """The methods an ExecutionHook subclass leaves alone do nothing and raise nothing."""
        seen: list[tuple[str, Any]] = []

        class FallbackWatcher(ExecutionHook):
            def on_fallback_error(self, command: Command[Any], error: BaseException) -> None:
                seen.append(("fallback_error", error))

        hystrixpy.register_hook(FallbackWatcher())
        cause = LookupError("cache empty")
        command = probe("PartialSubclass")(run=raises(ValueError("boom")), fallback=raises(cause))

        with pytest.raises(HystrixRuntimeError):
            command.execute()

        assert seen == [("fallback_error", cause)]

    def test_bare_execution_hook_does_nothing(self, caplog: pytest.LogCaptureFixture) -> None:
        """A plain ExecutionHook() is a valid hook whose notifications change nothing."""
        caplog.set_level(logging.ERROR, logger="hystrixpy")
        hystrixpy.register_hook(ExecutionHook())
        command_class = probe("BareHook")

        assert command_class().execute() == "value"
        assert command_class(run=raises(ValueError("boom"))).execute() == "fallback"
        with pytest.raises(HystrixRuntimeError):
            command_class(
                run=raises(ValueError("boom")), fallback=raises(ValueError("again"))
            ).execute()

        assert hook_failures(caplog) == []

    def test_plain_object_with_some_methods(self, caplog: pytest.LogCaptureFixture) -> None:
        """An object that is no ExecutionHook but has some hook methods gets just those."""
        caplog.set_level(logging.ERROR, logger="hystrixpy")
        seen: list[tuple[Any, ...]] = []

        class Outcomes:
            def on_success(self, command: Command[Any]) -> None:
                seen.append(("success", command))

            def on_error(
                self, command: Command[Any], failure_type: FailureType, error: BaseException
            ) -> None:
                seen.append(("error", command, failure_type, error))

        hook = Outcomes()
        assert hystrixpy.register_hook(hook) is hook
        command_class = probe("PlainObject")
        cause = ValueError("boom")
        succeeding = command_class()
        failing = command_class(run=raises(cause))

        assert succeeding.execute() == "value"
        assert failing.execute() == "fallback"

        assert seen == [
            ("success", succeeding),
            ("error", failing, F.COMMAND_EXCEPTION, cause),
        ]
        assert hook_failures(caplog) == []

    def test_callable_object_with_hook_methods_is_used_as_an_object(self) -> None:
        """An object with hook methods gets its methods called, never its __call__."""
        seen: list[str] = []

        class Both:
            def __call__(self, hook_event: HookEvent) -> None:
                seen.append(f"called {hook_event.kind}")

            def on_start(self, command: Command[Any]) -> None:
                seen.append("on_start")

        hystrixpy.register_hook(Both())

        assert probe("CallableObject")().execute() == "value"

        assert seen == ["on_start"]

    def test_hooks_are_called_in_registration_order(self) -> None:
        """Every notification goes to each hook in the order they were registered."""
        log: list[tuple[str, str]] = []
        hystrixpy.register_hook(lambda hook_event: log.append(("first", hook_event.kind)))
        hystrixpy.register_hook(lambda hook_event: log.append(("second", hook_event.kind)))

        assert probe("Ordered")().execute() == "value"

        assert log == [
            ("first", "on_start"),
            ("second", "on_start"),
            ("first", "on_event"),
            ("second", "on_event"),
            ("first", "on_success"),
            ("second", "on_success"),
        ]

    @pytest.mark.parametrize(
        "not_a_hook",
        [object(), 42, None, "on_start", type("Attrs", (), {"on_start": "not a method"})()],
        ids=["object", "int", "none", "str", "non-callable-attribute"],
    )
    def test_neither_callable_nor_hook_is_a_type_error(self, not_a_hook: object) -> None:
        """Registering something that is neither callable nor has hook methods is a TypeError."""
        with pytest.raises(TypeError, match="a hook must be callable or have one of on_start"):
            hystrixpy.register_hook(not_a_hook)

        with pytest.raises(ValueError, match="is not a registered hook"):
            hystrixpy.unregister_hook(not_a_hook)

    def test_unregister_stops_notifications(self) -> None:
        """After unregister_hook() a hook hears nothing more; the other hooks still do."""
        leaving, staying = Recorder(), Recorder()
        hystrixpy.register_hook(leaving)
        hystrixpy.register_hook(staying)
        command_class = probe("Unregistered")
        before = command_class()
        assert before.execute() == "value"

        hystrixpy.unregister_hook(leaving)
        after = command_class()
        assert after.execute() == "value"

        assert leaving.steps(before) == [START, event(E.SUCCESS), SUCCESS]
        assert leaving.steps(after) == []
        assert staying.steps(after) == [START, event(E.SUCCESS), SUCCESS]

    def test_unregister_stops_a_callable_hook(self) -> None:
        """A plain callable is unregistered with the object register_hook() returned."""
        seen: list[str] = []
        hook = hystrixpy.register_hook(lambda hook_event: seen.append(hook_event.kind))
        command_class = probe("UnregisteredCallable")
        assert command_class().execute() == "value"

        hystrixpy.unregister_hook(hook)
        assert command_class().execute() == "value"

        assert seen == ["on_start", "on_event", "on_success"]

    def test_a_bound_method_is_unregistered_by_naming_it_again(self) -> None:
        """unregister_hook(obj.method) undoes register_hook(obj.method), a new object each time."""
        seen: list[str] = []

        class Listener:
            def hear(self, hook_event: HookEvent) -> None:
                seen.append(hook_event.kind)

        listener = Listener()
        hystrixpy.register_hook(listener.hear)
        hystrixpy.unregister_hook(listener.hear)

        assert probe("BoundMethod")().execute() == "value"
        assert seen == []

    def test_unregistering_an_unknown_hook_is_a_value_error(self) -> None:
        """unregister_hook() of a hook never registered raises ValueError."""
        with pytest.raises(ValueError, match="is not a registered hook"):
            hystrixpy.unregister_hook(Recorder())

    def test_unregistering_twice_is_a_value_error(self) -> None:
        """A hook already unregistered cannot be unregistered again."""
        hook = Recorder()
        hystrixpy.register_hook(hook)
        hystrixpy.unregister_hook(hook)

        with pytest.raises(ValueError, match="is not a registered hook"):
            hystrixpy.unregister_hook(hook)

    def test_reset_removes_hooks(self) -> None:
        """hystrixpy.reset() forgets every hook."""
        hook = Recorder()
        hystrixpy.register_hook(hook)
        assert probe("BeforeReset")().execute() == "value"
        assert hook.calls != []

        hystrixpy.reset()
        hook.calls.clear()
        assert probe("AfterReset")().execute() == "value"

        assert hook.calls == []
        with pytest.raises(ValueError, match="is not a registered hook"):
            hystrixpy.unregister_hook(hook)


# -- what a plain callable receives -------------------------------------------


class TestHookEvent:
    def test_success(self) -> None:
        """A callable hook gets one HookEvent per notification, with its command and key."""
        seen: list[HookEvent] = []
        hystrixpy.register_hook(seen.append)
        command = probe("EventSuccess")()

        assert command.execute() == "value"

        assert seen == [
            HookEvent("on_start", "EventSuccess", command),
            HookEvent("on_event", "EventSuccess", command, event=E.SUCCESS),
            HookEvent("on_success", "EventSuccess", command),
        ]

    def test_unset_fields_are_none(self) -> None:
        """Fields that do not apply to a notification are None."""
        seen: list[HookEvent] = []
        hystrixpy.register_hook(seen.append)

        assert probe("EventNone")().execute() == "value"

        start = seen[0]
        assert start.kind == "on_start"
        assert start.failure_type is None
        assert start.error is None
        assert start.event is None
        assert start.old_state is None
        assert start.new_state is None

    def test_failure_and_fallback_failure(self) -> None:
        """on_error carries the failure type and error; on_fallback_error the fallback's error."""
        seen: list[HookEvent] = []
        hystrixpy.register_hook(seen.append)
        cause = ValueError("boom")
        fallback_cause = LookupError("cache empty")
        command = probe("EventFailure")(run=raises(cause), fallback=raises(fallback_cause))

        with pytest.raises(HystrixRuntimeError):
            command.execute()

        key = "EventFailure"
        assert seen == [
            HookEvent("on_start", key, command),
            HookEvent("on_event", key, command, event=E.FAILURE),
            HookEvent("on_error", key, command, F.COMMAND_EXCEPTION, cause),
            HookEvent("on_fallback_start", key, command),
            HookEvent("on_fallback_error", key, command, error=fallback_cause),
            HookEvent("on_event", key, command, event=E.FALLBACK_FAILURE),
            HookEvent("on_event", key, command, event=E.EXCEPTION_THROWN),
        ]

    def test_fallback_success(self) -> None:
        """A failure that falls back gives on_fallback_start and on_fallback_success events."""
        seen: list[HookEvent] = []
        hystrixpy.register_hook(seen.append)
        cause = ConnectionError("refused")
        command = probe("EventFallback")(run=raises(cause))

        assert command.execute() == "fallback"

        key = "EventFallback"
        assert seen == [
            HookEvent("on_start", key, command),
            HookEvent("on_event", key, command, event=E.FAILURE),
            HookEvent("on_error", key, command, F.COMMAND_EXCEPTION, cause),
            HookEvent("on_fallback_start", key, command),
            HookEvent("on_event", key, command, event=E.FALLBACK_SUCCESS),
            HookEvent("on_fallback_success", key, command),
        ]

    def test_command_key_is_the_instances(self) -> None:
        """command_key is the key the instance runs under, even when given per instance."""
        seen: list[HookEvent] = []
        hystrixpy.register_hook(seen.append)
        command = probe("EventKeyClass")(command_key="PerInstanceKey")

        assert command.execute() == "value"

        assert {e.command_key for e in seen} == {"PerInstanceKey"}
        assert all(e.command is command for e in seen)

    def test_circuit_state_change(self, fake_clock: FakeClock) -> None:
        """A breaker transition reaches a callable as old and new state, with no command."""
        seen: list[HookEvent] = []
        hystrixpy.register_hook(seen.append)
        command_class = probe("EventCircuit", circuit_breaker_request_volume_threshold=2)

        for _ in range(2):
            assert command_class(run=raises(ValueError("down"))).execute() == "fallback"

        changes = [e for e in seen if e.kind == "on_circuit_state_change"]
        assert changes == [
            HookEvent("on_circuit_state_change", "EventCircuit", old_state=CLOSED, new_state=OPEN)
        ]
        assert changes[0].command is None

    def test_is_frozen(self) -> None:
        """A HookEvent cannot be changed by the hook that receives it."""
        seen: list[HookEvent] = []
        hystrixpy.register_hook(seen.append)
        assert probe("EventFrozen")().execute() == "value"

        with pytest.raises(dataclasses.FrozenInstanceError):
            seen[0].kind = "on_success"  # type: ignore[misc]


# -- the order of notifications -----------------------------------------------


class TestNotificationOrder:
    @BOTH_ISOLATIONS
    @BOTH_CALLS
    def test_success(
        self, isolation: IsolationStrategy, how: str, recorder: Recorder, fake_clock: FakeClock
    ) -> None:
        """A success is told as start, the SUCCESS event, then success."""
        command = probe("OrderSuccess", isolation=isolation)(run=returns("data"))

        assert call(command, how) == "data"

        assert recorder.steps(command) == [START, event(E.SUCCESS), SUCCESS]

    @BOTH_ISOLATIONS
    @BOTH_CALLS
    def test_failure_with_fallback_success(
        self, isolation: IsolationStrategy, how: str, recorder: Recorder, fake_clock: FakeClock
    ) -> None:
        """A failure that falls back is told as error (COMMAND_EXCEPTION), then the fallback."""
        cause = ValueError("boom")
        command = probe("OrderFailure", isolation=isolation)(run=raises(cause))

        assert call(command, how) == "fallback"

        assert recorder.steps(command) == fell_back(E.FAILURE, F.COMMAND_EXCEPTION, cause)

    @BOTH_ISOLATIONS
    @BOTH_CALLS
    def test_fallback_failure(
        self, isolation: IsolationStrategy, how: str, recorder: Recorder, fake_clock: FakeClock
    ) -> None:
        """A failing fallback is told as fallback_error with its error, then the final events."""
        cause = ValueError("boom")
        fallback_cause = LookupError("cache empty")
        command = probe("OrderFallbackFails", isolation=isolation)(
            run=raises(cause), fallback=raises(fallback_cause)
        )

        with pytest.raises(HystrixRuntimeError) as raised:
            call(command, how)

        assert raised.value.fallback_exception is fallback_cause
        assert recorder.steps(command) == [
            START,
            event(E.FAILURE),
            error(F.COMMAND_EXCEPTION, cause),
            FALLBACK_START,
            fallback_error(fallback_cause),
            event(E.FALLBACK_FAILURE),
            event(E.EXCEPTION_THROWN),
        ]

    @BOTH_ISOLATIONS
    @BOTH_CALLS
    def test_missing_fallback(
        self, isolation: IsolationStrategy, how: str, recorder: Recorder, fake_clock: FakeClock
    ) -> None:
        """Without get_fallback() there is an error but no fallback notification."""
        cause = ValueError("boom")
        command = probe("OrderNoFallback", isolation=isolation, fallback=False)(run=raises(cause))

        with pytest.raises(HystrixRuntimeError):
            call(command, how)

        assert recorder.steps(command) == [
            START,
            event(E.FAILURE),
            error(F.COMMAND_EXCEPTION, cause),
            event(E.FALLBACK_MISSING),
            event(E.EXCEPTION_THROWN),
        ]

    @BOTH_CALLS
    def test_timeout_in_semaphore_isolation(
        self, how: str, recorder: Recorder, fake_clock: FakeClock
    ) -> None:
        """A run() that overran its deadline is told as a TIMEOUT error, never as a success."""
        command = probe("OrderTimeoutSemaphore", execution_timeout_ms=100)(
            run=overruns(fake_clock, 0.2, returns("late"))
        )

        assert call(command, how) == "fallback"

        steps = recorder.steps(command)
        assert steps == fell_back(E.TIMEOUT, F.TIMEOUT, AnInstance(CommandTimeoutError))
        assert str(steps[2][2]) == "OrderTimeoutSemaphore did not finish within 100 ms"

    def test_timeout_in_thread_isolation(self, recorder: Recorder, fake_clock: FakeClock) -> None:
        """A worker still busy at the deadline gives TIMEOUT; its late result tells nothing more."""
        gate = Gate()
        command = probe("OrderTimeoutThread", isolation=THREAD, execution_timeout_ms=100)(
            run=gate.hold(returns("late"))
        )
        expected = fell_back(E.TIMEOUT, F.TIMEOUT, AnInstance(CommandTimeoutError))
        try:
            outcome = call_in_thread(command.execute)
            assert gate.entered.wait(5)
            fake_clock.advance(0.2)
            assert outcome.result(5) == "fallback"
            assert recorder.steps(command) == expected
        finally:
            gate.open()
            finish_pool("OrderTimeoutThread")

        assert command.ran
        assert recorder.steps(command) == expected

    def test_timeout_of_a_queued_command(self, recorder: Recorder, fake_clock: FakeClock) -> None:
        """A queued command's deadline is told as a TIMEOUT error when the timer fires."""
        gate = Gate()
        command = probe("OrderTimeoutQueued", isolation=THREAD, execution_timeout_ms=100)(
            run=gate.hold(returns("late"))
        )
        expected = fell_back(E.TIMEOUT, F.TIMEOUT, AnInstance(CommandTimeoutError))
        try:
            future = command.queue()
            assert gate.entered.wait(5)
            fake_clock.advance(0.2)
            assert future.result(5) == "fallback"
            assert recorder.steps(command) == expected
        finally:
            gate.open()
            finish_pool("OrderTimeoutQueued")

        assert recorder.steps(command) == expected

    @BOTH_ISOLATIONS
    @BOTH_CALLS
    def test_short_circuit(
        self, isolation: IsolationStrategy, how: str, recorder: Recorder, fake_clock: FakeClock
    ) -> None:
        """A forced-open circuit is told as a SHORTCIRCUIT error, with no breaker transition."""
        command = probe("OrderShortCircuit", isolation=isolation, circuit_breaker_force_open=True)()

        assert call(command, how) == "fallback"

        assert not command.ran
        assert recorder.steps(command) == fell_back(
            E.SHORT_CIRCUITED, F.SHORTCIRCUIT, AnInstance(ShortCircuitedError)
        )
        assert recorder.circuit_changes() == []

    @BOTH_CALLS
    def test_semaphore_rejection(self, how: str, recorder: Recorder) -> None:
        """A full execution semaphore is told as a REJECTED_SEMAPHORE_EXECUTION error."""
        command = probe(
            "OrderSemaphoreRejected", execution_isolation_semaphore_max_concurrent_requests=0
        )()

        assert call(command, how) == "fallback"

        assert not command.ran
        assert recorder.steps(command) == fell_back(
            E.SEMAPHORE_REJECTED, F.REJECTED_SEMAPHORE_EXECUTION, AnInstance(RejectedError)
        )

    @BOTH_CALLS
    def test_thread_pool_rejection(
        self, how: str, recorder: Recorder, fake_clock: FakeClock
    ) -> None:
        """A full thread pool is told as a REJECTED_THREAD_EXECUTION error."""
        gate = Gate()
        command_class = probe(
            "OrderPoolRejected", isolation=THREAD, pool=ThreadPoolProperties(core_size=1)
        )
        holder = command_class(run=gate.hold())
        rejected = command_class()
        held = holder.queue()
        try:
            assert gate.entered.wait(5)
            assert call(rejected, how) == "fallback"
        finally:
            gate.open()
            finish_pool("OrderPoolRejected")

        assert held.result(5) == "value"
        assert not rejected.ran
        assert recorder.steps(rejected) == fell_back(
            E.THREAD_POOL_REJECTED, F.REJECTED_THREAD_EXECUTION, AnInstance(RejectedError)
        )
        assert recorder.steps(holder) == [START, event(E.SUCCESS), SUCCESS]

    @BOTH_ISOLATIONS
    @BOTH_CALLS
    def test_bad_request(
        self, isolation: IsolationStrategy, how: str, recorder: Recorder, fake_clock: FakeClock
    ) -> None:
        """BadRequestError is told as a BAD_REQUEST_EXCEPTION error with no fallback."""
        cause = BadRequestError("no such user")
        command = probe("OrderBadRequest", isolation=isolation)(run=raises(cause))

        with pytest.raises(BadRequestError):
            call(command, how)

        assert recorder.steps(command) == [
            START,
            event(E.BAD_REQUEST),
            event(E.EXCEPTION_THROWN),
            error(F.BAD_REQUEST_EXCEPTION, cause),
        ]


# -- on_event: the per-event marks --------------------------------------------


def _scenario(
    name: str,
    isolation: IsolationStrategy,
    expected: list[EventType],
    *,
    run: Behaviour = _VALUE,
    fallback: Behaviour = _FALLBACK,
    raised: type[BaseException] | None = None,
    has_fallback: bool = True,
    **settings: Any,
) -> Any:
    return pytest.param(
        isolation,
        run,
        fallback,
        has_fallback,
        settings,
        raised,
        expected,
        id=f"{name}-{isolation.name.lower()}",
    )


_BOOM = raises(ValueError("boom"))


def _overrun(command: Probe) -> str:
    """A run() that takes 0.2 s of the installed fake clock, then returns."""
    fake = clock.get_clock()
    assert isinstance(fake, FakeClock)
    fake.advance(0.2)
    return "late"


_ON_EVENT_SCENARIOS = [
    scenario
    for isolation in (THREAD, SEMAPHORE)
    for scenario in (
        _scenario("success", isolation, [E.SUCCESS]),
        _scenario("failure", isolation, [E.FAILURE, E.FALLBACK_SUCCESS], run=_BOOM),
        _scenario(
            "fallback-failure",
            isolation,
            [E.FAILURE, E.FALLBACK_FAILURE, E.EXCEPTION_THROWN],
            run=_BOOM,
            fallback=raises(LookupError("empty")),
            raised=HystrixRuntimeError,
        ),
        _scenario(
            "fallback-missing",
            isolation,
            [E.FAILURE, E.FALLBACK_MISSING, E.EXCEPTION_THROWN],
            run=_BOOM,
            has_fallback=False,
            raised=HystrixRuntimeError,
        ),
        _scenario(
            "fallback-disabled",
            isolation,
            [E.FAILURE, E.FALLBACK_DISABLED, E.EXCEPTION_THROWN],
            run=_BOOM,
            raised=HystrixRuntimeError,
            fallback_enabled=False,
        ),
        _scenario(
            "fallback-rejected",
            isolation,
            [E.FAILURE, E.FALLBACK_REJECTION, E.EXCEPTION_THROWN],
            run=_BOOM,
            raised=HystrixRuntimeError,
            fallback_isolation_semaphore_max_concurrent_requests=0,
        ),
        _scenario(
            "bad-request",
            isolation,
            [E.BAD_REQUEST, E.EXCEPTION_THROWN],
            run=raises(BadRequestError("bad")),
            raised=BadRequestError,
        ),
        _scenario(
            "short-circuited",
            isolation,
            [E.SHORT_CIRCUITED, E.FALLBACK_SUCCESS],
            circuit_breaker_force_open=True,
        ),
        _scenario(
            "cancelled",
            isolation,
            [E.CANCELLED],
            run=raises(KeyboardInterrupt()),
            raised=KeyboardInterrupt,
        ),
    )
] + [
    _scenario(
        "semaphore-rejected",
        SEMAPHORE,
        [E.SEMAPHORE_REJECTED, E.FALLBACK_SUCCESS],
        execution_isolation_semaphore_max_concurrent_requests=0,
    ),
    _scenario(
        "timeout",
        SEMAPHORE,
        [E.TIMEOUT, E.FALLBACK_SUCCESS],
        run=_overrun,
        execution_timeout_ms=100,
    ),
]


class TestOnEvent:
    @pytest.mark.parametrize(
        ("isolation", "run", "fallback", "has_fallback", "settings", "raised", "expected"),
        _ON_EVENT_SCENARIOS,
    )
    def test_each_execution_event_in_order(
        self,
        isolation: IsolationStrategy,
        run: Behaviour,
        fallback: Behaviour,
        has_fallback: bool,
        settings: dict[str, Any],
        raised: type[BaseException] | None,
        expected: list[EventType],
        recorder: Recorder,
        fake_clock: FakeClock,
    ) -> None:
        """on_event is told each of the execution's events, in the order it records them."""
        command = probe("OnEvent", isolation=isolation, fallback=has_fallback, **settings)(
            run=run, fallback=fallback
        )

        if raised is None:
            command.execute()
        else:
            with pytest.raises(raised):
                command.execute()

        assert command.execution_events == expected
        assert recorder.events(command) == expected

    def test_events_of_separate_commands_are_kept_apart(self, recorder: Recorder) -> None:
        """Each on_event names the command whose event it is."""
        command_class = probe("OnEventApart")
        first = command_class()
        second = command_class(run=_BOOM)

        assert first.execute() == "value"
        assert second.execute() == "fallback"

        assert recorder.events(first) == [E.SUCCESS]
        assert recorder.events(second) == [E.FAILURE, E.FALLBACK_SUCCESS]

    def test_object_with_only_on_event(self) -> None:
        """An object with only on_event sees the events and nothing else."""
        seen: list[tuple[str, EventType]] = []

        class Marks:
            def on_event(self, command: Command[Any], event: EventType) -> None:
                seen.append((command.command_key, event))

        hystrixpy.register_hook(Marks())
        assert probe("OnlyMarks")(run=_BOOM).execute() == "fallback"

        assert seen == [("OnlyMarks", E.FAILURE), ("OnlyMarks", E.FALLBACK_SUCCESS)]


# -- breaker transitions ------------------------------------------------------


class TestCircuitStateChange:
    def test_opening(self, recorder: Recorder, fake_clock: FakeClock) -> None:
        """Failures past the volume threshold open the breaker, told before that failure's error."""
        command_class = probe("CircuitOpens", circuit_breaker_request_volume_threshold=2)
        first = command_class(run=_BOOM)
        assert first.execute() == "fallback"
        assert recorder.circuit_changes() == []

        cause = ValueError("down again")
        second = command_class(run=raises(cause))
        assert second.execute() == "fallback"

        assert recorder.circuit_changes() == [("CircuitOpens", CLOSED, OPEN)]
        assert recorder.steps(second) == [
            START,
            event(E.FAILURE),
            circuit(CLOSED, OPEN),
            error(F.COMMAND_EXCEPTION, cause),
            FALLBACK_START,
            event(E.FALLBACK_SUCCESS),
            FALLBACK_SUCCESS,
        ]

    def test_short_circuits_while_open_tell_no_transition(
        self, recorder: Recorder, fake_clock: FakeClock
    ) -> None:
        """While the breaker stays open, short-circuited executions report no more transitions."""
        command_class = probe("CircuitStaysOpen", circuit_breaker_request_volume_threshold=2)
        for _ in range(2):
            assert command_class(run=_BOOM).execute() == "fallback"

        short_circuited = [command_class() for _ in range(3)]
        for command in short_circuited:
            assert command.execute() == "fallback"

        assert recorder.circuit_changes() == [("CircuitStaysOpen", CLOSED, OPEN)]
        assert all(
            recorder.events(c) == [E.SHORT_CIRCUITED, E.FALLBACK_SUCCESS] for c in short_circuited
        )

    def test_half_open_then_closed(self, recorder: Recorder, fake_clock: FakeClock) -> None:
        """After the sleep window the trial is told HALF_OPEN, and CLOSED when it succeeds."""
        command_class = probe(
            "CircuitRecovers",
            circuit_breaker_request_volume_threshold=2,
            circuit_breaker_sleep_window_ms=1000,
        )
        for _ in range(2):
            assert command_class(run=_BOOM).execute() == "fallback"
        assert command_class().execute() == "fallback"  # short-circuited: the window is not over

        fake_clock.advance(1.5)
        recorder.calls.clear()
        trial = command_class(run=returns("back"))
        assert trial.execute() == "back"

        assert recorder.steps(trial) == [
            START,
            circuit(OPEN, HALF_OPEN),
            event(E.SUCCESS),
            circuit(HALF_OPEN, CLOSED),
            SUCCESS,
        ]
        assert recorder.circuit_changes() == [
            ("CircuitRecovers", OPEN, HALF_OPEN),
            ("CircuitRecovers", HALF_OPEN, CLOSED),
        ]
        assert hystrixpy.circuit_breaker("CircuitRecovers").state is CLOSED

    def test_failed_trial_reopens(self, recorder: Recorder, fake_clock: FakeClock) -> None:
        """A trial that fails is told HALF_OPEN then OPEN again."""
        command_class = probe(
            "CircuitReopens",
            circuit_breaker_request_volume_threshold=2,
            circuit_breaker_sleep_window_ms=1000,
        )
        for _ in range(2):
            assert command_class(run=_BOOM).execute() == "fallback"

        fake_clock.advance(1.5)
        recorder.calls.clear()
        cause = ValueError("still down")
        trial = command_class(run=raises(cause))
        assert trial.execute() == "fallback"

        assert recorder.steps(trial) == [
            START,
            circuit(OPEN, HALF_OPEN),
            event(E.FAILURE),
            circuit(HALF_OPEN, OPEN),
            error(F.COMMAND_EXCEPTION, cause),
            FALLBACK_START,
            event(E.FALLBACK_SUCCESS),
            FALLBACK_SUCCESS,
        ]
        assert hystrixpy.circuit_breaker("CircuitReopens").state is OPEN

    def test_object_with_only_circuit_state_change(self, fake_clock: FakeClock) -> None:
        """An object with only on_circuit_state_change hears the breaker's full cycle."""
        seen: list[tuple[str, CircuitState, CircuitState]] = []

        class BreakerWatcher:
            def on_circuit_state_change(
                self, command_key: str, old: CircuitState, new: CircuitState
            ) -> None:
                seen.append((command_key, old, new))

        hystrixpy.register_hook(BreakerWatcher())
        command_class = probe(
            "CircuitWatched",
            circuit_breaker_request_volume_threshold=2,
            circuit_breaker_sleep_window_ms=1000,
        )
        for _ in range(2):
            assert command_class(run=_BOOM).execute() == "fallback"
        fake_clock.advance(1.5)
        assert command_class().execute() == "value"

        assert seen == [
            ("CircuitWatched", CLOSED, OPEN),
            ("CircuitWatched", OPEN, HALF_OPEN),
            ("CircuitWatched", HALF_OPEN, CLOSED),
        ]


# -- hooks that raise ---------------------------------------------------------


class Broken(ExecutionHook):
    """A hook whose ``failing`` notification raises ``error``."""

    def __init__(self, failing: str, error: BaseException) -> None:
        self.failing = failing
        self.error = error

    def _maybe_raise(self, method: str) -> None:
        if method == self.failing:
            raise self.error

    def on_start(self, command: Command[Any]) -> None:
        self._maybe_raise("on_start")

    def on_success(self, command: Command[Any]) -> None:
        self._maybe_raise("on_success")

    def on_fallback_start(self, command: Command[Any]) -> None:
        self._maybe_raise("on_fallback_start")

    def __repr__(self) -> str:
        return f"<Broken {self.failing}>"


class TestFailingHooks:
    def test_exception_is_logged_and_the_command_returns(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A hook's Exception is logged as hook_failed at ERROR; the command returns its value."""
        caplog.set_level(logging.ERROR, logger="hystrixpy")
        broken = Broken("on_start", RuntimeError("hook bug"))
        hystrixpy.register_hook(broken)
        command = probe("HookFails")()

        assert command.execute() == "value"

        [record] = hook_failures(caplog)
        assert record.levelno == logging.ERROR
        assert record.hystrixpy_event == "hook_failed"  # type: ignore[attr-defined]
        assert record.hystrixpy == {  # type: ignore[attr-defined]
            "hook": "<Broken on_start>",
            "notification": "on_start",
            "error": "RuntimeError('hook bug')",
        }
        assert command.execution_events == [E.SUCCESS]
        assert command.is_successful_execution

    def test_other_hooks_are_still_called(self, caplog: pytest.LogCaptureFixture) -> None:
        """A hook registered after a failing one still gets every notification."""
        caplog.set_level(logging.ERROR, logger="hystrixpy")
        hystrixpy.register_hook(Broken("on_start", RuntimeError("hook bug")))
        after = Recorder()
        hystrixpy.register_hook(after)
        command = probe("HookFailsOthersCalled")()

        assert command.execute() == "value"

        assert after.steps(command) == [START, event(E.SUCCESS), SUCCESS]
        assert len(hook_failures(caplog)) == 1

    def test_failing_fallback_hook_keeps_the_fallback(
        self, caplog: pytest.LogCaptureFixture, recorder: Recorder
    ) -> None:
        """A hook raising in on_fallback_start does not stop the fallback from answering."""
        caplog.set_level(logging.ERROR, logger="hystrixpy")
        hystrixpy.register_hook(Broken("on_fallback_start", ValueError("hook bug")))
        cause = ValueError("boom")
        command = probe("FallbackHookFails")(run=raises(cause))

        assert command.execute() == "fallback"

        assert recorder.steps(command) == fell_back(E.FAILURE, F.COMMAND_EXCEPTION, cause)
        assert [r.hystrixpy["notification"] for r in hook_failures(caplog)] == [  # type: ignore[attr-defined]
            "on_fallback_start"
        ]

    def test_callable_that_always_raises(self, caplog: pytest.LogCaptureFixture) -> None:
        """A callable raising at every notification is logged once per notification, harmlessly."""
        caplog.set_level(logging.ERROR, logger="hystrixpy")

        def explode(hook_event: HookEvent) -> None:
            raise ValueError(hook_event.kind)

        hystrixpy.register_hook(explode)
        command = probe("AlwaysRaises")(run=_BOOM)

        assert command.execute() == "fallback"

        failures = [record.hystrixpy for record in hook_failures(caplog)]  # type: ignore[attr-defined]
        notifications = [
            "on_start",
            "on_event",
            "on_error",
            "on_fallback_start",
            "on_event",
            "on_fallback_success",
        ]
        assert failures == [
            {"hook": repr(explode), "notification": name, "error": repr(ValueError(name))}
            for name in notifications
        ]
        assert command.execution_events == [E.FAILURE, E.FALLBACK_SUCCESS]

    def test_exception_in_a_hook_on_a_worker_thread(
        self, caplog: pytest.LogCaptureFixture, fake_clock: FakeClock
    ) -> None:
        """A hook failing on a pool worker is logged there and the future still gets its value."""
        caplog.set_level(logging.ERROR, logger="hystrixpy")
        hystrixpy.register_hook(Broken("on_success", RuntimeError("hook bug")))
        command = probe("WorkerHookFails", isolation=THREAD)()

        assert command.queue().result(5) == "value"

        [record] = hook_failures(caplog)
        assert record.hystrixpy["notification"] == "on_success"  # type: ignore[attr-defined]
        assert record.threadName == "hystrix-WorkerHookFails-1"
        assert command.execution_events == [E.SUCCESS]

    def test_exception_in_on_error_of_a_bad_request(self, caplog: pytest.LogCaptureFixture) -> None:
        """A hook failing on a bad request's on_error leaves the BadRequestError as raised."""
        caplog.set_level(logging.ERROR, logger="hystrixpy")

        def on_error_fails(hook_event: HookEvent) -> None:
            if hook_event.kind == "on_error":
                raise RuntimeError("hook bug")

        hystrixpy.register_hook(on_error_fails)
        cause = BadRequestError("bad input")

        with pytest.raises(BadRequestError) as raised:
            probe("BadRequestHookFails")(run=raises(cause)).execute()

        assert raised.value is cause
        assert [r.hystrixpy["notification"] for r in hook_failures(caplog)] == ["on_error"]  # type: ignore[attr-defined]

    @pytest.mark.parametrize("interrupt", [KeyboardInterrupt, SystemExit])
    def test_interrupt_from_on_start_propagates(
        self, interrupt: type[BaseException], caplog: pytest.LogCaptureFixture
    ) -> None:
        """KeyboardInterrupt or SystemExit from on_start reaches the caller before run() starts."""
        caplog.set_level(logging.ERROR, logger="hystrixpy")
        raised_error = interrupt()
        hystrixpy.register_hook(Broken("on_start", raised_error))
        command = probe("InterruptOnStart")()

        with pytest.raises(interrupt) as raised:
            command.execute()

        assert raised.value is raised_error
        assert not command.ran
        assert hook_failures(caplog) == []

    @pytest.mark.parametrize("interrupt", [KeyboardInterrupt, SystemExit])
    def test_interrupt_from_on_success_propagates(
        self, interrupt: type[BaseException], caplog: pytest.LogCaptureFixture
    ) -> None:
        """KeyboardInterrupt or SystemExit from on_success reaches the caller of execute()."""
        caplog.set_level(logging.ERROR, logger="hystrixpy")
        raised_error = interrupt()
        hystrixpy.register_hook(Broken("on_success", raised_error))
        command = probe("InterruptOnSuccess")()

        with pytest.raises(interrupt) as raised:
            command.execute()

        assert raised.value is raised_error
        assert command.ran
        assert hook_failures(caplog) == []

    def test_interrupt_from_a_hook_on_a_worker_reaches_the_future(
        self, fake_clock: FakeClock
    ) -> None:
        """A KeyboardInterrupt from a hook on a pool worker is raised by the future's result()."""
        raised_error = KeyboardInterrupt()
        hystrixpy.register_hook(Broken("on_success", raised_error))
        command = probe("InterruptOnWorker", isolation=THREAD)()

        future = command.queue()

        with pytest.raises(KeyboardInterrupt) as raised:
            future.result(5)
        assert raised.value is raised_error


# -- contextvars --------------------------------------------------------------


class ContextRecorder:
    """A callable hook noting, per notification, REQUEST_ID and the thread it ran on."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.seen: list[tuple[str, str, str]] = []

    def __call__(self, hook_event: HookEvent) -> None:
        with self._lock:
            self.seen.append((hook_event.kind, REQUEST_ID.get(), threading.current_thread().name))


@pytest.fixture
def context_recorder() -> ContextRecorder:
    """A ContextRecorder registered as a hook for the test."""
    hook = ContextRecorder()
    hystrixpy.register_hook(hook)
    return hook


class TestContextVars:
    @BOTH_ISOLATIONS
    @BOTH_CALLS
    @pytest.mark.parametrize("outcome", ["success", "fallback"])
    def test_hooks_see_the_callers_context(
        self,
        isolation: IsolationStrategy,
        how: str,
        outcome: str,
        context_recorder: ContextRecorder,
        fake_clock: FakeClock,
    ) -> None:
        """A ContextVar set before execute()/queue() is seen by every hook, on any thread."""
        name = f"Context{isolation.name.title()}{how.title()}{outcome.title()}"
        command_class = probe(name, isolation=isolation)
        command = command_class() if outcome == "success" else command_class(run=_BOOM)
        token = REQUEST_ID.set("req-42")
        try:
            result = call(command, how)
        finally:
            REQUEST_ID.reset(token)

        assert result == ("value" if outcome == "success" else "fallback")
        kinds = [kind for kind, _, _ in context_recorder.seen]
        if outcome == "success":
            assert kinds == ["on_start", "on_event", "on_success"]
        else:
            assert kinds == [
                "on_start",
                "on_event",
                "on_error",
                "on_fallback_start",
                "on_event",
                "on_fallback_success",
            ]
        assert {request_id for _, request_id, _ in context_recorder.seen} == {"req-42"}
        caller = threading.current_thread().name
        on_worker = isolation is THREAD and how == "queue"
        expected_thread = f"hystrix-{name}-1" if on_worker else caller
        assert context_recorder.seen[0][2] == caller
        assert {thread for _, _, thread in context_recorder.seen[1:]} == {expected_thread}

    def test_hooks_on_the_timer_thread_see_the_callers_context(
        self, context_recorder: ContextRecorder, fake_clock: FakeClock
    ) -> None:
        """The timeout of a queued command is told on the timer thread, in the caller's context."""
        gate = Gate()
        command = probe("ContextTimer", isolation=THREAD, execution_timeout_ms=100)(run=gate.hold())
        token = REQUEST_ID.set("req-timer")
        try:
            future = command.queue()
        finally:
            REQUEST_ID.reset(token)
        try:
            assert gate.entered.wait(5)
            fake_clock.advance(0.2)
            assert future.result(5) == "fallback"
        finally:
            gate.open()
            finish_pool("ContextTimer")

        # The deadline's fallback runs on the deadline pool, never on the timer thread itself.
        deadline_worker = context_recorder.seen[1][2]
        assert deadline_worker.startswith("hystrix-HystrixTimeouts-")
        assert context_recorder.seen == [
            ("on_start", "req-timer", threading.current_thread().name),
            ("on_event", "req-timer", deadline_worker),
            ("on_error", "req-timer", deadline_worker),
            ("on_fallback_start", "req-timer", deadline_worker),
            ("on_event", "req-timer", deadline_worker),
            ("on_fallback_success", "req-timer", deadline_worker),
        ]

    def test_each_execution_keeps_its_own_context(
        self, context_recorder: ContextRecorder, fake_clock: FakeClock
    ) -> None:
        """Commands queued under different values each have their hooks see their own value."""
        command_class = probe("ContextPerCommand", isolation=THREAD)
        futures = []
        for request_id in ("req-a", "req-b"):
            token = REQUEST_ID.set(request_id)
            try:
                futures.append(command_class(command_key=f"Context-{request_id}").queue())
            finally:
                REQUEST_ID.reset(token)

        assert [future.result(5) for future in futures] == ["value", "value"]

        by_request: dict[str, list[str]] = {}
        for kind, request_id, _ in context_recorder.seen:
            by_request.setdefault(request_id, []).append(kind)
        assert by_request == {
            "req-a": ["on_start", "on_event", "on_success"],
            "req-b": ["on_start", "on_event", "on_success"],
        }
