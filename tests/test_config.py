"""Tests for hystrixpy.config through hystrixpy.configure: names, values, precedence, changes."""

from __future__ import annotations

import logging
import re
import threading
from concurrent.futures import Future

import pytest

import hystrixpy
from hystrixpy import (
    Command,
    CommandProperties,
    IsolationStrategy,
    RejectedError,
    ThreadPoolProperties,
)
from hystrixpy.config import Configuration
from hystrixpy.registry import configuration
from hystrixpy.testing import FakeClock

SEMAPHORE = IsolationStrategy.SEMAPHORE
TIMEOUT_NAME = "execution.isolation.thread.timeoutInMilliseconds"


class RemainingTime(Command[int]):
    """Reports the milliseconds left before its deadline: with fake time still, its timeout."""

    group_key = "ConfigTests"
    properties = CommandProperties(execution_isolation_strategy=SEMAPHORE)

    def run(self) -> int:
        remaining = self.remaining_time()
        assert remaining is not None
        return round(remaining * 1000)


class DeclaresTimeout(RemainingTime):
    properties = CommandProperties(execution_isolation_strategy=SEMAPHORE, execution_timeout_ms=500)


class DeclaresDefaultTimeout(RemainingTime):
    properties = CommandProperties(
        execution_isolation_strategy=SEMAPHORE, execution_timeout_ms=1000
    )


class RunsOrFallsBack(Command[str]):
    """Answers "ran" from run() and "fallback" when short-circuited."""

    group_key = "ConfigTests"
    properties = CommandProperties(execution_isolation_strategy=SEMAPHORE)

    def run(self) -> str:
        return "ran"

    def get_fallback(self) -> str:
        return "fallback"


class DeclaresNotForcedOpen(RunsOrFallsBack):
    properties = CommandProperties(
        execution_isolation_strategy=SEMAPHORE, circuit_breaker_force_open=False
    )


def timeout_of(command_key: str) -> int:
    """The timeout, in milliseconds, that the next execution of ``command_key`` gets."""
    return RemainingTime(command_key=command_key).execute()


def _hystrix_log_lines(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == "hystrixpy" and text in record.getMessage()
    ]


def _blocked_until(release: threading.Event) -> None:
    release.wait(5)


class TestConfigureNames:
    def test_hystrix_name_for_one_command_key(self, fake_clock: FakeClock) -> None:
        """hystrix.command.<Key>.<name> changes that command key only."""
        hystrixpy.configure({f"hystrix.command.Tuned.{TIMEOUT_NAME}": 250})

        assert timeout_of("Tuned") == 250
        assert timeout_of("Untuned") == 1000

    def test_hystrix_name_for_every_command(self, fake_clock: FakeClock) -> None:
        """hystrix.command.default.<name> changes every command key."""
        hystrixpy.configure({f"hystrix.command.default.{TIMEOUT_NAME}": 2000})

        assert timeout_of("One") == 2000
        assert timeout_of("Two") == 2000

    def test_snake_case_names(self, fake_clock: FakeClock) -> None:
        """command.<key>.<field> and command.default.<field> work as the Hystrix names do."""
        hystrixpy.configure(
            {
                "command.default.execution_timeout_ms": 3000,
                "command.Tuned.execution_timeout_ms": 400,
            }
        )

        assert timeout_of("Tuned") == 400
        assert timeout_of("Other") == 3000

    @pytest.mark.parametrize(
        "name",
        [
            f"hystrix.command.my.dotted.key.{TIMEOUT_NAME}",
            "command.my.dotted.key.execution_timeout_ms",
        ],
    )
    def test_command_keys_may_contain_dots(self, fake_clock: FakeClock, name: str) -> None:
        """A command key with dots in it is matched as a whole."""
        hystrixpy.configure({name: 700})

        assert timeout_of("my.dotted.key") == 700
        assert timeout_of("my") == 1000

    @pytest.mark.parametrize("value", ["500", " 500 ", 500])
    def test_integer_values_may_be_strings(self, fake_clock: FakeClock, value: object) -> None:
        """An integer property accepts "500" as a .properties file would give it."""
        hystrixpy.configure({f"hystrix.command.default.{TIMEOUT_NAME}": value})

        assert timeout_of("Any") == 500

    @pytest.mark.parametrize("value", ["true", "TRUE", " True ", True])
    def test_boolean_values_may_be_strings(self, fake_clock: FakeClock, value: object) -> None:
        """A boolean property accepts "true" in any case."""
        hystrixpy.configure({"hystrix.command.RunsOrFallsBack.circuitBreaker.forceOpen": value})

        command = RunsOrFallsBack()
        assert command.execute() == "fallback"
        assert command.is_response_short_circuited

    def test_false_string_turns_a_boolean_off(self, fake_clock: FakeClock) -> None:
        """ "false" switches off a boolean the class had switched on."""

        class OpenByDefault(RunsOrFallsBack):
            properties = CommandProperties(
                execution_isolation_strategy=SEMAPHORE, circuit_breaker_force_open=True
            )

        assert OpenByDefault().execute() == "fallback"

        hystrixpy.configure({"hystrix.command.OpenByDefault.circuitBreaker.forceOpen": "false"})

        assert OpenByDefault().execute() == "ran"

    @pytest.mark.parametrize("value", ["SEMAPHORE", "semaphore", SEMAPHORE])
    def test_isolation_strategy_may_be_a_string(self, fake_clock: FakeClock, value: object) -> None:
        """execution.isolation.strategy accepts "SEMAPHORE": run() then runs on the caller."""
        ran_on: list[int] = []

        class WhereItRuns(Command[None]):
            group_key = "ConfigIsolationGroup"

            def run(self) -> None:
                ran_on.append(threading.get_ident())

        WhereItRuns().execute()
        hystrixpy.configure({"hystrix.command.WhereItRuns.execution.isolation.strategy": value})
        command = WhereItRuns()
        command.execute()

        assert ran_on[0] != threading.get_ident()
        assert ran_on[1] == threading.get_ident()
        assert not command.is_executed_in_thread

    def test_thread_pool_key_override_may_be_configured(self, fake_clock: FakeClock) -> None:
        """threadPoolKeyOverride moves a command's run() onto the named pool's workers."""

        class WhichPool(Command[str]):
            group_key = "ConfigOverrideGroup"

            def run(self) -> str:
                return threading.current_thread().name

        assert WhichPool().execute().startswith("hystrix-ConfigOverrideGroup-")

        hystrixpy.configure(
            {"hystrix.command.WhichPool.threadPoolKeyOverride": "ConfigOverridePool"}
        )

        assert WhichPool().execute().startswith("hystrix-ConfigOverridePool-")

    def test_none_removes_an_override(self, fake_clock: FakeClock) -> None:
        """Configuring None for a name puts back what applied before the override."""
        hystrixpy.configure({f"hystrix.command.DeclaresTimeout.{TIMEOUT_NAME}": 250})
        assert DeclaresTimeout().execute() == 250

        hystrixpy.configure({f"hystrix.command.DeclaresTimeout.{TIMEOUT_NAME}": None})

        assert DeclaresTimeout().execute() == 500

    def test_none_removes_a_global_default(self, fake_clock: FakeClock) -> None:
        """A global default set to None gives way to the library default again."""
        hystrixpy.configure({"command.default.execution_timeout_ms": 250})
        hystrixpy.configure({"command.default.execution_timeout_ms": None})

        assert timeout_of("Any") == 1000

    def test_none_for_a_name_never_set_is_harmless(self, fake_clock: FakeClock) -> None:
        """Removing an override that does not exist changes nothing and raises nothing."""
        hystrixpy.configure({"command.Tuned.execution_timeout_ms": 300})

        hystrixpy.configure(
            {"command.Tuned.circuit_breaker_force_open": None, "threadpool.P.core_size": None}
        )

        assert timeout_of("Tuned") == 300

    def test_removing_one_override_keeps_the_others(self, fake_clock: FakeClock) -> None:
        """None removes only the property named, not the key's other overrides."""
        hystrixpy.configure(
            {
                "command.RunsOrFallsBack.circuit_breaker_force_open": True,
                "command.RunsOrFallsBack.execution_timeout_ms": 300,
            }
        )

        hystrixpy.configure({"command.RunsOrFallsBack.execution_timeout_ms": None})

        assert RunsOrFallsBack().execute() == "fallback"


class TestPrecedence:
    def test_library_default_when_nothing_is_set(self, fake_clock: FakeClock) -> None:
        """With no configuration and nothing declared, Hystrix's 1000 ms timeout applies."""
        assert timeout_of("Plain") == 1000

    def test_global_default_beats_library_default(self, fake_clock: FakeClock) -> None:
        """A global default override replaces the library default."""
        hystrixpy.configure({"command.default.execution_timeout_ms": 2000})

        assert timeout_of("Plain") == 2000

    def test_class_properties_beat_global_default(self, fake_clock: FakeClock) -> None:
        """A field the class set wins over a global default for that field."""
        hystrixpy.configure({"command.default.execution_timeout_ms": 2000})

        assert DeclaresTimeout().execute() == 500

    def test_class_set_to_the_library_default_still_beats_global_default(
        self, fake_clock: FakeClock
    ) -> None:
        """A class that names a field with the library default keeps it over a global default."""
        hystrixpy.configure({"command.default.execution_timeout_ms": 2000})

        assert DeclaresDefaultTimeout().execute() == 1000

    def test_per_key_override_beats_class_properties(self, fake_clock: FakeClock) -> None:
        """An override for the command key wins over the class and the global default."""
        hystrixpy.configure(
            {
                "command.default.execution_timeout_ms": 2000,
                "command.DeclaresTimeout.execution_timeout_ms": 300,
            }
        )

        assert DeclaresTimeout().execute() == 300

    def test_per_key_override_beats_global_default(self, fake_clock: FakeClock) -> None:
        """An override for the key wins over a global default, whatever the order given."""
        hystrixpy.configure({"command.Plain.execution_timeout_ms": 300})
        hystrixpy.configure({"command.default.execution_timeout_ms": 2000})

        assert timeout_of("Plain") == 300

    def test_global_default_reaches_only_commands_that_did_not_set_the_field(
        self, fake_clock: FakeClock
    ) -> None:
        """A global force_open opens commands that left it unset, not those that set it."""
        hystrixpy.configure({"hystrix.command.default.circuitBreaker.forceOpen": "true"})

        assert RunsOrFallsBack().execute() == "fallback"
        assert DeclaresNotForcedOpen().execute() == "ran"

    def test_global_default_still_reaches_the_fields_a_class_did_not_set(
        self, fake_clock: FakeClock
    ) -> None:
        """A class that set some fields still takes the global default for the others."""
        hystrixpy.configure({"command.default.circuit_breaker_force_open": True})

        class SetsOnlyTimeout(RunsOrFallsBack):
            properties = CommandProperties(
                execution_isolation_strategy=SEMAPHORE, execution_timeout_ms=500
            )

        assert SetsOnlyTimeout().execute() == "fallback"

    def test_per_key_pool_override_beats_declared_and_default(self) -> None:
        """Pool properties follow the same order: pool key, declared, global default, library."""
        hystrixpy.configure(
            {"threadpool.default.core_size": 5, "threadpool.default.keep_alive_time_minutes": 3}
        )
        declared = ThreadPoolProperties(core_size=3, keep_alive_time_minutes=1)

        declared_pool = hystrixpy.thread_pool("ConfigPrecedencePoolA", declared)
        plain_pool = hystrixpy.thread_pool("ConfigPrecedencePoolB")
        assert declared_pool.properties.core_size == 3

        hystrixpy.configure({"threadpool.ConfigPrecedencePoolA.core_size": 4})

        assert hystrixpy.thread_pool("ConfigPrecedencePoolA") is declared_pool
        assert declared_pool.properties.core_size == 4
        assert declared_pool.properties.keep_alive_time_minutes == 1
        assert plain_pool.properties.core_size == 5
        assert plain_pool.properties.keep_alive_time_minutes == 3
        assert plain_pool.properties.maximum_size == 10


class TestIgnoredNames:
    @pytest.mark.parametrize(
        "name",
        [
            "hystrix.command.default.execution.isolation.thread.interruptOnTimeout",
            "hystrix.command.SomeKey.execution.isolation.thread.interruptOnFutureCancel",
            "hystrix.command.default.execution.isolation.thread.interruptOnCancel",
            "hystrix.collapser.default.maxRequestsInBatch",
            "hystrix.collapser.SomeCollapser.timerDelayInMilliseconds",
        ],
    )
    def test_accepted_ignored_and_logged_once(
        self, fake_clock: FakeClock, caplog: pytest.LogCaptureFixture, name: str
    ) -> None:
        """A Hystrix name with no meaning in Python is accepted, changes nothing, and logs once."""
        caplog.set_level(logging.INFO, logger="hystrixpy")

        hystrixpy.configure({name: "false"})
        hystrixpy.configure({name: "true"})

        lines = _hystrix_log_lines(caplog, name)
        assert len(lines) == 1
        assert "config_name_ignored" in lines[0]
        assert configuration().overrides() == []
        assert timeout_of("SomeKey") == 1000

    def test_ignored_names_apply_alongside_real_ones(self, fake_clock: FakeClock) -> None:
        """An ignored name in a batch does not stop the other names from applying."""
        hystrixpy.configure(
            {
                "hystrix.command.default.execution.isolation.thread.interruptOnTimeout": "true",
                f"hystrix.command.default.{TIMEOUT_NAME}": 600,
            }
        )

        assert timeout_of("Any") == 600

    def test_each_ignored_name_is_logged_separately(self, caplog: pytest.LogCaptureFixture) -> None:
        """Two different ignored names are each logged once."""
        caplog.set_level(logging.INFO, logger="hystrixpy")

        hystrixpy.configure(
            {
                "hystrix.command.A.execution.isolation.thread.interruptOnTimeout": "true",
                "hystrix.command.B.execution.isolation.thread.interruptOnTimeout": "true",
            }
        )

        assert len(_hystrix_log_lines(caplog, "config_name_ignored")) == 2

    @pytest.mark.parametrize(
        "name",
        [
            "hystrix.plugin.HystrixCommandExecutionHook.implementation",
            "hystrix.plugin.HystrixConcurrencyStrategy.implementation",
            "hystrix.plugin.HystrixDynamicProperties.implementation",
            "hystrix.plugin.HystrixEventNotifier.implementation",
            "hystrix.plugin.HystrixMetricsPublisher.implementation",
            "hystrix.plugin.HystrixPropertiesStrategy.implementation",
            "hystrix.stream.maxConcurrentConnections",
            "hystrix.stream.defaultMetricListenerQueueSize",
            "hystrix.stream.dashboard.intervalInMilliseconds",
            "hystrix.stream.utilization.intervalInMilliseconds",
            "hystrix.stream.config.intervalInMilliseconds",
            "hystrix.config.stream.maxConcurrentConnections",
            "hystrix.requests.stream.maxConcurrentConnections",
            "hystrix.timer.threadpool.default.coreSize",
        ],
    )
    def test_global_hystrix_names_are_accepted_ignored_and_logged_once(
        self, caplog: pytest.LogCaptureFixture, name: str
    ) -> None:
        """Hystrix's plugin, stream and timer names are accepted, change nothing, and log once."""
        caplog.set_level(logging.INFO, logger="hystrixpy")

        hystrixpy.configure({name: "com.example.Custom"})
        hystrixpy.configure({name: "5"})

        lines = _hystrix_log_lines(caplog, name)
        assert len(lines) == 1
        assert "config_name_ignored" in lines[0]
        assert configuration().overrides() == []

    def test_stream_names_point_to_the_streams_own_parameters(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """The log line for an ignored stream name says where the stream is configured."""
        caplog.set_level(logging.INFO, logger="hystrixpy")

        hystrixpy.configure({"hystrix.stream.maxConcurrentConnections": 5})

        [line] = _hystrix_log_lines(caplog, "hystrix.stream.maxConcurrentConnections")
        assert "max_connections" in line

    def test_a_whole_hystrix_properties_file_applies(self, fake_clock: FakeClock) -> None:
        """A Hystrix file mixing global, command, pool and collapser names is taken as a whole."""
        hystrixpy.configure(
            {
                "hystrix.plugin.HystrixCommandExecutionHook.implementation": "com.example.Hook",
                "hystrix.stream.maxConcurrentConnections": "20",
                "hystrix.stream.dashboard.intervalInMilliseconds": "1000",
                "hystrix.timer.threadpool.default.coreSize": "4",
                "hystrix.collapser.default.maxRequestsInBatch": "50",
                f"hystrix.command.default.{TIMEOUT_NAME}": "700",
                "hystrix.threadpool.default.coreSize": "12",
            }
        )

        assert timeout_of("Any") == 700
        assert hystrixpy.thread_pool("AnyPool").properties.core_size == 12

    @pytest.mark.parametrize(
        "name",
        [
            "hystrix.plugin.HystrixCommandExecutionHook.implementations",
            "hystrix.plugin.HystrixWidget.implementation",
            "hystrix.plugin.HystrixEventNotifier",
            "hystrix.stream.maxConcurrentConnection",
            "hystrix.stream.dashboard.interval",
            "hystrix.timer.threadpool.Other.coreSize",
            "hystrix.timer.threadpool.default.maximumSize",
            "hystrix.metrics.stream.maxConcurrentConnections",
        ],
    )
    def test_invented_global_names_are_rejected(self, name: str) -> None:
        """Global names Hystrix never had are still a ValueError naming them."""
        with pytest.raises(ValueError, match=re.escape(name)):
            hystrixpy.configure({name: "5"})

    def test_unknown_collapser_property_is_rejected(self) -> None:
        """A collapser property Hystrix never had is an error, as for commands."""
        name = "hystrix.collapser.default.maxRequestsInBatchh"

        with pytest.raises(ValueError, match="maxRequestsInBatchh"):
            hystrixpy.configure({name: 10})


class TestConfigureErrors:
    @pytest.mark.parametrize(
        "name",
        [
            "hystrix.command.default.execution.isolation.thread.timeoutInMillis",
            "hystrix.command.default",
            "hystrix.command",
            "hystrix.widget.default.coreSize",
            "hystrix.threadpool.P.execution.isolation.thread.interruptOnTimeout",
            f"hystrix.threadpool.P.{TIMEOUT_NAME}",
            "command.default.execution_timeout",
            "command.execution_timeout_ms",
            "pool.P.core_size",
            "threadpool.P.execution_timeout_ms",
            "executionTimeout",
        ],
    )
    def test_unknown_names_raise_naming_the_name(self, name: str) -> None:
        """A name that is neither a Hystrix nor a snake_case name raises ValueError naming it."""
        with pytest.raises(ValueError) as raised:
            hystrixpy.configure({name: 1})

        assert name in str(raised.value)
        assert configuration().overrides() == []

    def test_unknown_snake_case_property_lists_the_known_ones(self) -> None:
        """A misspelt snake_case property gets an error that lists the right names."""
        with pytest.raises(ValueError) as raised:
            hystrixpy.configure({"threadpool.P.coresize": 2})

        message = str(raised.value)
        assert "'coresize'" in message
        assert "core_size" in message

    @pytest.mark.parametrize(
        ("name", "value"),
        [
            (f"hystrix.command.default.{TIMEOUT_NAME}", "-5"),
            (f"hystrix.command.default.{TIMEOUT_NAME}", "abc"),
            (f"hystrix.command.default.{TIMEOUT_NAME}", "1.5"),
            ("hystrix.command.default.circuitBreaker.forceOpen", "yes"),
            ("hystrix.command.default.circuitBreaker.errorThresholdPercentage", 101),
            ("hystrix.command.default.circuitBreaker.errorThresholdPercentage", "-1"),
            ("hystrix.command.default.execution.isolation.strategy", "FIBER"),
            ("hystrix.command.default.execution.isolation.strategy", 1),
            ("command.default.execution_timeout_ms", True),
            ("command.default.execution_timeout_ms", 2.5),
            ("command.default.fallback_enabled", 1),
            ("command.Key.thread_pool_key_override", 7),
            ("threadpool.P.core_size", 0),
            ("hystrix.threadpool.P.coreSize", "0"),
            ("hystrix.threadpool.P.maxQueueSize", -2),
        ],
    )
    def test_bad_values_raise_naming_the_name_and_the_value(self, name: str, value: object) -> None:
        """A value of the wrong kind or out of range raises ValueError naming name and value."""
        with pytest.raises(ValueError) as raised:
            hystrixpy.configure({name: value})

        message = str(raised.value)
        assert name in message
        assert f"got {value!r}" in message or f"got {str(value).strip()}" in message
        assert configuration().overrides() == []

    def test_a_bad_value_applies_nothing(self, fake_clock: FakeClock) -> None:
        """When one entry is bad, none of the entries in the same call take effect."""
        with pytest.raises(ValueError):
            hystrixpy.configure(
                {
                    "command.default.execution_timeout_ms": 250,
                    "command.RunsOrFallsBack.circuit_breaker_force_open": True,
                    "threadpool.default.core_size": "many",
                }
            )

        assert timeout_of("Any") == 1000
        assert RunsOrFallsBack().execute() == "ran"
        assert configuration().overrides() == []

    def test_a_failed_call_keeps_earlier_overrides(self, fake_clock: FakeClock) -> None:
        """A rejected call leaves the overrides of earlier calls exactly as they were."""
        hystrixpy.configure({"command.default.execution_timeout_ms": 250})

        with pytest.raises(ValueError):
            hystrixpy.configure(
                {
                    "command.default.execution_timeout_ms": None,
                    "command.Other.execution_timeout_ms": 300,
                    "command.default.no_such_property": 1,
                }
            )

        assert timeout_of("Any") == 250
        assert timeout_of("Other") == 250

    def test_invalid_combination_is_rejected_at_configure_time(self, fake_clock: FakeClock) -> None:
        """Buckets that do not divide the window are refused by configure(), naming both values."""
        with pytest.raises(ValueError) as raised:
            hystrixpy.configure({"command.Key.metrics_rolling_stats_num_buckets": 3})

        message = str(raised.value)
        assert "metrics_rolling_stats_num_buckets=3" in message
        assert "metrics_rolling_stats_time_ms=10000" in message
        assert configuration().overrides() == []

    def test_invalid_combination_across_levels_is_rejected(self, fake_clock: FakeClock) -> None:
        """A per-key window that the global bucket count does not divide is refused."""
        hystrixpy.configure(
            {
                "command.default.metrics_rolling_stats_time_ms": 5000,
                "command.default.metrics_rolling_stats_num_buckets": 5,
            }
        )

        with pytest.raises(ValueError, match=r"metrics_rolling_stats_num_buckets=5"):
            hystrixpy.configure({"command.Key.metrics_rolling_stats_time_ms": 10002})

        RemainingTime(command_key="Key").execute()
        assert hystrixpy.command_metrics("Key").rolling_window_ms == 5000

    def test_an_invalid_combination_applies_nothing(self, fake_clock: FakeClock) -> None:
        """A call whose entries together make a bad window applies none of its entries."""
        with pytest.raises(ValueError):
            hystrixpy.configure(
                {
                    "command.default.execution_timeout_ms": 250,
                    "command.default.metrics_rolling_stats_num_buckets": 3,
                }
            )

        assert timeout_of("Any") == 1000
        assert configuration().overrides() == []

    def test_pool_window_combination_is_rejected(self) -> None:
        """A pool's bucket count must divide its window, checked when configured."""
        with pytest.raises(ValueError, match=r"metrics_rolling_stats_num_buckets=3"):
            hystrixpy.configure({"hystrix.threadpool.P.metrics.rollingStats.numBuckets": "3"})

    def test_override_clashing_with_a_used_class_is_rejected(self, fake_clock: FakeClock) -> None:
        """An override that makes a running command's properties invalid is refused up front."""

        class NineBuckets(RemainingTime):
            properties = CommandProperties(
                execution_isolation_strategy=SEMAPHORE,
                metrics_rolling_stats_time_ms=9000,
                metrics_rolling_stats_num_buckets=9,
            )

        NineBuckets().execute()

        with pytest.raises(ValueError, match=r"metrics_rolling_stats_num_buckets=9"):
            hystrixpy.configure({"command.NineBuckets.metrics_rolling_stats_time_ms": 10000})

        assert NineBuckets().execute() == 1000
        assert hystrixpy.command_metrics("NineBuckets").rolling_window_ms == 9000

    def test_global_default_does_not_clash_with_a_class_that_set_the_field(
        self, fake_clock: FakeClock
    ) -> None:
        """A global window the class overrides itself is no clash, and is accepted."""

        class NineBucketsToo(RemainingTime):
            properties = CommandProperties(
                execution_isolation_strategy=SEMAPHORE,
                metrics_rolling_stats_time_ms=9000,
                metrics_rolling_stats_num_buckets=9,
            )

        NineBucketsToo().execute()

        hystrixpy.configure({"command.default.metrics_rolling_stats_time_ms": 20000})

        assert hystrixpy.command_metrics("NineBucketsToo").rolling_window_ms == 9000
        RemainingTime(command_key="Plain").execute()
        assert hystrixpy.command_metrics("Plain").rolling_window_ms == 20000

    def test_override_clashing_with_a_defined_class_is_rejected(self) -> None:
        """An override clashing with a defined command class fails at configure(), not at a call."""

        class EightBuckets(RemainingTime):
            properties = CommandProperties(
                execution_isolation_strategy=SEMAPHORE,
                metrics_rolling_stats_time_ms=8000,
                metrics_rolling_stats_num_buckets=8,
            )

        with pytest.raises(ValueError, match=r"metrics_rolling_stats_num_buckets=8"):
            hystrixpy.configure({"command.EightBuckets.metrics_rolling_stats_time_ms": 9990})

        assert EightBuckets().execute() == 1000

    def test_class_clashing_with_the_configuration_fails_when_defined(self) -> None:
        """A class whose properties clash with the configuration raises at its definition."""
        hystrixpy.configure({"command.Clashing.metrics_rolling_stats_time_ms": 10000})

        with pytest.raises(ValueError) as raised:

            class Clashing(RemainingTime):
                properties = CommandProperties(
                    execution_isolation_strategy=SEMAPHORE,
                    metrics_rolling_stats_time_ms=9000,
                    metrics_rolling_stats_num_buckets=9,
                )

        message = str(raised.value)
        assert "metrics_rolling_stats_num_buckets=9" in message
        assert "metrics_rolling_stats_time_ms=10000" in message


class TestChangesAtRunTime:
    def test_timeout_change_applies_to_the_next_execution(self, fake_clock: FakeClock) -> None:
        """A new timeout for a key already in use applies from its next execution."""
        assert timeout_of("Live") == 1000

        hystrixpy.configure({f"hystrix.command.Live.{TIMEOUT_NAME}": "250"})
        assert timeout_of("Live") == 250

        hystrixpy.configure({f"hystrix.command.Live.{TIMEOUT_NAME}": None})
        assert timeout_of("Live") == 1000

    def test_force_open_applies_to_the_next_execution(self, fake_clock: FakeClock) -> None:
        """Forcing the circuit open and closed again takes effect without a restart."""
        assert RunsOrFallsBack().execute() == "ran"

        hystrixpy.configure({"hystrix.command.RunsOrFallsBack.circuitBreaker.forceOpen": "true"})
        command = RunsOrFallsBack()
        assert command.execute() == "fallback"
        assert command.is_response_short_circuited
        assert hystrixpy.circuit_breaker("RunsOrFallsBack").is_open()

        hystrixpy.configure({"hystrix.command.RunsOrFallsBack.circuitBreaker.forceOpen": "false"})
        assert RunsOrFallsBack().execute() == "ran"

    def test_disabling_the_breaker_applies_to_the_next_execution(
        self, fake_clock: FakeClock
    ) -> None:
        """circuitBreaker.enabled=false removes the breaker, so forceOpen no longer matters."""
        hystrixpy.configure({"hystrix.command.RunsOrFallsBack.circuitBreaker.forceOpen": True})
        assert RunsOrFallsBack().execute() == "fallback"

        hystrixpy.configure({"hystrix.command.RunsOrFallsBack.circuitBreaker.enabled": "false"})

        assert RunsOrFallsBack().execute() == "ran"
        assert isinstance(
            hystrixpy.circuit_breaker("RunsOrFallsBack"), hystrixpy.NoOpCircuitBreaker
        )

    def test_semaphore_size_change_applies_to_the_next_execution(
        self, fake_clock: FakeClock
    ) -> None:
        """Shrinking the execution semaphore to zero rejects the next execution."""
        assert RunsOrFallsBack().execute() == "ran"

        name = "execution.isolation.semaphore.maxConcurrentRequests"
        hystrixpy.configure({f"hystrix.command.RunsOrFallsBack.{name}": 0})
        command = RunsOrFallsBack()

        assert command.execute() == "fallback"
        assert command.is_response_semaphore_rejected

    def test_reset_forgets_every_override(self, fake_clock: FakeClock) -> None:
        """hystrixpy.reset() drops all overrides, so defaults and class values apply again."""
        hystrixpy.configure(
            {
                "command.default.execution_timeout_ms": 250,
                "command.DeclaresTimeout.execution_timeout_ms": 300,
                "hystrix.command.RunsOrFallsBack.circuitBreaker.forceOpen": "true",
                "threadpool.default.core_size": 2,
            }
        )

        hystrixpy.reset()

        assert configuration().overrides() == []
        assert timeout_of("Any") == 1000
        assert DeclaresTimeout().execute() == 500
        assert RunsOrFallsBack().execute() == "ran"
        assert hystrixpy.thread_pool("ConfigAfterReset").properties.core_size == 10

    def test_reset_logs_ignored_names_again(self, caplog: pytest.LogCaptureFixture) -> None:
        """After reset(), an ignored name is logged again the next time it is configured."""
        caplog.set_level(logging.INFO, logger="hystrixpy")
        name = "hystrix.collapser.default.maxRequestsInBatch"

        hystrixpy.configure({name: 5})
        hystrixpy.reset()
        hystrixpy.configure({name: 5})

        assert len(_hystrix_log_lines(caplog, name)) == 2


class TestThreadPoolConfiguration:
    def test_core_size_resizes_a_pool_in_use(self) -> None:
        """hystrix.threadpool.<Key>.coreSize grows a live pool so more tasks run at once."""
        hystrixpy.configure({"hystrix.threadpool.ConfigResizePool.coreSize": 1})
        release = threading.Event()
        futures: list[Future[None]] = []
        try:
            pool = hystrixpy.thread_pool("ConfigResizePool")
            futures.append(pool.submit(_blocked_until, release))
            with pytest.raises(RejectedError):
                pool.submit(_blocked_until, release)

            hystrixpy.configure({"hystrix.threadpool.ConfigResizePool.coreSize": "2"})
            resized = hystrixpy.thread_pool("ConfigResizePool")
            futures.append(resized.submit(_blocked_until, release))

            assert resized is pool
            assert resized.properties.core_size == 2
            with pytest.raises(RejectedError):
                resized.submit(_blocked_until, release)
        finally:
            release.set()
        for future in futures:
            assert future.result(5) is None

    def test_snake_case_pool_names(self) -> None:
        """threadpool.<Key>.core_size sets the pool's size like the Hystrix name."""
        hystrixpy.configure({"threadpool.ConfigSnakePool.core_size": 3})

        assert hystrixpy.thread_pool("ConfigSnakePool").properties.effective_maximum_size == 3

    def test_commands_use_the_resized_pool(self, fake_clock: FakeClock) -> None:
        """A command's pool grows when its pool key is configured, without a restart."""
        started = threading.Barrier(3)
        release = threading.Event()

        class OnSmallPool(Command[str]):
            group_key = "ConfigCommandPool"
            thread_pool_properties = ThreadPoolProperties(core_size=1)

            def run(self) -> str:
                started.wait(5)
                release.wait(5)
                return "ran"

            def get_fallback(self) -> str:
                return "fallback"

        futures: list[Future[str]] = []
        try:
            futures.append(OnSmallPool().queue())
            rejected = OnSmallPool()
            assert rejected.execute() == "fallback"
            assert rejected.is_response_thread_pool_rejected

            hystrixpy.configure({"hystrix.threadpool.ConfigCommandPool.coreSize": 2})
            futures.append(OnSmallPool().queue())
            started.wait(5)
        finally:
            release.set()
        assert [future.result(5) for future in futures] == ["ran", "ran"]

    def test_max_queue_size_cannot_change_at_run_time(self) -> None:
        """A live pool keeps the queue it was created with, whatever maxQueueSize says later."""
        hystrixpy.configure(
            {
                "hystrix.threadpool.ConfigQueuePool.coreSize": 1,
                "hystrix.threadpool.ConfigQueuePool.maxQueueSize": 1,
            }
        )
        release = threading.Event()
        futures: list[Future[None]] = []
        try:
            pool = hystrixpy.thread_pool("ConfigQueuePool")
            futures += [pool.submit(_blocked_until, release) for _ in range(2)]
            with pytest.raises(RejectedError):
                pool.submit(_blocked_until, release)

            hystrixpy.configure({"hystrix.threadpool.ConfigQueuePool.maxQueueSize": 10})
            pool = hystrixpy.thread_pool("ConfigQueuePool")

            with pytest.raises(RejectedError):
                pool.submit(_blocked_until, release)
        finally:
            release.set()
        for future in futures:
            assert future.result(5) is None

    def test_max_queue_size_stays_fixed_through_later_changes(self) -> None:
        """A maxQueueSize configured at run time stays ignored when other settings change later."""
        hystrixpy.configure(
            {
                "hystrix.threadpool.ConfigQueueLaterPool.coreSize": 1,
                "hystrix.threadpool.ConfigQueueLaterPool.maxQueueSize": 1,
            }
        )
        release = threading.Event()
        futures: list[Future[None]] = []
        try:
            pool = hystrixpy.thread_pool("ConfigQueueLaterPool")
            futures += [pool.submit(_blocked_until, release) for _ in range(2)]
            hystrixpy.configure({"hystrix.threadpool.ConfigQueueLaterPool.maxQueueSize": 10})
            hystrixpy.thread_pool("ConfigQueueLaterPool")

            hystrixpy.configure({"hystrix.threadpool.ConfigQueueLaterPool.keepAliveTimeMinutes": 2})
            pool = hystrixpy.thread_pool("ConfigQueueLaterPool")

            with pytest.raises(RejectedError):
                futures.append(pool.submit(_blocked_until, release))
        finally:
            release.set()
        for future in futures:
            assert future.result(5) is None

    def test_a_pool_without_a_queue_keeps_having_none(self) -> None:
        """A pool created with no queue does not gain one from a later maxQueueSize."""
        hystrixpy.configure({"threadpool.ConfigNoQueuePool.core_size": 1})
        release = threading.Event()
        futures: list[Future[None]] = []
        try:
            pool = hystrixpy.thread_pool("ConfigNoQueuePool")
            futures.append(pool.submit(_blocked_until, release))

            hystrixpy.configure({"threadpool.ConfigNoQueuePool.max_queue_size": 5})
            pool = hystrixpy.thread_pool("ConfigNoQueuePool")

            with pytest.raises(RejectedError):
                pool.submit(_blocked_until, release)
        finally:
            release.set()
        for future in futures:
            assert future.result(5) is None

    def test_queue_rejection_threshold_changes_at_run_time(self) -> None:
        """queueSizeRejectionThreshold, unlike maxQueueSize, applies to a live pool."""
        hystrixpy.configure(
            {
                "hystrix.threadpool.ConfigThresholdPool.coreSize": 1,
                "hystrix.threadpool.ConfigThresholdPool.maxQueueSize": 3,
                "hystrix.threadpool.ConfigThresholdPool.queueSizeRejectionThreshold": 1,
            }
        )
        release = threading.Event()
        futures: list[Future[None]] = []
        try:
            pool = hystrixpy.thread_pool("ConfigThresholdPool")
            futures += [pool.submit(_blocked_until, release) for _ in range(2)]
            with pytest.raises(RejectedError):
                pool.submit(_blocked_until, release)

            hystrixpy.configure(
                {"hystrix.threadpool.ConfigThresholdPool.queueSizeRejectionThreshold": 3}
            )
            pool = hystrixpy.thread_pool("ConfigThresholdPool")
            futures += [pool.submit(_blocked_until, release) for _ in range(2)]

            with pytest.raises(RejectedError):
                pool.submit(_blocked_until, release)
        finally:
            release.set()
        for future in futures:
            assert future.result(5) is None

    def test_override_clashing_with_a_live_pool_is_rejected(self) -> None:
        """An override that would make a live pool's declared window invalid is refused."""
        declared = ThreadPoolProperties(
            metrics_rolling_stats_time_ms=9000, metrics_rolling_stats_num_buckets=9
        )
        pool = hystrixpy.thread_pool("ConfigDeclaredPool", declared)

        with pytest.raises(ValueError, match=r"metrics_rolling_stats_num_buckets=9"):
            hystrixpy.configure(
                {
                    "hystrix.threadpool.ConfigDeclaredPool."
                    "metrics.rollingStats.timeInMilliseconds": 10000
                }
            )

        assert hystrixpy.thread_pool("ConfigDeclaredPool") is pool
        assert pool.properties.metrics_rolling_stats_time_ms == 9000


class TestPoolSizes:
    def test_maximum_below_core_is_refused_when_allowed_to_diverge(self) -> None:
        """configure() refuses a pool whose maximumSize is below its coreSize, naming both."""
        with pytest.raises(ValueError) as raised:
            hystrixpy.configure(
                {
                    "hystrix.threadpool.Sized.coreSize": "8",
                    "hystrix.threadpool.Sized.maximumSize": "4",
                    "hystrix.threadpool.Sized.allowMaximumSizeToDivergeFromCoreSize": "true",
                }
            )

        message = str(raised.value)
        assert "'Sized'" in message
        assert "maximum_size (maximumSize)=4" in message
        assert "core_size (coreSize)=8" in message
        assert configuration().overrides() == []

    def test_core_size_past_a_defined_class_maximum_is_refused(self) -> None:
        """Raising coreSize above a defined class's maximum_size is refused at configure()."""

        class Growing(RemainingTime):
            thread_pool_key = "GrowingPool"
            thread_pool_properties = ThreadPoolProperties(
                core_size=2, maximum_size=6, allow_maximum_size_to_diverge_from_core_size=True
            )

        with pytest.raises(ValueError, match=r"'GrowingPool'.*maximum_size \(maximumSize\)=6"):
            hystrixpy.configure({"threadpool.GrowingPool.core_size": 10})

        hystrixpy.configure(
            {"threadpool.GrowingPool.core_size": 10, "threadpool.GrowingPool.maximum_size": 12}
        )
        properties = hystrixpy.thread_pool("GrowingPool", Growing.thread_pool_properties).properties
        assert (properties.core_size, properties.effective_maximum_size) == (10, 12)

    def test_maximum_below_core_is_fine_when_not_allowed_to_diverge(self) -> None:
        """Without the divergence flag maximumSize is unused, so any value is accepted."""
        hystrixpy.configure({"threadpool.default.core_size": 20})

        assert hystrixpy.thread_pool("AnyPool").properties.effective_maximum_size == 20


class TestConfiguration:
    def test_resolves_overrides_without_a_validator(self) -> None:
        """A Configuration on its own applies overrides and resolves them for a key."""
        config = Configuration()

        config.configure(
            {
                "command.default.execution_timeout_ms": 2000,
                "command.Key.fallback_enabled": "false",
            }
        )
        props = config.command_properties("Key", CommandProperties(execution_timeout_ms=500))

        assert props.execution_timeout_ms == 500
        assert props.fallback_enabled is False
        assert config.command_properties("Other", CommandProperties()).execution_timeout_ms == 2000

    def test_default_key_resolves_to_the_global_defaults_only(self) -> None:
        """Resolving the key "default" ignores declared values and gives the global defaults."""
        config = Configuration()
        config.configure({"threadpool.default.core_size": 4})

        props = config.pool_properties("default", ThreadPoolProperties(core_size=2))

        assert props.core_size == 4

    def test_version_moves_with_each_change_only(self) -> None:
        """Each applied change bumps the version; a rejected one does not."""
        config = Configuration()
        start = config.version

        config.configure({"command.Key.execution_timeout_ms": 300})
        assert config.version == start + 1
        with pytest.raises(ValueError):
            config.configure({"command.Key.execution_timeout_ms": 0})
        assert config.version == start + 1
        config.clear()
        assert config.version == start + 2

    def test_overrides_lists_each_scope_and_key(self) -> None:
        """overrides() reports every override by scope and key, as copies."""
        config = Configuration()
        config.configure(
            {
                "command.Key.execution_timeout_ms": "300",
                "hystrix.threadpool.Pool.coreSize": "3",
            }
        )

        listed = sorted(config.overrides())
        listed[0][2]["execution_timeout_ms"] = 1

        assert listed == [
            ("command", "Key", {"execution_timeout_ms": 1}),
            ("threadpool", "Pool", {"core_size": 3}),
        ]
        assert ("command", "Key", {"execution_timeout_ms": 300}) in config.overrides()

    def test_after_fork_keeps_overrides_and_refreshes_resolutions(self) -> None:
        """After a fork the configuration is kept and cached resolutions are told to refresh."""
        config = Configuration()
        config.configure({"command.Key.execution_timeout_ms": 300})
        version = config.version

        config.after_fork()

        assert config.version != version
        assert config.command_properties("Key", CommandProperties()).execution_timeout_ms == 300

    def test_after_fork_frees_a_lock_held_by_another_thread(self) -> None:
        """A configure() stuck in another thread at fork time does not block the child."""
        config = Configuration()
        inside = threading.Event()
        resume = threading.Event()

        def stuck_validator(_: Configuration) -> None:
            inside.set()
            resume.wait(5)

        stuck = threading.Thread(
            target=config.configure,
            args=({"command.A.execution_timeout_ms": 100}, stuck_validator),
            daemon=True,
        )
        done = threading.Event()

        def child_configure() -> None:
            config.configure({"command.B.execution_timeout_ms": 200})
            done.set()

        child = threading.Thread(target=child_configure, daemon=True)
        try:
            stuck.start()
            assert inside.wait(5)

            config.after_fork()
            child.start()

            assert done.wait(5)
        finally:
            resume.set()
            stuck.join(5)
            child.join(5)
        assert config.command_properties("B", CommandProperties()).execution_timeout_ms == 200
