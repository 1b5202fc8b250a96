"""Tests for hystrixpy.breakers' registry, options, @protect decorator and fork handling."""

from __future__ import annotations

import inspect
import json
import os
import re
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest

import hystrixpy
from hystrixpy import breakers
from hystrixpy._breaker_config import OPTION_NAMES, BreakerOptions
from hystrixpy.breakers import Breaker, BreakerConfig, CircuitState, protect
from hystrixpy.events import IsolationStrategy
from hystrixpy.exceptions import CircuitBreakerError
from hystrixpy.testing import FakeClock

CLOSED, OPEN = CircuitState.CLOSED, CircuitState.OPEN


class Down(Exception):
    """A failing dependency's error."""


def boom() -> None:
    raise Down("down")


def trip(breaker: Breaker, failures: int) -> None:
    for _ in range(failures):
        with pytest.raises(Down):
            breaker.call(boom)


class TestBreakerConfig:
    def test_defaults(self) -> None:
        """The consecutive mode with 5 failures, 60 s recovery, one trial, no timeout."""
        config = BreakerConfig()
        assert config.mode == "consecutive"
        assert (config.failure_threshold, config.recovery_timeout_ms) == (5, 60_000)
        assert (config.success_threshold, config.half_open_max_calls) == (1, 1)
        assert (config.request_timeout_ms, config.timeout_pool_size) == (None, None)
        assert (config.error_threshold_percentage, config.request_volume_threshold) == (None, None)
        assert (config.rolling_window_ms, config.group) == (10_000, "breakers")

    def test_the_rolling_mode_fills_in_hystrixs_defaults(self) -> None:
        """Either rolling option selects the rolling mode; the other takes Hystrix's default."""
        assert BreakerConfig(error_threshold_percentage=25) == BreakerConfig(
            error_threshold_percentage=25, request_volume_threshold=20
        )
        config = BreakerConfig(request_volume_threshold=7)
        assert (config.mode, config.error_threshold_percentage) == ("rolling", 50)
        assert config.failure_threshold is None

    def test_a_timeout_gets_a_pool_of_ten(self) -> None:
        """With request_timeout_ms the pool size defaults to 10; the two spellings compare equal."""
        assert BreakerConfig(request_timeout_ms=100).timeout_pool_size == 10
        assert BreakerConfig(request_timeout_ms=100) == BreakerConfig(
            request_timeout_ms=100, timeout_pool_size=10
        )

    def test_exception_types_are_kept_as_tuples(self) -> None:
        """exclude and include take one type or several."""
        config = BreakerConfig(exclude=KeyError, include=[OSError, Down])  # type: ignore[arg-type]
        assert (config.exclude, config.include) == ((KeyError,), (OSError, Down))

    @pytest.mark.parametrize(
        ("options", "message"),
        [
            ({"failure_threshold": 0}, "failure_threshold must be >= 1, got 0"),
            ({"failure_threshold": "5"}, "failure_threshold must be an int, got '5'"),
            ({"failure_threshold": True}, "failure_threshold must be an int, got True"),
            ({"monitoring_period_ms": 0}, "monitoring_period_ms must be >= 1, got 0"),
            ({"error_threshold_percentage": 101}, "error_threshold_percentage must be <= 100"),
            ({"request_volume_threshold": 0}, "request_volume_threshold must be >= 1, got 0"),
            ({"rolling_window_ms": 0}, "rolling_window_ms must be >= 1, got 0"),
            ({"recovery_timeout_ms": -1}, "recovery_timeout_ms must be >= 0, got -1"),
            ({"success_threshold": 0}, "success_threshold must be >= 1, got 0"),
            ({"half_open_max_calls": 0}, "half_open_max_calls must be >= 1, got 0"),
            ({"request_timeout_ms": 0}, "request_timeout_ms must be >= 1, got 0"),
            (
                {"request_timeout_ms": 10, "timeout_pool_size": 0},
                "timeout_pool_size must be >= 1, got 0",
            ),
            ({"timeout_pool_size": 3}, "timeout_pool_size=3 needs request_timeout_ms"),
            ({"exclude": "KeyError"}, "exclude must be an exception type or several"),
            ({"exclude": 3}, "exclude must be an exception type or several"),
            ({"exclude": [KeyError, int]}, "exclude must hold exception types only, got <class"),
            ({"include": ()}, "include=() would count no error as a failure"),
            ({"is_failure": True}, "is_failure must be callable or None, got True"),
            ({"on_open": "log"}, "on_open must be callable or None, got 'log'"),
            ({"group": ""}, "group must be a non-empty str, got ''"),
            (
                {"failure_threshold": 3, "error_threshold_percentage": 50},
                "cannot be combined with error_threshold_percentage",
            ),
            (
                {"monitoring_period_ms": 100, "request_volume_threshold": 5},
                "monitoring_period_ms=100 applies to the consecutive mode only",
            ),
        ],
    )
    def test_bad_values_raise_value_error_naming_option_and_value(
        self, options: dict[str, Any], message: str
    ) -> None:
        """Each bad value is refused when the config is made, with its option and value."""
        with pytest.raises(ValueError, match=re.escape(message)):
            BreakerConfig(**options)

    def test_unknown_option_raises_type_error_listing_the_known(self) -> None:
        """A misspelt option names itself and the options there are."""
        with pytest.raises(TypeError, match=r"unknown circuit breaker option 'fail_max'.*group"):
            BreakerConfig.of(fail_max=3)  # type: ignore[call-arg]

    def test_the_typed_options_name_every_field(self) -> None:
        """BreakerOptions, the keyword arguments' types, lists exactly the config's fields."""
        assert set(BreakerOptions.__annotations__) == OPTION_NAMES

    def test_command_properties_stand_for_the_options(self) -> None:
        """Recovery is the sleep window, the timeout the execution's, the window evenly split."""
        timed = BreakerConfig(
            request_timeout_ms=250,
            recovery_timeout_ms=7000,
            rolling_window_ms=1001,
            error_threshold_percentage=30,
            request_volume_threshold=9,
        ).command_properties()
        assert timed.circuit_breaker_sleep_window_ms == 7000
        assert (timed.execution_timeout_enabled, timed.execution_timeout_ms) == (True, 250)
        assert timed.execution_isolation_strategy is IsolationStrategy.THREAD
        assert (timed.metrics_rolling_stats_time_ms, timed.metrics_rolling_stats_num_buckets) == (
            1001,
            7,
        )
        assert timed.circuit_breaker_request_volume_threshold == 9
        assert timed.circuit_breaker_error_threshold_percentage == 30

        plain = BreakerConfig(failure_threshold=3).command_properties()
        assert plain.execution_timeout_enabled is False
        assert plain.execution_isolation_strategy is IsolationStrategy.SEMAPHORE
        assert plain.metrics_rolling_stats_num_buckets == 10
        assert plain.circuit_breaker_request_volume_threshold == 3
        assert plain.circuit_breaker_error_threshold_percentage == 100

    def test_pool_properties_have_no_queue(self) -> None:
        """The timeout pool runs timeout_pool_size calls and queues none."""
        pool = BreakerConfig(request_timeout_ms=5, timeout_pool_size=3).pool_properties()
        assert (pool.core_size, pool.effective_maximum_size, pool.queue_capacity) == (3, 3, 0)


class TestRegistry:
    def test_same_name_and_options_give_the_same_breaker(self) -> None:
        """get_or_create() returns the breaker already made when the options agree."""
        first = breakers.get_or_create("api", failure_threshold=3)
        assert breakers.get_or_create("api", failure_threshold=3) is first
        assert breakers.get("api") is first
        assert breakers.registered() == [first]

    def test_other_options_raise_value_error_naming_the_option(self) -> None:
        """Asking for a known name with different options is refused, not ignored."""
        breakers.get_or_create("api", failure_threshold=3)
        with pytest.raises(ValueError, match="failure_threshold=3; asked for failure_threshold=4"):
            breakers.get_or_create("api", failure_threshold=4)
        with pytest.raises(ValueError, match="'api' already exists with on_open=None"):
            breakers.get_or_create("api", failure_threshold=3, on_open=print)

    def test_bad_options_are_refused_at_creation(self) -> None:
        """An unknown option is a TypeError and a bad value a ValueError; nothing is registered."""
        with pytest.raises(TypeError, match="'fail_max'"):
            breakers.get_or_create("api", fail_max=3)  # type: ignore[call-arg]
        with pytest.raises(ValueError, match="success_threshold must be >= 1, got -2"):
            breakers.get_or_create("api", success_threshold=-2)
        with pytest.raises(ValueError, match="name must be a non-empty str"):
            breakers.get_or_create("")
        assert breakers.registered() == []

    def test_get_of_an_unknown_name_raises_key_error_naming_it(self) -> None:
        """get() tells which name is missing and how to make it."""
        with pytest.raises(KeyError, match="no circuit breaker named 'nowhere'"):
            breakers.get("nowhere")

    def test_racing_creators_get_one_breaker(self) -> None:
        """Threads creating the same name at once all receive the same breaker."""
        barrier = threading.Barrier(8)
        made: list[Breaker] = []

        def create() -> None:
            barrier.wait(5)
            made.append(breakers.get_or_create("contended"))

        threads = [threading.Thread(target=create) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(5)
        assert len(made) == 8
        assert all(breaker is made[0] for breaker in made)

    def test_a_creator_that_loses_the_race_gets_the_winners_breaker(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """If another thread registered the name while this one made its breaker, it gets theirs."""
        winner = Breaker("raced")

        class Loser(Breaker):
            def __init__(self, name: str, config: BreakerConfig | None = None) -> None:
                super().__init__(name, config)
                breakers._breakers[name] = winner  # the other thread got there first

        monkeypatch.setattr(breakers, "Breaker", Loser)
        assert breakers.get_or_create("raced") is winner

    def test_all_stats_and_reset_all(self, fake_clock: FakeClock) -> None:
        """all_stats() reads every breaker by name; reset_all() closes them all."""
        first = breakers.get_or_create("first", failure_threshold=1)
        second = breakers.get_or_create("second", failure_threshold=1)
        trip(first, 1)

        stats = breakers.all_stats()
        assert list(stats) == ["first", "second"]
        assert (stats["first"].state, stats["second"].state) == (OPEN, CLOSED)

        breakers.reset_all()
        assert (first.state, second.state) == (CLOSED, CLOSED)
        assert breakers.all_stats()["first"].total_failures == 0

    def test_hystrixpy_reset_forgets_every_breaker_and_stops_pools(self) -> None:
        """hystrixpy.reset() calls clear(): no breaker is known afterwards, and pools are shut."""
        timed = breakers.get_or_create("timed", request_timeout_ms=1000)
        assert timed.call(lambda: "worker") == "worker"
        pool = timed._pool
        assert pool is not None

        hystrixpy.reset()

        assert breakers.registered() == []
        with pytest.raises(KeyError):
            breakers.get("timed")
        assert timed._pool is None
        with pytest.raises(RuntimeError, match="shut down"):
            pool.submit(lambda: None)
        assert breakers.get_or_create("timed", request_timeout_ms=5) is not timed


class Client:
    """A class whose methods are protected."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    @protect("client-fetch", failure_threshold=2)
    def fetch(self, path: str, *, retries: int = 0) -> str:
        """Fetch a path."""
        if path == "bad":
            raise Down(path)
        return f"{self.prefix}/{path}?{retries}"

    @protect("client-class")
    @classmethod
    def build(cls, prefix: str) -> Client:
        """Make a client."""
        return cls(prefix)

    @protect("client-static")
    @staticmethod
    def version() -> str:
        """The version."""
        return "1"


class TestProtect:
    def test_a_protected_function_keeps_its_face_and_calls_through(
        self, fake_clock: FakeClock
    ) -> None:
        """Name, docstring and signature are kept; calls go through the named breaker."""

        @protect("decorated", failure_threshold=1)
        def fetch(url: str, timeout: float = 1.0) -> bytes:
            """Fetch a URL."""
            if url == "bad":
                raise Down(url)
            return url.encode()

        assert fetch("a", timeout=2.0) == b"a"
        assert fetch.__name__ == "fetch"
        assert fetch.__doc__ == "Fetch a URL."
        assert inspect.signature(fetch) == inspect.signature(fetch.__wrapped__)
        assert list(inspect.signature(fetch).parameters) == ["url", "timeout"]
        assert fetch.breaker is breakers.get("decorated")
        with pytest.raises(Down):
            fetch("bad")
        with pytest.raises(CircuitBreakerError):
            fetch("a")

    def test_methods_classmethods_and_staticmethods(self, fake_clock: FakeClock) -> None:
        """The wrapper binds as the function would, and exposes the breaker when bound too."""
        client = Client("https://x")
        assert client.fetch("p", retries=2) == "https://x/p?2"
        assert Client.fetch(client, "q") == "https://x/q?0"
        assert client.fetch.breaker is Client.fetch.breaker is breakers.get("client-fetch")
        assert list(inspect.signature(client.fetch).parameters) == ["path", "retries"]
        assert Client.build("y").prefix == "y"
        assert Client.version() == "1"
        assert Client.build.breaker is breakers.get("client-class")
        for _ in range(2):
            with pytest.raises(Down):
                client.fetch("bad")
        assert client.fetch.breaker.state is OPEN

    def test_bad_options_fail_when_decorating(self) -> None:
        """A bad option raises when the decorator is applied, not at the first call."""
        with pytest.raises(ValueError, match="recovery_timeout_ms must be >= 0, got -5"):
            protect("early", recovery_timeout_ms=-5)
        with pytest.raises(TypeError, match="'reset_timeout'"):
            protect("early", reset_timeout=5)  # type: ignore[call-arg]
        with pytest.raises(TypeError, match="decorates a function or method"):
            protect("early")(42)  # type: ignore[arg-type]

    def test_decorating_with_other_options_than_the_registered_breaker_fails(self) -> None:
        """Two decorations may share a name only with the same options."""
        protect("shared", failure_threshold=2)(boom)
        protect("shared", failure_threshold=2)(boom)
        with pytest.raises(ValueError, match="failure_threshold=2; asked for failure_threshold=9"):
            protect("shared", failure_threshold=9)

    def test_after_a_reset_the_next_call_makes_the_breaker_again(
        self, fake_clock: FakeClock
    ) -> None:
        """A decorated function outlives hystrixpy.reset(): its breaker is made afresh."""

        @protect("survivor", failure_threshold=1)
        def call() -> str:
            return "ok"

        old = call.breaker
        hystrixpy.reset()
        assert breakers.registered() == []

        assert call() == "ok"
        assert call.breaker is not old
        assert breakers.get("survivor").config.failure_threshold == 1
        hystrixpy.reset()
        assert call.breaker is breakers.get("survivor")  # reading it makes it, too


class TestTyping:
    def test_mypy_sees_the_protected_signature_and_the_options(self, tmp_path: Path) -> None:
        """mypy --strict keeps a protected function's signature and refuses unknown options."""
        api = pytest.importorskip("mypy.api")
        source = tmp_path / "typed_breakers.py"
        source.write_text(
            textwrap.dedent(
                """
                from hystrixpy import breakers
                from hystrixpy.breakers import Breaker

                @breakers.protect("typed", failure_threshold=3)
                def fetch(url: str, timeout: float = 1.0) -> bytes:
                    return b""

                class Client:
                    @breakers.protect("typed-method")
                    def get(self, key: int) -> str:
                        return str(key)

                data: bytes = fetch("u", timeout=2.0)
                guard: Breaker = fetch.breaker
                text: str = Client().get(3)
                bound: Breaker = Client().get.breaker
                length: int = breakers.get_or_create("typed").call(len, "abc")
                fetch(3)
                breakers.get_or_create("typed", fail_max=3)
                breakers.get_or_create("typed").call(fetch, "u", retries=1)
                """
            )
        )
        stdout, _, status = api.run(
            ["--strict", "--no-incremental", "--cache-dir", str(tmp_path / "cache"), str(source)]
        )
        errors = [
            line
            for line in stdout.splitlines()
            if line.startswith(str(source)) and ": error:" in line
        ]
        assert status == 1, stdout
        assert [line.split(":")[1] for line in errors] == ["19", "20", "21"], stdout


class TestForkSafety:
    def test_the_fork_handlers_renew_locks_pools_and_state(self, fake_clock: FakeClock) -> None:
        """After the child's handlers run, every breaker is closed, uncounted, with new locks."""
        from hystrixpy import _breaker_core

        registered = breakers.get_or_create("forked", failure_threshold=1, request_timeout_ms=50)
        alone = Breaker("alone", BreakerConfig(failure_threshold=1))
        trip(registered, 1)
        trip(alone, 1)
        old_lock, old_registry_lock = registered._lock, breakers._lock

        breakers._after_fork_in_child()
        _breaker_core._after_fork_in_child()

        assert breakers._lock is not old_registry_lock
        for breaker in (registered, alone):
            assert breaker.state is CLOSED
            assert breaker.stats().total_failures == 0
        assert registered._lock is not old_lock
        assert registered._pool is None
        assert breakers.get("forked") is registered

    @pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork()")
    @pytest.mark.filterwarnings("ignore:.*fork.*:DeprecationWarning")
    def test_a_forked_child_calls_through_its_breakers(self) -> None:
        """In a real child process a breaker the parent tripped starts closed and works."""
        breaker = breakers.get_or_create("parent", failure_threshold=1, request_timeout_ms=5000)
        trip(breaker, 1)
        reader, writer = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child reports through the pipe and never returns
            status = 1
            try:
                os.close(reader)
                report = {
                    "state": breaker.state.name,
                    "value": breaker.call(lambda: "from child"),
                    "same": breakers.get("parent") is breaker,
                }
                os.write(writer, json.dumps(report).encode())
                status = 0
            finally:
                os._exit(status)
        os.close(writer)
        with os.fdopen(reader, "rb") as pipe:
            raw = pipe.read()
        _, wait_status = os.waitpid(pid, 0)

        assert os.waitstatus_to_exitcode(wait_status) == 0
        assert json.loads(raw) == {"state": "CLOSED", "value": "from child", "same": True}
        assert breaker.state is OPEN  # the parent's breaker is untouched
