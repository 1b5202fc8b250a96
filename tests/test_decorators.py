"""@command: a function protected by a generated command, keeping its signature and typing."""

from __future__ import annotations

import inspect
import textwrap
import threading
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest

import hystrixpy
from hystrixpy import Command, EventType, HystrixRuntimeError, IsolationStrategy, command
from hystrixpy.retry import RetryPolicy
from hystrixpy.testing import FakeClock, use_clock

ROOT = Path(__file__).resolve().parent.parent


@command(group_key="Users", isolation="SEMAPHORE", fallback=lambda user_id: {"id": user_id})
def get_user(user_id: int) -> dict[str, Any]:
    """Fetch one user."""
    if user_id < 0:
        raise ConnectionError("user service down")
    return {"id": user_id, "name": "ada"}


class TestFunctions:
    def test_a_call_executes_the_command(self) -> None:
        """Calling the function runs it inside its command and returns its value."""
        assert get_user(42) == {"id": 42, "name": "ada"}
        metrics = hystrixpy.command_metrics(get_user.command_class.command_key)
        assert metrics.cumulative_count(EventType.SUCCESS) == 1

    def test_a_failure_gets_the_fallback_with_the_same_arguments(self) -> None:
        """The fallback is called with the call's own arguments."""
        assert get_user(-1) == {"id": -1}
        metrics = hystrixpy.command_metrics(get_user.command_class.command_key)
        assert metrics.cumulative_count(EventType.FALLBACK_SUCCESS) == 1

    def test_queue_returns_a_future(self) -> None:
        """queue() gives a Future of the value."""
        future = get_user.queue(7)
        assert isinstance(future, Future)
        assert future.result(timeout=5) == {"id": 7, "name": "ada"}

    def test_the_command_class_is_a_command_keyed_by_qualified_name(self) -> None:
        """command_class is a Command subclass with the function's qualified name as its key."""
        cls = get_user.command_class
        assert issubclass(cls, Command)
        assert cls.command_key == "get_user"
        assert cls.group_key == "Users"
        assert cls.thread_pool_key == "Users"
        assert cls.properties.execution_isolation_strategy is IsolationStrategy.SEMAPHORE

    def test_name_docstring_and_signature_are_kept(self) -> None:
        """The decorated function still looks like itself."""
        assert get_user.__name__ == "get_user"  # type: ignore[attr-defined]
        assert get_user.__doc__ == "Fetch one user."
        assert str(inspect.signature(get_user)) == "(user_id: 'int') -> 'dict[str, Any]'"

    def test_without_a_fallback_a_failure_raises(self) -> None:
        """No fallback: HystrixRuntimeError, with the function's error as its cause."""

        @command(group_key="Users", isolation=IsolationStrategy.SEMAPHORE)
        def broken() -> None:
            raise ConnectionError("down")

        with pytest.raises(HystrixRuntimeError) as raised:
            broken()
        assert isinstance(raised.value.__cause__, ConnectionError)

    def test_each_call_is_a_new_execution(self) -> None:
        """The same function can be called again and again (a new command each time)."""
        assert [get_user(n)["id"] for n in range(3)] == [0, 1, 2]

    def test_thread_isolation_times_out_to_the_fallback(self, fake_clock: FakeClock) -> None:
        """A thread-isolated function that hangs past its timeout gets its fallback at once."""
        release = threading.Event()

        @command(group_key="Slow", timeout_ms=100, fallback=lambda: "late")
        def hang() -> str:
            release.wait(10)
            return "done"

        future = hang.queue()
        fake_clock.advance_ms(150)
        try:
            assert future.result(timeout=10) == "late"
        finally:
            release.set()

    def test_retry_inside_the_command(self) -> None:
        """retry= retries the function inside its command, counting each extra attempt."""
        attempts: list[int] = []

        @command(
            group_key="Flaky",
            isolation="SEMAPHORE",
            retry=RetryPolicy(max_attempts=3, initial_delay_ms=10, jitter=False),
        )
        def flaky() -> str:
            attempts.append(1)
            if len(attempts) < 3:
                raise ConnectionError("dropped")
            return "ok"

        with use_clock(FakeClock(sleep_advances=True)):
            assert flaky() == "ok"
        metrics = hystrixpy.command_metrics(flaky.command_class.command_key)
        assert metrics.cumulative_count(EventType.RETRY) == 2

    def test_configure_reaches_the_generated_command(self) -> None:
        """The generated key is configured like any other (here: forced open)."""

        @command(
            group_key="Users",
            command_key="ForcedUser",
            isolation="SEMAPHORE",
            fallback=lambda: "open",
        )
        def user() -> str:
            return "closed"

        hystrixpy.configure({"command.ForcedUser.circuit_breaker_force_open": True})
        assert user() == "open"


class Repository:
    """A class with decorated methods of every kind."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    @command(
        group_key="Repo",
        isolation="SEMAPHORE",
        fallback=lambda self, name: f"{self.prefix}:fallback:{name}",
    )
    def find(self, name: str) -> str:
        """Find by name."""
        if name == "missing":
            raise ConnectionError("down")
        return f"{self.prefix}:{name}"

    @command(group_key="Repo", isolation="SEMAPHORE", fallback=lambda cls, fail=False: cls.__name__)
    @classmethod
    def kind(cls, fail: bool = False) -> str:
        """The repository's kind."""
        if fail:
            raise ConnectionError("down")
        return "repo"

    @command(group_key="Repo", isolation="SEMAPHORE")
    @staticmethod
    def version() -> int:
        """The repository's version."""
        return 3


class TestMethods:
    def test_an_instance_method_runs_on_its_instance(self) -> None:
        """The method gets its own self, and so does its fallback."""
        repo = Repository("a")
        assert repo.find("x") == "a:x"
        assert repo.find("missing") == "a:fallback:missing"
        assert Repository("b").find("y") == "b:y"

    def test_an_instance_method_can_be_queued(self) -> None:
        """queue() on a bound method keeps the instance."""
        assert Repository("q").find.queue("z").result(timeout=5) == "q:z"

    def test_a_classmethod_and_a_staticmethod(self) -> None:
        """Both work through the class and through an instance; classmethod fallbacks get cls."""
        assert Repository.kind() == "repo"
        assert Repository("c").kind() == "repo"
        assert Repository.kind(fail=True) == "Repository"
        assert Repository.version() == 3
        assert Repository("d").version.queue().result(timeout=5) == 3

    def test_methods_keep_their_signatures_and_keys(self) -> None:
        """The signature of a method is kept, and its key is its qualified name."""
        assert str(inspect.signature(Repository("e").find)) == "(name: 'str') -> 'str'"
        assert Repository.find.command_class.command_key == "Repository.find"
        assert Repository("f").find.command_class is Repository.find.command_class


class TestOptions:
    def test_every_property_may_be_given_by_name(self) -> None:
        """Command and thread-pool fields go to their own properties."""

        @command(
            group_key="Opts", circuit_breaker_sleep_window_ms=1234, core_size=3, max_queue_size=4
        )
        def f() -> None: ...

        cls = f.command_class
        assert cls.properties.circuit_breaker_sleep_window_ms == 1234
        assert cls.thread_pool_properties.core_size == 3
        assert cls.thread_pool_properties.max_queue_size == 4

    def test_an_unknown_option_is_a_type_error_at_decoration(self) -> None:
        """A misspelt option fails when the decorator is applied, naming it."""
        with pytest.raises(TypeError, match="unknown option 'timeout'"):
            command(group_key="Opts", timeout=5)

    def test_a_bad_value_is_a_value_error_naming_the_property(self) -> None:
        """An invalid value fails at decoration, naming the property and the value."""
        with pytest.raises(ValueError, match=r"execution_timeout_ms.*must be >= 1, got 0"):
            command(group_key="Opts", timeout_ms=0)
        with pytest.raises(ValueError, match="isolation must be THREAD or SEMAPHORE"):
            command(group_key="Opts", isolation="PROCESS")
        with pytest.raises(ValueError, match="core_size"):
            command(group_key="Opts", core_size=0)

    def test_wrong_kinds_of_option_are_type_errors(self) -> None:
        """A fallback that cannot be called, or a retry that is not a policy, is refused."""
        with pytest.raises(TypeError, match="fallback must be callable"):
            command(group_key="Opts", fallback="nope")
        with pytest.raises(TypeError, match="retry must be a RetryPolicy"):
            command(group_key="Opts", retry=3)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="properties must be a CommandProperties"):
            command(group_key="Opts", properties=hystrixpy.ThreadPoolProperties())  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="decorates a function"):
            command(group_key="Opts")(42)  # type: ignore[arg-type]

    def test_base_properties_are_changed_by_named_fields(self) -> None:
        """properties= is the base; named fields and timeout_ms change it."""

        @command(
            group_key="Opts",
            timeout_ms=300,
            properties=hystrixpy.CommandProperties(circuit_breaker_enabled=False),
            thread_pool_properties=hystrixpy.ThreadPoolProperties(core_size=2),
            thread_pool_key="OptsPool",
        )
        def g() -> None: ...

        cls = g.command_class
        assert cls.properties.execution_timeout_ms == 300
        assert cls.properties.circuit_breaker_enabled is False
        assert cls.thread_pool_properties.core_size == 2
        assert cls.thread_pool_key == "OptsPool"

    def test_a_configuration_clash_fails_at_decoration(self) -> None:
        """A key whose configuration the decorated properties contradict fails at once."""
        hystrixpy.configure({"command.Clash.metrics_rolling_stats_num_buckets": 8})
        with pytest.raises(ValueError, match=r"Clash.*must divide"):

            @command(group_key="Opts", command_key="Clash", metrics_rolling_stats_time_ms=1010)
            def h() -> None: ...


class TestTyping:
    def test_mypy_sees_the_signature(self, tmp_path: Path) -> None:
        """mypy --strict infers the return type and rejects wrong arguments."""
        api = pytest.importorskip("mypy.api")
        source = tmp_path / "typed_use.py"
        source.write_text(
            textwrap.dedent(
                """
                from concurrent.futures import Future
                from hystrixpy import command

                @command(group_key="Users")
                def get_user(user_id: int) -> dict[str, int]:
                    return {"id": user_id}

                class Repo:
                    @command(group_key="Users")
                    def find(self, name: str) -> str:
                        return name

                value: dict[str, int] = get_user(42)
                future: Future[dict[str, int]] = get_user.queue(42)
                found: str = Repo().find("x")
                get_user("x", 1)
                Repo().find(3)
                """
            )
        )
        stdout, _, status = api.run(
            [
                "--strict",
                "--no-incremental",
                "--cache-dir",
                str(tmp_path / "cache"),
                str(source),
            ]
        )
        errors = [
            line
            for line in stdout.splitlines()
            if line.startswith(str(source)) and ": error:" in line
        ]
        assert status == 1, stdout
        assert len(errors) == 3, stdout
        assert any(":17:" in line and "Too many arguments" in line for line in errors), stdout
        assert any(":17:" in line and '"str"' in line for line in errors), stdout
        assert any(":18:" in line and '"int"' in line for line in errors), stdout
