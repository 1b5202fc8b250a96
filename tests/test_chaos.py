"""hystrixpy.chaos: its switch, its settings, and each fault as the engine sees it."""

from __future__ import annotations

import logging
import random
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import hystrixpy
from hystrixpy import (
    Command,
    CommandProperties,
    EventType,
    HystrixRuntimeError,
    IsolationStrategy,
    chaos,
    registry,
)
from hystrixpy.chaos import FaultSettings, InjectedFault, InjectedHang
from hystrixpy.retry import RetryPolicy
from hystrixpy.testing import FakeClock, use_clock
from tests.chaos.support import InstantClock, wait_until
from tests.gates import Caller

SEMAPHORE = IsolationStrategy.SEMAPHORE
E = EventType


@pytest.fixture
def sleepy_clock() -> Iterator[FakeClock]:
    """A fake clock whose sleeps move it on at once (latency without real time)."""
    fake = FakeClock(sleep_advances=True)
    with use_clock(fake):
        yield fake


class Dependency(Command[str]):
    """A healthy call on the caller's thread; counts its real calls (no breaker in the way)."""

    group_key = "Chaos"
    properties = CommandProperties(
        execution_isolation_strategy=SEMAPHORE, circuit_breaker_enabled=False
    )
    calls = 0

    def run(self) -> str:
        type(self).calls += 1
        return "ok"

    def get_fallback(self) -> str:
        return "fallback"


class Retried(Dependency):
    """The same call, retried up to three times, without delays."""

    retry = RetryPolicy(max_attempts=3, initial_delay_ms=0, jitter=False)


class Threaded(Dependency):
    """The same call, on a pool worker."""

    properties = CommandProperties(execution_timeout_ms=100, circuit_breaker_enabled=False)


@pytest.fixture(autouse=True)
def _fresh_counts() -> None:
    Dependency.calls = 0


def inject(**settings: object) -> None:
    """Configure ``settings`` for the key Dependency and enable chaos."""
    hystrixpy.configure(
        {f"chaos.command.Dependency.{name}": value for name, value in settings.items()}
    )
    chaos.enable()


class TestSwitch:
    def test_configure_alone_injects_nothing(self) -> None:
        """Settings are stored, but run() is called as usual until chaos is enabled."""
        hystrixpy.configure({"chaos.command.Dependency.exception_rate": 1})

        assert Dependency().execute() == "ok"
        assert not chaos.enabled()
        assert chaos.settings("Dependency").exception_rate == 1.0

    def test_enable_logs_a_warning_with_the_settings(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """chaos_enabled is a WARNING with every setting and result; enabling again is quiet."""
        hystrixpy.configure({"chaos.command.Dependency.exception_rate": "0.5"})
        chaos.set_result("Other", 1, rate=0.25)
        with caplog.at_level(logging.INFO, logger="hystrixpy"):
            chaos.enable()
            chaos.enable()
        (record,) = [r for r in caplog.records if r.hystrixpy_event == "chaos_enabled"]
        assert record.levelno == logging.WARNING
        assert record.hystrixpy["settings"] == {"chaos.command.Dependency.exception_rate": 0.5}
        assert record.hystrixpy["results"] == {"Other": 0.25}
        assert chaos.enabled()

    def test_disable_logs_info_once_and_keeps_the_settings(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """chaos_disabled is INFO, logged only when chaos was on; the settings stay."""
        inject(exception_rate=1)
        with caplog.at_level(logging.INFO, logger="hystrixpy"):
            chaos.disable()
            chaos.disable()
        records = [r for r in caplog.records if r.hystrixpy_event == "chaos_disabled"]
        assert [r.levelno for r in records] == [logging.INFO]
        assert Dependency().execute() == "ok"
        assert chaos.settings("Dependency").exception_rate == 1.0

    def test_active_applies_settings_for_the_block_only(self) -> None:
        """chaos.active() enables, installs its settings, and restores both afterwards."""
        hystrixpy.configure({"chaos.command.Dependency.latency_ms": 5})
        with chaos.active({"chaos.command.Dependency.exception_rate": 1}, seed=3):
            assert chaos.enabled()
            assert Dependency().execute() == "fallback"
        assert not chaos.enabled()
        assert chaos.settings("Dependency") == FaultSettings(latency_ms=5)

    def test_active_inside_enabled_chaos_leaves_it_on(self) -> None:
        """A block inside an enabled chaos does not turn it off at its end."""
        chaos.enable()
        with chaos.active():
            pass
        assert chaos.enabled()

    def test_reset_disables_and_forgets(self) -> None:
        """hystrixpy.reset() turns chaos off and forgets settings, results and counts."""
        inject(exception_rate=1)
        chaos.set_result("Other", "x")
        Dependency().execute()

        hystrixpy.reset()

        assert not chaos.enabled()
        assert chaos.settings("Dependency") == FaultSettings()
        assert chaos.settings("Other").result_rate == 0.0
        assert chaos.injected("Dependency") == dict.fromkeys(chaos.KINDS, 0)


class TestConfigure:
    def test_strings_from_a_file_are_numbers(self) -> None:
        """Values may be strings, as read from a .properties file."""
        hystrixpy.configure(
            {
                "chaos.command.Dependency.latency_ms": " 25 ",
                "chaos.command.Dependency.latency_rate": "0.5",
                "chaos.command.Dependency.hang_ms": "300",
            }
        )
        assert chaos.settings("Dependency") == FaultSettings(
            latency_ms=25, latency_rate=0.5, hang_ms=300
        )

    def test_a_key_wins_over_the_default_setting_by_setting(self) -> None:
        """default applies to every key; a key's own value replaces it for that setting only."""
        hystrixpy.configure(
            {
                "chaos.command.default.exception_rate": 0.2,
                "chaos.command.default.latency_ms": 50,
                "chaos.command.GetUser.exception_rate": 0.9,
            }
        )
        assert chaos.settings("GetUser") == FaultSettings(exception_rate=0.9, latency_ms=50)
        assert chaos.settings("Other") == FaultSettings(exception_rate=0.2, latency_ms=50)
        assert chaos.settings() == chaos.settings("Other")

    def test_none_removes_an_override(self) -> None:
        """A value of None forgets the override, as for command properties."""
        hystrixpy.configure({"chaos.command.Dependency.exception_rate": 0.5})
        hystrixpy.configure({"chaos.command.Dependency.exception_rate": None})
        assert chaos.settings("Dependency") == FaultSettings()

    @pytest.mark.parametrize(
        ("name", "value", "message"),
        [
            ("chaos.command.Dependency.exceptions", 1, "unknown chaos setting 'exceptions'"),
            ("chaos.rate", 1, "expected 'chaos.command.<key>.<setting>'"),
            ("chaos.command.exception_rate", 1, "expected 'chaos.command.<key>.<setting>'"),
            ("chaos.command.Dependency.exception_rate", 1.5, "exception_rate must be a rate"),
            ("chaos.command.Dependency.exception_rate", "often", "must be a number"),
            ("chaos.command.Dependency.exception_rate", True, "must be a number"),
            ("chaos.command.Dependency.latency_ms", -1, "latency_ms must be a finite number"),
            ("chaos.command.Dependency.latency_ms", "nan", "latency_ms must be a finite number"),
            ("chaos.command.Dependency.hang_ms", 0, "hang_ms must be a finite number > 0"),
            ("chaos.command.Dependency.result_rate", 1, "hystrixpy.chaos.set_result"),
        ],
    )
    def test_a_bad_name_or_value_names_it_and_changes_nothing(
        self, name: str, value: object, message: str
    ) -> None:
        """ValueError names the setting; neither chaos nor command settings change."""
        with pytest.raises(ValueError, match=re.escape(message)) as raised:
            hystrixpy.configure(
                {
                    "command.Dependency.execution_timeout_ms": 50,
                    "chaos.command.X.hang_rate": 1,
                    name: value,
                }
            )
        assert name in str(raised.value)
        assert chaos.settings("X") == FaultSettings()
        assert Dependency().properties.execution_timeout_ms == 1000

    def test_fault_rates_of_a_key_may_not_add_up_beyond_one(self) -> None:
        """A key's own rate and the default's other rates share one draw: their sum is checked."""
        hystrixpy.configure({"chaos.command.default.hang_rate": 0.5})
        with pytest.raises(ValueError, match=r"chaos settings of 'GetUser'.*must not exceed 1"):
            hystrixpy.configure({"chaos.command.GetUser.exception_rate": 0.6})
        with pytest.raises(ValueError, match="must not exceed 1"):
            chaos.set_result("default", 0, rate=0.6)
        assert chaos.settings("GetUser") == FaultSettings(hang_rate=0.5)

    def test_a_bad_command_property_leaves_chaos_as_it_was(self) -> None:
        """Chaos settings given with an invalid property are not installed either."""
        with pytest.raises(ValueError, match="execution_timeout_ms"):
            hystrixpy.configure(
                {
                    "chaos.command.Dependency.exception_rate": 1,
                    "command.Dependency.execution_timeout_ms": -5,
                }
            )
        assert chaos.settings("Dependency") == FaultSettings()

    def test_chaos_settings_alone_leave_command_configuration_alone(self) -> None:
        """Only chaos names: the command configuration is not touched (no re-resolution)."""
        version = registry.configuration().version
        hystrixpy.configure({"chaos.command.Dependency.latency_ms": 1})
        assert registry.configuration().version == version
        hystrixpy.configure(
            {"chaos.command.Dependency.latency_ms": 1, "command.X.circuit_breaker_enabled": "true"}
        )
        assert registry.configuration().version == version + 1

    def test_set_result_checks_its_arguments(self) -> None:
        """A key must be a non-empty string and the rate a number from 0 to 1."""
        with pytest.raises(ValueError, match="command_key"):
            chaos.set_result("", 1)
        with pytest.raises(ValueError, match="rate must be a number"):
            chaos.set_result("X", 1, rate=True)
        with pytest.raises(ValueError, match="result_rate must be a rate"):
            chaos.set_result("X", 1, rate=2)


class TestDraws:
    def test_a_seed_gives_the_exact_faults_of_its_random_sequence(self) -> None:
        """One draw per attempt: below the exception rate it raises, else run() is called."""
        inject(exception_rate=0.3)
        chaos.seed(42)
        outcomes = [Dependency().execute() for _ in range(40)]

        draws = random.Random(42)
        expected = ["fallback" if draws.random() < 0.3 else "ok" for _ in range(40)]
        assert outcomes == expected
        assert chaos.injected("Dependency")["exception"] == expected.count("fallback")
        assert Dependency.calls == expected.count("ok")

    def test_the_fault_rates_divide_one_draw(self) -> None:
        """Below hang_rate hangs, then exception_rate raises, then result_rate replaces."""
        hystrixpy.configure(
            {
                "command.Dependency.execution_timeout_ms": 100,
                "chaos.command.Dependency.hang_rate": 0.2,
                "chaos.command.Dependency.exception_rate": 0.3,
            }
        )
        chaos.set_result("Dependency", "replaced", rate=0.1)
        chaos.enable(seed=5)
        events = [Dependency() for _ in range(60)]
        with use_clock(InstantClock()):
            answers = [command.execute() for command in events]

        draws = random.Random(5)
        expected = []
        for _ in range(60):
            drawn = draws.random()
            expected.append(
                "hang"
                if drawn < 0.2
                else "exception"
                if drawn < 0.5
                else "result"
                if drawn < 0.6
                else "run"
            )
        got = [
            "hang"
            if E.TIMEOUT in c.execution_events
            else "exception"
            if E.FAILURE in c.execution_events
            else "result"
            if answer == "replaced"
            else "run"
            for c, answer in zip(events, answers, strict=True)
        ]
        assert got == expected

    def test_the_same_seed_repeats_the_same_run(self) -> None:
        """Two runs with one seed inject the same faults."""
        inject(exception_rate=0.5, latency_ms=1, latency_rate=0.5)

        def one_run() -> list[list[EventType]]:
            chaos.seed(9)
            commands = [Dependency() for _ in range(30)]
            for command in commands:
                command.execute()
            return [command.execution_events for command in commands]

        with use_clock(FakeClock(sleep_advances=True)):
            assert one_run() == one_run()


class TestFaults:
    def test_an_injected_exception_is_a_failure_like_a_genuine_one(self) -> None:
        """InjectedFault is a ConnectionError counted as FAILURE, with the fallback answering."""
        inject(exception_rate=1)
        command = Dependency()

        assert command.execute() == "fallback"
        assert Dependency.calls == 0
        assert command.execution_events == [E.FAILURE, E.FALLBACK_SUCCESS]
        error = command.failed_execution_exception
        assert isinstance(error, InjectedFault)
        assert isinstance(error, ConnectionError)
        assert hystrixpy.command_metrics("Dependency").health_counts().error_count == 1

    def test_without_fallback_the_caller_gets_the_usual_error(self) -> None:
        """No fallback: HystrixRuntimeError caused by the InjectedFault, as for a real failure."""

        class Bare(Command[str]):
            group_key = "Chaos"
            properties = CommandProperties(execution_isolation_strategy=SEMAPHORE)

            def run(self) -> str:
                return "ok"

        hystrixpy.configure({"chaos.command.Bare.exception_rate": 1})
        chaos.enable()
        with pytest.raises(HystrixRuntimeError) as raised:
            Bare().execute()
        assert isinstance(raised.value.__cause__, InjectedFault)

    def test_in_thread_isolation_too(self, fake_clock: FakeClock) -> None:
        """On a pool worker an injected exception is a FAILURE as well."""
        hystrixpy.configure({"chaos.command.Threaded.exception_rate": 1})
        chaos.enable()
        command = Threaded()
        assert command.execute() == "fallback"
        assert command.execution_events == [E.FAILURE, E.FALLBACK_SUCCESS]

    def test_latency_counts_in_the_execution_time(self, sleepy_clock: FakeClock) -> None:
        """30 ms of latency is slept on hystrixpy's clock before run(), and measured."""
        inject(latency_ms=30)
        command = Dependency()

        assert command.execute() == "ok"
        assert sleepy_clock.sleeps == [0.03]
        assert command.execution_time_ms == 30
        assert chaos.injected("Dependency")["latency"] == 1

    def test_latency_beyond_the_timeout_is_a_timeout(self, sleepy_clock: FakeClock) -> None:
        """On the caller's thread, latency past the deadline makes the execution a TIMEOUT."""
        hystrixpy.configure({"command.Dependency.execution_timeout_ms": 100})
        inject(latency_ms=150)
        command = Dependency()

        assert command.execute() == "fallback"
        assert command.execution_events == [E.TIMEOUT, E.FALLBACK_SUCCESS]

    def test_a_hang_lasts_until_the_deadline(self, fake_clock: FakeClock) -> None:
        """A hung attempt on the caller's thread ends at its deadline as a TIMEOUT."""
        hystrixpy.configure({"command.Dependency.execution_timeout_ms": 100})
        inject(hang_rate=1)
        command = Dependency()
        caller = Caller(command.execute)
        wait_until(lambda: chaos.injected("Dependency")["hang"] == 1)

        fake_clock.advance(0.1)

        assert caller.outcome() == "fallback"
        assert command.execution_events == [E.TIMEOUT, E.FALLBACK_SUCCESS]
        assert isinstance(command.failed_execution_exception, InjectedHang)
        assert command.execution_time_ms == 100
        assert Dependency.calls == 0

    def test_without_a_deadline_a_hang_lasts_hang_ms(self, fake_clock: FakeClock) -> None:
        """With timeouts off, hang_ms bounds the hang."""
        hystrixpy.configure({"command.Dependency.execution_timeout_enabled": False})
        inject(hang_rate=1, hang_ms=250)
        command = Dependency()
        caller = Caller(command.execute)
        wait_until(lambda: chaos.injected("Dependency")["hang"] == 1)

        fake_clock.advance(0.25)

        assert caller.outcome() == "fallback"
        assert command.execution_time_ms == 250

    def test_disabling_ends_a_hang_at_once(self, fake_clock: FakeClock) -> None:
        """chaos.disable() lets every hung attempt go, without any time passing."""
        hystrixpy.configure({"command.Dependency.execution_timeout_enabled": False})
        inject(hang_rate=1)
        callers = [Caller(Dependency().execute) for _ in range(3)]
        wait_until(lambda: chaos.injected("Dependency")["hang"] == 3)

        chaos.disable()

        assert [caller.outcome() for caller in callers] == ["fallback"] * 3

    def test_a_replacement_result_is_returned_instead_of_run(self) -> None:
        """set_result() answers for run(), as a success; clear_result() ends it."""
        chaos.set_result("Dependency", "from chaos")
        chaos.enable()
        command = Dependency()

        assert command.execute() == "from chaos"
        assert command.execution_events == [E.SUCCESS]
        assert Dependency.calls == 0
        chaos.clear_result("Dependency")
        assert Dependency().execute() == "ok"

    def test_a_key_without_faults_is_not_wrapped(self) -> None:
        """Enabled chaos hands run() back as it is to a key with nothing to inject."""

        def run() -> str:
            return "ok"

        chaos.enable()
        assert chaos.injector.wrap("Nothing", run) is run


class TestRetries:
    def test_every_attempt_gets_its_own_draw(self) -> None:
        """Injected per attempt: each failed attempt is a RETRY, the last one a FAILURE."""
        hystrixpy.configure({"chaos.command.Retried.exception_rate": 1})
        chaos.enable()
        command = Retried()

        assert command.execute() == "fallback"
        assert command.execution_events == [E.RETRY, E.RETRY, E.FAILURE, E.FALLBACK_SUCCESS]
        assert chaos.injected("Retried")["exception"] == 3

    def test_a_retry_can_pass_an_injected_fault(self) -> None:
        """With a seed whose first draw raises and second does not, the retry succeeds."""
        hystrixpy.configure({"chaos.command.Retried.exception_rate": 0.5})
        seed = next(s for s in range(100) if _draws(s, 2) == [True, False])
        chaos.enable(seed=seed)
        command = Retried()

        assert command.execute() == "ok"
        assert command.execution_events == [E.RETRY, E.SUCCESS]

    def test_disabling_between_attempts_spares_the_next_one(self) -> None:
        """The switch is read per attempt: after disable() the retry calls run()."""

        def stop_chaos(error: Exception, attempt: int, delay_ms: float) -> None:
            chaos.disable()

        class Stopping(Dependency):
            retry = RetryPolicy(max_attempts=3, initial_delay_ms=0, on_retry=stop_chaos)

        hystrixpy.configure({"chaos.command.Stopping.exception_rate": 1})
        chaos.enable()
        command = Stopping()
        assert command.execute() == "ok"
        assert command.execution_events == [E.RETRY, E.SUCCESS]


def _draws(seed: int, count: int, rate: float = 0.5) -> list[bool]:
    draws = random.Random(seed)
    return [draws.random() < rate for _ in range(count)]


class TestHotPath:
    def test_disabled_chaos_is_never_asked(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """While chaos is off the engine does not call into it, whatever is configured."""

        def refuse(*args: Any) -> Callable[[], Any]:
            raise AssertionError("wrap() called while chaos is off")

        monkeypatch.setattr(type(chaos.injector), "wrap", refuse)
        hystrixpy.configure({"chaos.command.Dependency.exception_rate": 1})
        assert Dependency().execute() == "ok"
        assert Threaded().execute() == "ok"


PAGE = Path(__file__).resolve().parent.parent / "docs" / "chaos.md"
_PYTHON_BLOCK = re.compile(r"^```python\n(?P<body>.*?)^```$", re.MULTILINE | re.DOTALL)


class TestChaosPage:
    def test_every_example_runs_and_its_tests_pass(self) -> None:
        """The page's python blocks run in order in one namespace; the tests they define pass."""
        text = PAGE.read_text()
        blocks = [
            (text.count("\n", 0, match.start("body")), match.group("body"))
            for match in _PYTHON_BLOCK.finditer(text)
        ]
        assert len(blocks) >= 5
        namespace: dict[str, Any] = {"__name__": "docs_chaos"}
        with use_clock(FakeClock(sleep_advances=True)):
            for first_line, body in blocks:
                exec(compile("\n" * first_line + body, str(PAGE), "exec"), namespace)
        tests = [value for name, value in namespace.items() if name.startswith("test_")]
        assert len(tests) >= 2
        for test in tests:
            hystrixpy.reset()
            test()
