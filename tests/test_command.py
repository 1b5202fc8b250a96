"""Tests for hystrixpy.command: defining commands, their keys, and what they report."""

from __future__ import annotations

import threading
from typing import Any
from unittest import mock

import pytest

import hystrixpy
from hystrixpy import (
    BadRequestError,
    Command,
    CommandProperties,
    EventType,
    HystrixRuntimeError,
    IsolationStrategy,
    NoOpCircuitBreaker,
    ThreadPoolProperties,
)
from hystrixpy.testing import FakeClock

THREAD = IsolationStrategy.THREAD
SEMAPHORE = IsolationStrategy.SEMAPHORE
E = EventType


class Greet(Command[str]):
    """A plain command: returns a greeting, falls back to a default one."""

    group_key = "Greetings"

    def __init__(self, name: str = "world", *, fail: BaseException | None = None) -> None:
        super().__init__()
        self.name = name
        self.fail = fail

    def run(self) -> str:
        if self.fail is not None:
            raise self.fail
        return f"hello {self.name}"

    def get_fallback(self) -> str:
        return "hello, whoever you are"


class GreetOnCaller(Greet):
    """The same command in SEMAPHORE isolation."""

    properties = CommandProperties(execution_isolation_strategy=SEMAPHORE)


class Lookup(Command[str]):
    """A command whose keys are chosen per instance, by region."""

    group_key = "Lookups"
    properties = CommandProperties(
        circuit_breaker_request_volume_threshold=1,
        execution_isolation_strategy=THREAD,
    )

    def __init__(self, region: str, *, fail: bool = False) -> None:
        super().__init__(command_key=f"Lookup{region}", thread_pool_key=f"LookupPool{region}")
        self.region = region
        self.fail = fail
        self.thread_name = ""

    def run(self) -> str:
        self.thread_name = threading.current_thread().name
        if self.fail:
            raise ConnectionError(f"{self.region} is down")
        return f"found in {self.region}"

    def get_fallback(self) -> str:
        return "not found"


class Forgetful(Command[str]):
    """A command whose __init__ does not call super().__init__()."""

    group_key = "Forgetful"

    def __init__(self, name: str) -> None:
        self.name = name

    def run(self) -> str:
        return f"hello {self.name}"


def introspection(command: Command[Any]) -> dict[str, object]:
    """Every attribute a command reports about its execution."""
    return {
        "execution_events": command.execution_events,
        "is_successful_execution": command.is_successful_execution,
        "is_failed_execution": command.is_failed_execution,
        "failed_execution_exception": command.failed_execution_exception,
        "is_response_from_fallback": command.is_response_from_fallback,
        "is_response_timed_out": command.is_response_timed_out,
        "is_response_short_circuited": command.is_response_short_circuited,
        "is_response_rejected": command.is_response_rejected,
        "is_response_thread_pool_rejected": command.is_response_thread_pool_rejected,
        "is_response_semaphore_rejected": command.is_response_semaphore_rejected,
        "is_circuit_breaker_open": command.is_circuit_breaker_open,
        "is_executed_in_thread": command.is_executed_in_thread,
        "execution_time_ms": command.execution_time_ms,
    }


NOT_EXECUTED: dict[str, object] = {
    "execution_events": [],
    "is_successful_execution": False,
    "is_failed_execution": False,
    "failed_execution_exception": None,
    "is_response_from_fallback": False,
    "is_response_timed_out": False,
    "is_response_short_circuited": False,
    "is_response_rejected": False,
    "is_response_thread_pool_rejected": False,
    "is_response_semaphore_rejected": False,
    "is_circuit_breaker_open": False,
    "is_executed_in_thread": False,
    "execution_time_ms": -1,
}


class TestCommandDefinition:
    def test_run_without_group_key_fails_when_the_class_is_defined(self) -> None:
        """A class implementing run() with no group_key is refused at once, naming the class."""
        with pytest.raises(TypeError, match=r"NoGroup implements run\(\) but has no group_key"):

            class NoGroup(Command[str]):
                def run(self) -> str:
                    return "never"

    def test_error_suggests_a_group_key(self) -> None:
        """The error says how to fix the class: add a group_key class attribute."""
        with pytest.raises(TypeError, match='group_key = "UngroupedGroup"'):

            class Ungrouped(Command[str]):
                def run(self) -> str:
                    return "never"

    @pytest.mark.parametrize("bad_key", ["", 42, None])
    def test_empty_or_non_string_group_key_fails(self, bad_key: Any) -> None:
        """An empty or non-string group_key counts as missing."""
        with pytest.raises(TypeError, match="BadGroup implements run"):

            class BadGroup(Command[str]):
                group_key = bad_key

                def run(self) -> str:
                    return "never"

    def test_abstract_base_without_run_may_omit_group_key(self) -> None:
        """A base class without run() needs no group_key; its subclasses declare one."""

        class Base(Command[str]):
            properties = CommandProperties(execution_isolation_strategy=SEMAPHORE)

            def get_fallback(self) -> str:
                return "base fallback"

        class Concrete(Base):
            group_key = "Concrete"

            def run(self) -> str:
                raise ValueError("boom")

        assert Concrete().execute() == "base fallback"
        assert (Concrete.group_key, Concrete.command_key, Concrete.thread_pool_key) == (
            "Concrete",
            "Concrete",
            "Concrete",
        )

    def test_subclass_of_a_base_without_group_key_must_declare_one(self) -> None:
        """A subclass that implements run() under a base with no group_key is refused."""

        class Base(Command[str]):
            pass

        with pytest.raises(TypeError, match="Orphan implements run"):

            class Orphan(Base):
                def run(self) -> str:
                    return "never"

    def test_subclasses_inherit_the_group_key_of_an_abstract_base(self) -> None:
        """A group_key set on a base without run() serves every subclass."""

        class ServiceBase(Command[str]):
            group_key = "Inventory"

        class CountItems(ServiceBase):
            def run(self) -> str:
                return "3 items"

        assert (CountItems.group_key, CountItems.command_key, CountItems.thread_pool_key) == (
            "Inventory",
            "CountItems",
            "Inventory",
        )

    def test_command_key_defaults_to_the_class_name_at_every_level(self) -> None:
        """Each class, including a subclass of a subclass, gets its own name as command_key."""

        class Parent(Command[str]):
            group_key = "Family"

            def run(self) -> str:
                return "parent"

        class Child(Parent):
            pass

        class GrandChild(Child):
            pass

        assert [cls.command_key for cls in (Parent, Child, GrandChild)] == [
            "Parent",
            "Child",
            "GrandChild",
        ]
        assert GrandChild().command_key == "GrandChild"

    def test_explicit_command_key_is_kept_by_subclasses(self) -> None:
        """A command_key set by a class is inherited by its subclasses until one sets another."""

        class Named(Command[str]):
            group_key = "Named"
            command_key = "Lookup"

            def run(self) -> str:
                return "named"

        class NamedChild(Named):
            pass

        class NamedGrandChild(NamedChild):
            pass

        class Renamed(NamedChild):
            command_key = "OtherLookup"

        class RenamedChild(Renamed):
            pass

        assert [
            cls.command_key for cls in (Named, NamedChild, NamedGrandChild, Renamed, RenamedChild)
        ] == ["Lookup", "Lookup", "Lookup", "OtherLookup", "OtherLookup"]

    def test_explicit_command_key_is_where_metrics_go(self, fake_clock: FakeClock) -> None:
        """Executions of a subclass are counted under the inherited explicit command_key."""

        class Charge(Command[str]):
            group_key = "Payments"
            command_key = "ChargeCard"

            def run(self) -> str:
                return "charged"

        class ChargeVisa(Charge):
            pass

        assert ChargeVisa().execute() == "charged"
        assert hystrixpy.command_metrics("ChargeCard").rolling_count(E.SUCCESS) == 1

    def test_thread_pool_key_defaults_to_the_group_key(self, fake_clock: FakeClock) -> None:
        """Without a thread_pool_key the group's pool runs the command."""

        class Pay(Command[str]):
            group_key = "Payments"

            def run(self) -> str:
                return threading.current_thread().name

        class Refund(Pay):
            group_key = "Refunds"

        assert Pay.thread_pool_key == "Payments"
        assert Refund.thread_pool_key == "Refunds"
        assert Pay().execute().startswith("hystrix-Payments-")
        assert Refund().execute().startswith("hystrix-Refunds-")

    def test_explicit_thread_pool_key_is_kept_by_subclasses(self, fake_clock: FakeClock) -> None:
        """A thread_pool_key set by a class stays with its subclasses, whatever their group."""

        class Pay(Command[str]):
            group_key = "Payments"
            thread_pool_key = "PaymentsPool"

            def run(self) -> str:
                return threading.current_thread().name

        class PayLater(Pay):
            group_key = "Credit"

        assert PayLater.thread_pool_key == "PaymentsPool"
        assert PayLater().execute().startswith("hystrix-PaymentsPool-")

    @pytest.mark.parametrize(
        "bad_properties",
        [{"execution_timeout_ms": 500}, ThreadPoolProperties(), None],
        ids=["dict", "pool-properties", "none"],
    )
    def test_properties_of_the_wrong_type_fail_at_definition(self, bad_properties: Any) -> None:
        """properties must be a CommandProperties; anything else is refused, naming the class."""
        with pytest.raises(
            TypeError, match=r"WrongProperties\.properties must be a CommandProperties"
        ):

            class WrongProperties(Command[str]):
                group_key = "Wrong"
                properties = bad_properties

                def run(self) -> str:
                    return "never"

    @pytest.mark.parametrize(
        "bad_pool_properties",
        [{"core_size": 2}, CommandProperties()],
        ids=["dict", "command-properties"],
    )
    def test_thread_pool_properties_of_the_wrong_type_fail_at_definition(
        self, bad_pool_properties: Any
    ) -> None:
        """thread_pool_properties must be a ThreadPoolProperties, checked when it is defined."""
        with pytest.raises(
            TypeError, match=r"WrongPool\.thread_pool_properties must be a ThreadPoolProperties"
        ):

            class WrongPool(Command[str]):
                group_key = "Wrong"
                thread_pool_properties = bad_pool_properties

                def run(self) -> str:
                    return "never"

    def test_wrong_properties_fail_even_on_an_abstract_base(self) -> None:
        """A base class without run() has its properties checked too."""
        with pytest.raises(TypeError, match=r"AbstractWrong\.properties must be"):

            class AbstractWrong(Command[str]):
                properties = "fast please"  # type: ignore[assignment]

    def test_properties_clashing_with_the_configuration_fail_at_definition(self) -> None:
        """A class whose properties cannot combine with its configured overrides is refused."""
        hystrixpy.configure({"command.Clashing.metrics_rolling_stats_time_ms": 7000})

        with pytest.raises(
            ValueError, match="buckets=16 must divide metrics_rolling_stats_time_ms=7000"
        ):

            class Clashing(Command[str]):
                group_key = "Clashing"
                properties = CommandProperties(metrics_rolling_stats_num_buckets=16)

                def run(self) -> str:
                    return "never"

    def test_has_fallback_tells_whether_get_fallback_is_overridden(self) -> None:
        """has_fallback() is true only for classes that define get_fallback()."""
        assert Greet().has_fallback()
        assert not Forgetful("x").has_fallback()

    def test_a_fallback_patched_onto_the_class_later_is_used(self) -> None:
        """A get_fallback() given to a class after its definition (mock.patch) counts as defined."""
        with mock.patch.object(Forgetful, "get_fallback", lambda self: "patched", create=True):
            assert Forgetful("x").has_fallback()
        assert not Forgetful("x").has_fallback()

    def test_repr_names_class_and_command_key(self) -> None:
        """repr() shows the class and the command key of the instance."""
        assert repr(Lookup("Eu")) == "<Lookup command_key='LookupEu'>"


class TestKeysPerInstance:
    def test_instances_with_their_own_keys_use_separate_state(self, fake_clock: FakeClock) -> None:
        """Keys given to super().__init__() route to their own metrics, breaker and pool."""
        europe = Lookup("Eu", fail=True)
        america = Lookup("Us")

        assert europe.execute() == "not found"
        assert america.execute() == "found in Us"

        assert (europe.command_key, europe.thread_pool_key) == ("LookupEu", "LookupPoolEu")
        assert europe.metrics is hystrixpy.command_metrics("LookupEu")
        assert america.metrics is hystrixpy.command_metrics("LookupUs")
        assert europe.metrics is not america.metrics
        assert europe.metrics.rolling_count(E.FAILURE) == 1
        assert america.metrics.rolling_count(E.FAILURE) == 0
        assert america.metrics.rolling_count(E.SUCCESS) == 1
        assert europe.circuit_breaker.is_open()
        assert not america.circuit_breaker.is_open()
        assert europe.thread_name.startswith("hystrix-LookupPoolEu-")
        assert america.thread_name.startswith("hystrix-LookupPoolUs-")
        assert Lookup.command_key == "Lookup"

    def test_open_breaker_of_one_key_does_not_short_circuit_another(
        self, fake_clock: FakeClock
    ) -> None:
        """With the Eu key's circuit open, Eu calls short-circuit while Us calls still run."""
        Lookup("Eu", fail=True).execute()

        blocked = Lookup("Eu")
        allowed = Lookup("Us")
        assert blocked.execute() == "not found"
        assert allowed.execute() == "found in Us"
        assert blocked.is_response_short_circuited
        assert blocked.thread_name == ""
        assert allowed.is_successful_execution


class TestRunsOnce:
    @pytest.mark.parametrize(
        ("first", "second"),
        [("execute", "execute"), ("execute", "queue"), ("queue", "execute"), ("queue", "queue")],
    )
    def test_second_execution_of_an_instance_fails(
        self, first: str, second: str, fake_clock: FakeClock
    ) -> None:
        """An instance runs once; executing or queueing it again raises RuntimeError."""
        command = Greet("ada")
        value = command.execute() if first == "execute" else command.queue().result(5)
        assert value == "hello ada"

        with pytest.raises(RuntimeError, match="already been executed"):
            getattr(command, second)()

        assert command.execution_events == [E.SUCCESS]
        assert command.metrics.rolling_count(E.SUCCESS) == 1

    def test_a_new_instance_runs_again(self, fake_clock: FakeClock) -> None:
        """Each new instance gets its own execution."""
        assert Greet("a").execute() == "hello a"
        assert Greet("b").execute() == "hello b"
        assert hystrixpy.command_metrics("Greet").rolling_count(E.SUCCESS) == 2

    def test_subclass_that_skips_super_init_still_works(self, fake_clock: FakeClock) -> None:
        """Forgetting super().__init__() leaves the class keys and a working single execution."""
        command = Forgetful("grace")

        assert command.execute() == "hello grace"

        assert command.command_key == "Forgetful"
        assert command.thread_pool_key == "Forgetful"
        assert command.execution_events == [E.SUCCESS]
        assert command.is_executed_in_thread
        with pytest.raises(RuntimeError):
            command.execute()


class TestIntrospection:
    def test_before_execution(self) -> None:
        """An instance that has not run reports nothing happened."""
        command = Greet()

        assert introspection(command) == NOT_EXECUTED
        assert command.remaining_time() is None
        assert not command.is_timed_out

    @pytest.mark.parametrize(
        ("command_class", "in_thread"), [(Greet, True), (GreetOnCaller, False)]
    )
    def test_after_success(
        self, command_class: type[Greet], in_thread: bool, fake_clock: FakeClock
    ) -> None:
        """A success reports SUCCESS, where run() ran, and how long it took."""

        class Timed(command_class):  # type: ignore[valid-type,misc]
            def run(self) -> str:
                fake_clock.advance(0.25)
                return super().run()

        command = Timed()
        assert command.execute() == "hello world"

        assert introspection(command) == {
            **NOT_EXECUTED,
            "execution_events": [E.SUCCESS],
            "is_successful_execution": True,
            "is_executed_in_thread": in_thread,
            "execution_time_ms": 250,
        }

    def test_execution_time_counts_whole_milliseconds(self, fake_clock: FakeClock) -> None:
        """A run() that takes 5 ms of fake time reports 5 ms."""

        class FiveMs(GreetOnCaller):
            def run(self) -> str:
                fake_clock.advance_ms(5)
                return "done"

        command = FiveMs()
        command.execute()

        assert command.execution_time_ms == 5

    def test_after_failure(self, fake_clock: FakeClock) -> None:
        """A failure reports FAILURE, run()'s error, and an answer from the fallback."""
        error = ValueError("boom")
        command = GreetOnCaller(fail=error)

        assert command.execute() == "hello, whoever you are"

        assert introspection(command) == {
            **NOT_EXECUTED,
            "execution_events": [E.FAILURE, E.FALLBACK_SUCCESS],
            "is_failed_execution": True,
            "failed_execution_exception": error,
            "is_response_from_fallback": True,
            "execution_time_ms": 0,
        }

    def test_after_thread_timeout(self, fake_clock: FakeClock) -> None:
        """A timed-out run() on a worker reports TIMEOUT, ran in a thread, and no run time yet."""
        release = threading.Event()
        entered = threading.Event()

        class Hangs(Greet):
            def run(self) -> str:
                entered.set()
                release.wait(5)
                return "late"

        command = Hangs()
        answers: list[str] = []
        caller = threading.Thread(target=lambda: answers.append(command.execute()))
        try:
            caller.start()
            assert entered.wait(5)
            fake_clock.advance(2.0)
            caller.join(5)
            assert not caller.is_alive()
            assert answers == ["hello, whoever you are"]
            assert introspection(command) == {
                **NOT_EXECUTED,
                "execution_events": [E.TIMEOUT, E.FALLBACK_SUCCESS],
                "is_response_timed_out": True,
                "is_response_from_fallback": True,
                "is_executed_in_thread": True,
            }
            assert command.is_timed_out
        finally:
            release.set()

    def test_after_semaphore_timeout(self, fake_clock: FakeClock) -> None:
        """A run() that overran on the caller's thread reports TIMEOUT and its run time."""

        class Slow(GreetOnCaller):
            def run(self) -> str:
                fake_clock.advance(1.5)
                return "late"

        command = Slow()
        assert command.execute() == "hello, whoever you are"

        assert introspection(command) == {
            **NOT_EXECUTED,
            "execution_events": [E.TIMEOUT, E.FALLBACK_SUCCESS],
            "is_response_timed_out": True,
            "is_response_from_fallback": True,
            "execution_time_ms": 1500,
        }
        assert command.is_timed_out

    def test_after_short_circuit(self, fake_clock: FakeClock) -> None:
        """A short-circuited call reports SHORT_CIRCUITED, an open circuit, and no run."""

        class AlwaysOpen(Greet):
            properties = CommandProperties(circuit_breaker_force_open=True)

        command = AlwaysOpen()
        assert command.execute() == "hello, whoever you are"

        assert introspection(command) == {
            **NOT_EXECUTED,
            "execution_events": [E.SHORT_CIRCUITED, E.FALLBACK_SUCCESS],
            "is_response_short_circuited": True,
            "is_response_from_fallback": True,
            "is_circuit_breaker_open": True,
        }

    def test_after_thread_pool_rejection(self, fake_clock: FakeClock) -> None:
        """A call refused by a full pool reports a thread-pool rejection and no run."""
        release = threading.Event()
        entered = threading.Event()

        class OneWorker(Greet):
            thread_pool_properties = ThreadPoolProperties(core_size=1)

            def run(self) -> str:
                if self.name == "holder":
                    entered.set()
                    release.wait(5)
                return super().run()

        try:
            held = OneWorker("holder").queue()
            assert entered.wait(5)
            command = OneWorker()
            assert command.execute() == "hello, whoever you are"
        finally:
            release.set()
        assert held.result(5) == "hello holder"

        assert introspection(command) == {
            **NOT_EXECUTED,
            "execution_events": [E.THREAD_POOL_REJECTED, E.FALLBACK_SUCCESS],
            "is_response_rejected": True,
            "is_response_thread_pool_rejected": True,
            "is_response_from_fallback": True,
        }

    def test_after_semaphore_rejection(self) -> None:
        """A call refused by a full semaphore reports a semaphore rejection and no run."""

        class NoPermits(GreetOnCaller):
            properties = CommandProperties(
                execution_isolation_strategy=SEMAPHORE,
                execution_isolation_semaphore_max_concurrent_requests=0,
            )

        command = NoPermits()
        assert command.execute() == "hello, whoever you are"

        assert introspection(command) == {
            **NOT_EXECUTED,
            "execution_events": [E.SEMAPHORE_REJECTED, E.FALLBACK_SUCCESS],
            "is_response_rejected": True,
            "is_response_semaphore_rejected": True,
            "is_response_from_fallback": True,
        }

    def test_after_bad_request(self, fake_clock: FakeClock) -> None:
        """A bad request reports BAD_REQUEST and its error, but is neither failure nor fallback."""
        error = BadRequestError("empty name")
        command = Greet(fail=error)

        with pytest.raises(BadRequestError):
            command.execute()

        assert introspection(command) == {
            **NOT_EXECUTED,
            "execution_events": [E.BAD_REQUEST, E.EXCEPTION_THROWN],
            "failed_execution_exception": error,
            "is_executed_in_thread": True,
            "execution_time_ms": 0,
        }

    def test_after_fallback_failure(self, fake_clock: FakeClock) -> None:
        """A failed fallback reports FAILURE and FALLBACK_FAILURE, and no answer from fallback."""
        error = ValueError("boom")

        class BrokenFallback(GreetOnCaller):
            def get_fallback(self) -> str:
                raise LookupError("no default greeting")

        command = BrokenFallback(fail=error)
        with pytest.raises(HystrixRuntimeError):
            command.execute()

        assert introspection(command) == {
            **NOT_EXECUTED,
            "execution_events": [E.FAILURE, E.FALLBACK_FAILURE, E.EXCEPTION_THROWN],
            "is_failed_execution": True,
            "failed_execution_exception": error,
            "execution_time_ms": 0,
        }

    def test_after_interrupt(self, fake_clock: FakeClock) -> None:
        """A run() cut short by KeyboardInterrupt reports CANCELLED and the interrupt."""
        interrupt = KeyboardInterrupt()
        command = GreetOnCaller(fail=interrupt)

        with pytest.raises(KeyboardInterrupt):
            command.execute()

        assert introspection(command) == {
            **NOT_EXECUTED,
            "execution_events": [E.CANCELLED],
            "failed_execution_exception": interrupt,
            "execution_time_ms": 0,
        }

    def test_execution_events_is_a_copy(self, fake_clock: FakeClock) -> None:
        """Changing the returned events list does not change what the command reports."""
        command = GreetOnCaller()
        command.execute()

        command.execution_events.append(E.FAILURE)

        assert command.execution_events == [E.SUCCESS]


class TestRemainingTime:
    def test_counts_down_on_the_callers_thread(self, fake_clock: FakeClock) -> None:
        """Inside run() remaining_time() falls with the clock to 0.0; is_timed_out turns true."""
        readings: list[tuple[float | None, bool]] = []

        class Watches(GreetOnCaller):
            def run(self) -> str:
                for step in (0.0, 0.25, 0.75, 0.5):
                    fake_clock.advance(step)
                    readings.append((self.remaining_time(), self.is_timed_out))
                return "late"

        Watches().execute()

        assert readings == [(1.0, False), (0.75, False), (0.0, True), (0.0, True)]

    def test_counts_down_on_a_worker(self, fake_clock: FakeClock) -> None:
        """A run() on a worker sees its remaining time, and sees that it timed out."""
        readings: list[tuple[float | None, bool]] = []
        entered = threading.Event()
        release = threading.Event()
        read_again = threading.Event()

        class Watches(Greet):
            def run(self) -> str:
                readings.append((self.remaining_time(), self.is_timed_out))
                fake_clock.advance(0.25)
                readings.append((self.remaining_time(), self.is_timed_out))
                entered.set()
                release.wait(5)
                readings.append((self.remaining_time(), self.is_timed_out))
                read_again.set()
                return "late"

        command = Watches()
        answers: list[str] = []
        caller = threading.Thread(target=lambda: answers.append(command.execute()))
        try:
            caller.start()
            assert entered.wait(5)
            fake_clock.advance(1.0)
            caller.join(5)
            assert answers == ["hello, whoever you are"]
        finally:
            release.set()
        assert read_again.wait(5)

        assert readings == [(1.0, False), (0.75, False), (0.0, True)]

    @pytest.mark.parametrize("isolation", [THREAD, SEMAPHORE])
    def test_is_none_without_a_timeout(
        self, isolation: IsolationStrategy, fake_clock: FakeClock
    ) -> None:
        """With timeouts disabled remaining_time() is None and is_timed_out stays false."""
        readings: list[tuple[float | None, bool]] = []

        class Unbounded(Greet):
            properties = CommandProperties(
                execution_isolation_strategy=isolation, execution_timeout_enabled=False
            )

            def run(self) -> str:
                fake_clock.advance(3600.0)
                readings.append((self.remaining_time(), self.is_timed_out))
                return "eventually"

        assert Unbounded().execute() == "eventually"
        assert readings == [(None, False)]


class TestKeyState:
    def test_metrics_and_breaker_are_the_registrys(self, fake_clock: FakeClock) -> None:
        """cmd.metrics and cmd.circuit_breaker are the objects the registry gives for the key."""
        command = Greet()

        metrics, breaker = command.metrics, command.circuit_breaker
        assert metrics is hystrixpy.command_metrics("Greet")
        assert breaker is hystrixpy.circuit_breaker("Greet")

        command.execute()

        assert command.metrics is metrics
        assert command.circuit_breaker is breaker
        assert metrics.rolling_count(E.SUCCESS) == 1
        assert Greet().metrics is metrics

    def test_disabled_breaker_is_the_registrys_no_op(self) -> None:
        """With the breaker disabled, the command and the registry give the same no-op breaker."""

        class Unguarded(GreetOnCaller):
            properties = CommandProperties(
                execution_isolation_strategy=SEMAPHORE, circuit_breaker_enabled=False
            )

        command = Unguarded()
        assert command.execute() == "hello world"

        assert isinstance(command.circuit_breaker, NoOpCircuitBreaker)
        assert command.circuit_breaker is hystrixpy.circuit_breaker("Unguarded")
        assert not command.is_circuit_breaker_open
