"""The Prometheus collector: what a scrape shows, read back with prometheus_client's parser."""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from types import ModuleType
from typing import Any, cast

import prometheus_client
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families

import hystrixpy
from hystrixpy import (
    BadRequestError,
    CircuitState,
    Command,
    CommandProperties,
    EventType,
    HystrixRuntimeError,
    IsolationStrategy,
    ThreadPoolProperties,
)
from hystrixpy.contrib import prometheus
from hystrixpy.contrib.prometheus import HystrixCollector, register
from hystrixpy.testing import FakeClock

THREAD = IsolationStrategy.THREAD
SEMAPHORE = IsolationStrategy.SEMAPHORE
BOTH_ISOLATIONS = pytest.mark.parametrize(
    "isolation", [THREAD, SEMAPHORE], ids=["thread", "semaphore"]
)

#: Every family a scrape has, by the name the parser gives it, with its type.
FAMILIES = {
    "hystrix_command_events": "counter",
    "hystrix_command_circuit_open": "gauge",
    "hystrix_command_circuit_state": "gauge",
    "hystrix_command_timeout_seconds": "gauge",
    "hystrix_command_error_percentage": "gauge",
    "hystrix_command_requests": "gauge",
    "hystrix_command_concurrent_executions": "gauge",
    "hystrix_command_rolling_max_concurrent_executions": "gauge",
    "hystrix_command_execution_latency_seconds": "gauge",
    "hystrix_command_execution_latency_mean_seconds": "gauge",
    "hystrix_command_total_latency_seconds": "gauge",
    "hystrix_command_total_latency_mean_seconds": "gauge",
    "hystrix_thread_pool_active_threads": "gauge",
    "hystrix_thread_pool_queue_size": "gauge",
    "hystrix_thread_pool_size": "gauge",
    "hystrix_thread_pool_largest_size": "gauge",
    "hystrix_thread_pool_core_size": "gauge",
    "hystrix_thread_pool_maximum_size": "gauge",
    "hystrix_thread_pool_completed_tasks": "counter",
    "hystrix_thread_pool_executed_tasks": "counter",
    "hystrix_thread_pool_rejected_tasks": "counter",
    "hystrix_thread_pool_rolling_max_active_threads": "gauge",
}
#: The label a command family has besides command_key and group_key, if any.
EXTRA_LABEL = {
    "hystrix_command_events": "event",
    "hystrix_command_circuit_state": "state",
    "hystrix_command_execution_latency_seconds": "quantile",
    "hystrix_command_total_latency_seconds": "quantile",
}
QUANTILES = {"0.5": 50.0, "0.9": 90.0, "0.99": 99.0, "0.995": 99.5, "1": 100.0}
#: The pool gauges and counters, with the ThreadPoolMetrics attribute each one shows.
POOL_SAMPLES = {
    "hystrix_thread_pool_active_threads": "current_active_count",
    "hystrix_thread_pool_queue_size": "current_queue_size",
    "hystrix_thread_pool_size": "current_pool_size",
    "hystrix_thread_pool_largest_size": "current_largest_pool_size",
    "hystrix_thread_pool_core_size": "current_core_pool_size",
    "hystrix_thread_pool_maximum_size": "current_maximum_pool_size",
    "hystrix_thread_pool_completed_tasks_total": "current_completed_task_count",
    "hystrix_thread_pool_executed_tasks_total": "cumulative_count_threads_executed",
    "hystrix_thread_pool_rejected_tasks_total": "cumulative_count_threads_rejected",
    "hystrix_thread_pool_rolling_max_active_threads": "rolling_max_active_threads",
}

Behaviour = Callable[[], str]


# -- commands to observe -------------------------------------------------------


class Probe(Command[str]):
    """A command whose run() does what the test says; ``probe()`` makes concrete subclasses."""

    def __init__(
        self, behaviour: Behaviour | None = None, fallback: Behaviour | None = None, **keys: str
    ) -> None:
        super().__init__(**keys)
        self.behaviour = behaviour if behaviour is not None else (lambda: "value")
        self.fallback_behaviour = fallback if fallback is not None else (lambda: "fallback")


def _run(self: Probe) -> str:
    return self.behaviour()


def _fallback(self: Probe) -> str:
    return self.fallback_behaviour()


def probe(
    name: str,
    *,
    group: str | None = None,
    pool_key: str | None = None,
    isolation: IsolationStrategy = SEMAPHORE,
    pool: ThreadPoolProperties | None = None,
    **settings: Any,
) -> type[Probe]:
    """A command class named ``name`` (also its group and pool key unless given) with a fallback."""
    namespace: dict[str, Any] = {
        "group_key": group or name,
        "run": _run,
        "get_fallback": _fallback,
        "properties": CommandProperties(execution_isolation_strategy=isolation, **settings),
        "thread_pool_properties": pool if pool is not None else ThreadPoolProperties(),
    }
    if pool_key is not None:
        namespace["thread_pool_key"] = pool_key
    return cast(type[Probe], type(name, (Probe,), namespace))


def takes(clock: FakeClock, milliseconds: int) -> Behaviour:
    """A run() that takes ``milliseconds`` of fake time and returns a value."""

    def behaviour() -> str:
        clock.advance_ms(milliseconds)
        return "value"

    return behaviour


def raises(error: Exception) -> Behaviour:
    """A run() that raises ``error``."""

    def behaviour() -> str:
        raise error

    return behaviour


class Gate:
    """Holds run() calls until the test opens it, and tells the test how many have entered."""

    def __init__(self) -> None:
        self._entered = threading.Semaphore(0)
        self._opened = threading.Event()

    def hold(self) -> Behaviour:
        def behaviour() -> str:
            self._entered.release()
            if not self._opened.wait(5):
                raise RuntimeError("the test never opened the gate")
            return "held"

        return behaviour

    def wait_entered(self, count: int = 1) -> None:
        """Block (at most 5 s each) until ``count`` more run() calls are held."""
        for _ in range(count):
            assert self._entered.acquire(timeout=5), "a run() never started"

    def open(self) -> None:
        self._opened.set()


def in_thread(call: Callable[[], str]) -> tuple[threading.Thread, list[str]]:
    """Start ``call`` on a thread of its own; its return value lands in the list."""
    answers: list[str] = []
    thread = threading.Thread(target=lambda: answers.append(call()), daemon=True)
    thread.start()
    return thread, answers


def finish_pool(pool_key: str) -> None:
    """Shut the pool down and wait (at most 5 s) for its workers to finish every task."""
    stopper = threading.Thread(target=hystrixpy.thread_pool(pool_key).shutdown, daemon=True)
    stopper.start()
    stopper.join(5)
    assert not stopper.is_alive(), "a worker of the pool is still busy"


# -- reading a scrape ----------------------------------------------------------


class Scrape:
    """A scrape's text parsed by prometheus_client, refusing duplicate families and series."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.families: dict[str, Metric] = {}
        self.samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
        for family in text_string_to_metric_families(text):
            assert family.name not in self.families, f"family {family.name} appears twice"
            self.families[family.name] = family
            for sample in family.samples:
                key = (sample.name, frozenset(sample.labels.items()))
                assert key not in self.samples, f"series {key} appears twice"
                self.samples[key] = sample.value

    def value(self, name: str, **labels: str) -> float:
        """The value of the series ``name`` with exactly these labels (KeyError if absent)."""
        return self.samples[(name, frozenset(labels.items()))]

    def has(self, name: str, **labels: str) -> bool:
        """Whether the series ``name`` with exactly these labels is present."""
        return (name, frozenset(labels.items())) in self.samples

    def series_of(self, family: str, **labels: str) -> list[dict[str, str]]:
        """The label sets of ``family``'s samples that carry these labels."""
        wanted = labels.items()
        return [
            sample.labels
            for sample in self.families[family].samples
            if wanted <= sample.labels.items()
        ]


def scrape(registry: CollectorRegistry | None = None) -> Scrape:
    """Render a registry holding the collector (a fresh one unless given) and parse it back."""
    if registry is None:
        registry = CollectorRegistry()
        register(registry)
    return Scrape(generate_latest(registry).decode("utf-8"))


def of(command: type[Probe] | Probe) -> dict[str, str]:
    """The command labels of a command class or instance."""
    return {"command_key": command.command_key, "group_key": command.group_key}


def assert_events(seen: Scrape, command: type[Probe], expected: dict[EventType, int]) -> None:
    """Every event type's counter equals the metrics' cumulative count and ``expected`` (or 0)."""
    metrics = hystrixpy.command_metrics(command.command_key)
    for event in EventType:
        value = seen.value("hystrix_command_events_total", **of(command), event=event.name.lower())
        assert value == metrics.cumulative_count(event) == expected.get(event, 0), event


def assert_circuit(seen: Scrape, command: type[Probe], state: CircuitState) -> None:
    """The circuit gauges show ``state``, which is also the breaker's own state."""
    assert hystrixpy.circuit_breaker(command.command_key).state is state
    assert seen.value("hystrix_command_circuit_open", **of(command)) == (
        0 if state is CircuitState.CLOSED else 1
    )
    for each in ("closed", "open", "half_open"):
        assert seen.value("hystrix_command_circuit_state", **of(command), state=each) == (
            1 if each == state.name.lower() else 0
        ), each


def assert_pool(seen: Scrape, pool_key: str, **expected: int) -> None:
    """Every pool series equals ThreadPoolMetrics; those named in ``expected`` also that value."""
    metrics = hystrixpy.thread_pool_metrics(pool_key)
    for name, attribute in POOL_SAMPLES.items():
        value = seen.value(name, thread_pool_key=pool_key)
        assert value == getattr(metrics, attribute), name
        short = name.removeprefix("hystrix_thread_pool_").removesuffix("_total")
        if short in expected:
            assert value == expected[short], name


# -- the tests -----------------------------------------------------------------


class TestHystrixCollectorFamilies:
    def test_every_family_has_its_type_and_a_one_line_help(self, fake_clock: FakeClock) -> None:
        """A scrape holds exactly the documented families, each typed and with a one-line help."""
        probe("Families", isolation=THREAD)().execute()

        seen = scrape()

        assert {name: family.type for name, family in seen.families.items()} == FAMILIES
        for family in seen.families.values():
            assert family.documentation.strip(), family.name
            assert "\n" not in family.documentation, family.name
        assert "# HELP hystrix_command_events_total " in seen.text

    def test_series_carry_the_command_and_pool_labels(self, fake_clock: FakeClock) -> None:
        """Command series are labelled by command and group key, pool series by pool key."""
        command_class = probe(
            "Labels", group="LabelsGroup", pool_key="LabelsPool", isolation=THREAD
        )
        command_class(command_key="GetUser").execute()

        seen = scrape()

        labels = {"command_key": "GetUser", "group_key": "LabelsGroup"}
        for name, family in seen.families.items():
            if name.startswith("hystrix_command_"):
                series = seen.series_of(name, **labels)
                assert series, name
                extra = {EXTRA_LABEL[name]} if name in EXTRA_LABEL else set()
                for sample_labels in series:
                    assert set(sample_labels) == {"command_key", "group_key", *extra}, name
            else:
                assert all(set(s.labels) == {"thread_pool_key"} for s in family.samples), name
                assert seen.series_of(name, thread_pool_key="LabelsPool"), name
                assert not seen.series_of(name, thread_pool_key="LabelsGroup"), name
        assert {s["event"] for s in seen.series_of("hystrix_command_events", **labels)} == {
            event.name.lower() for event in EventType
        }
        assert {
            s["quantile"]
            for s in seen.series_of("hystrix_command_execution_latency_seconds", **labels)
        } == set(QUANTILES)

    def test_label_values_are_escaped_and_parse_back_unchanged(self, fake_clock: FakeClock) -> None:
        """Keys with quotes, backslashes and newlines (per-tenant keys) survive the round trip."""
        odd_key = 'tenant "a\\b"\nc'
        command_class = probe("Escapes", group='group "g"')
        command_class(command_key=odd_key).execute()

        seen = scrape()

        assert (
            seen.value(
                "hystrix_command_events_total",
                command_key=odd_key,
                group_key='group "g"',
                event="success",
            )
            == 1
        )

    def test_commands_sharing_a_group_and_pool_give_one_pool_series(
        self, fake_clock: FakeClock
    ) -> None:
        """Two commands on one pool have a series each, and the pool has exactly one."""
        first = probe("SharedFirst", group="Shared", isolation=THREAD)
        second = probe("SharedSecond", group="Shared", isolation=THREAD)
        first().execute()
        second().execute()
        second().execute()

        seen = scrape()  # Scrape itself fails on a duplicate series

        assert len(seen.series_of("hystrix_thread_pool_size", thread_pool_key="Shared")) == 1
        assert seen.value("hystrix_command_events_total", **of(first), event="success") == 1
        assert seen.value("hystrix_command_events_total", **of(second), event="success") == 2
        finish_pool("Shared")
        assert_pool(scrape(), "Shared", executed_tasks=3, completed_tasks=3)


class TestHystrixCollectorCommands:
    @BOTH_ISOLATIONS
    def test_event_counters_equal_the_cumulative_counts(
        self, isolation: IsolationStrategy, fake_clock: FakeClock
    ) -> None:
        """Successes, failures and bad requests show as counters equal to the metrics' counts."""
        command_class = probe("Counted", isolation=isolation)
        command_class().execute()
        command_class().execute()
        assert command_class(raises(ValueError("down"))).execute() == "fallback"
        with pytest.raises(BadRequestError):
            command_class(raises(BadRequestError("no such user"))).execute()

        assert_events(
            scrape(),
            command_class,
            {
                EventType.SUCCESS: 2,
                EventType.FAILURE: 1,
                EventType.FALLBACK_SUCCESS: 1,
                EventType.BAD_REQUEST: 1,
                EventType.EXCEPTION_THROWN: 1,
            },
        )

    def test_fallback_failures_count_as_exceptions_thrown(self, fake_clock: FakeClock) -> None:
        """A failure with the fallback turned off shows FALLBACK_DISABLED and EXCEPTION_THROWN."""
        command_class = probe("NoFallback", fallback_enabled=False)
        with pytest.raises(HystrixRuntimeError):
            command_class(raises(ValueError("down"))).execute()

        assert_events(
            scrape(),
            command_class,
            {EventType.FAILURE: 1, EventType.FALLBACK_DISABLED: 1, EventType.EXCEPTION_THROWN: 1},
        )

    def test_semaphore_timeout_is_counted(self, fake_clock: FakeClock) -> None:
        """A run() on the caller's thread that overran its deadline counts as a TIMEOUT."""
        command_class = probe("SlowOnCaller", execution_timeout_ms=100)
        assert command_class(takes(fake_clock, 250)).execute() == "fallback"

        seen = scrape()

        assert_events(seen, command_class, {EventType.TIMEOUT: 1, EventType.FALLBACK_SUCCESS: 1})
        assert seen.value("hystrix_command_error_percentage", **of(command_class)) == 100
        assert seen.value("hystrix_command_requests", **of(command_class)) == 1

    def test_thread_timeout_is_counted_while_run_still_holds_its_worker(
        self, fake_clock: FakeClock
    ) -> None:
        """A timed-out run() still busy on its worker shows as TIMEOUT and as still executing."""
        command_class = probe("SlowOnWorker", isolation=THREAD)
        gate = Gate()
        try:
            future = command_class(gate.hold()).queue()
            gate.wait_entered()
            fake_clock.advance(1.5)
            assert future.result(5) == "fallback"

            seen = scrape()

            assert_events(
                seen, command_class, {EventType.TIMEOUT: 1, EventType.FALLBACK_SUCCESS: 1}
            )
            metrics = hystrixpy.command_metrics("SlowOnWorker")
            assert (
                seen.value("hystrix_command_concurrent_executions", **of(command_class))
                == metrics.current_concurrent_execution_count
                == 1
            )
            assert_pool(seen, "SlowOnWorker", active_threads=1, executed_tasks=1)
        finally:
            gate.open()
        finish_pool("SlowOnWorker")
        seen = scrape()
        assert seen.value("hystrix_command_concurrent_executions", **of(command_class)) == 0
        assert_pool(seen, "SlowOnWorker", active_threads=0, completed_tasks=1)

    def test_event_counters_are_cumulative_and_requests_rolling(
        self, fake_clock: FakeClock
    ) -> None:
        """Once the rolling window has passed, counters keep their totals and the gauges go to 0."""
        command_class = probe("Aging")
        command_class().execute()
        command_class(raises(ValueError("down"))).execute()
        before = scrape()
        assert before.value("hystrix_command_requests", **of(command_class)) == 2
        assert before.value("hystrix_command_error_percentage", **of(command_class)) == 50

        fake_clock.advance(11.0)
        after = scrape()

        assert_events(
            after,
            command_class,
            {EventType.SUCCESS: 1, EventType.FAILURE: 1, EventType.FALLBACK_SUCCESS: 1},
        )
        assert after.value("hystrix_command_requests", **of(command_class)) == 0
        assert after.value("hystrix_command_error_percentage", **of(command_class)) == 0
        assert (
            after.value("hystrix_command_rolling_max_concurrent_executions", **of(command_class))
            == 0
        )

    def test_a_declared_command_that_never_ran_shows_zeros(self) -> None:
        """A command class shows, with zero counts and a closed circuit, before it first runs."""
        idle = probe("NeverRan", pool_key="NeverRanPool", isolation=THREAD)
        idle_on_caller = probe("NeverRanOnCaller", isolation=SEMAPHORE)

        seen = scrape()

        for command_class in (idle, idle_on_caller):
            assert_events(seen, command_class, {})
            assert_circuit(seen, command_class, CircuitState.CLOSED)
            for name in (
                "hystrix_command_error_percentage",
                "hystrix_command_requests",
                "hystrix_command_concurrent_executions",
                "hystrix_command_rolling_max_concurrent_executions",
                "hystrix_command_execution_latency_mean_seconds",
                "hystrix_command_total_latency_mean_seconds",
            ):
                assert seen.value(name, **of(command_class)) == 0, name
            for quantile in QUANTILES:
                assert (
                    seen.value(
                        "hystrix_command_total_latency_seconds",
                        **of(command_class),
                        quantile=quantile,
                    )
                    == 0
                )
        # A THREAD command's pool shows from the start; a SEMAPHORE command has none.
        assert_pool(seen, "NeverRanPool", active_threads=0, size=0, core_size=10, executed_tasks=0)
        assert not seen.series_of("hystrix_thread_pool_size", thread_pool_key="NeverRanOnCaller")

    def test_counts_are_read_at_each_scrape(self, fake_clock: FakeClock) -> None:
        """A collector registered before anything ran shows what runs later, scrape by scrape."""
        registry = CollectorRegistry()
        register(registry)
        command_class = probe("Later")
        first = scrape(registry)
        command_class().execute()
        command_class().execute()

        second = scrape(registry)

        assert (
            first.value("hystrix_command_events_total", **of(command_class), event="success") == 0
        )
        assert (
            second.value("hystrix_command_events_total", **of(command_class), event="success") == 2
        )


class TestHystrixCollectorCircuit:
    def test_closed_circuit(self, fake_clock: FakeClock) -> None:
        """A healthy command reads circuit_open 0 and state closed."""
        command_class = probe("Healthy")
        command_class().execute()

        assert_circuit(scrape(), command_class, CircuitState.CLOSED)

    def test_open_circuit_and_short_circuits(self, fake_clock: FakeClock) -> None:
        """After enough failures the circuit reads open and short-circuits are counted."""
        command_class = probe("Tripped", circuit_breaker_request_volume_threshold=2)
        for _ in range(2):
            command_class(raises(ValueError("down"))).execute()
        short_circuited = command_class()
        assert short_circuited.execute() == "fallback"
        assert short_circuited.is_response_short_circuited

        seen = scrape()

        assert_circuit(seen, command_class, CircuitState.OPEN)
        assert_events(
            seen,
            command_class,
            {EventType.FAILURE: 2, EventType.SHORT_CIRCUITED: 1, EventType.FALLBACK_SUCCESS: 3},
        )
        assert seen.value("hystrix_command_error_percentage", **of(command_class)) == 100
        assert seen.value("hystrix_command_requests", **of(command_class)) == 2

    def test_half_open_during_the_trial_then_closed(self, fake_clock: FakeClock) -> None:
        """While the trial runs the circuit reads half_open; its success closes it."""
        command_class = probe(
            "Recovering", isolation=THREAD, circuit_breaker_request_volume_threshold=2
        )
        for _ in range(2):
            command_class(raises(ValueError("down"))).execute()
        fake_clock.advance(5.0)  # the sleep window passes
        gate = Gate()
        try:
            future = command_class(gate.hold()).queue()
            gate.wait_entered()

            assert_circuit(scrape(), command_class, CircuitState.HALF_OPEN)
        finally:
            gate.open()
        assert future.result(5) == "held"

        seen = scrape()
        assert_circuit(seen, command_class, CircuitState.CLOSED)
        assert seen.value("hystrix_command_requests", **of(command_class)) == 0

    def test_a_command_without_a_breaker_reads_closed(self, fake_clock: FakeClock) -> None:
        """With the breaker turned off the circuit always reads closed, failures or not."""
        command_class = probe(
            "Unguarded", circuit_breaker_enabled=False, circuit_breaker_request_volume_threshold=1
        )
        for _ in range(3):
            command_class(raises(ValueError("down"))).execute()

        seen = scrape()

        assert_circuit(seen, command_class, CircuitState.CLOSED)
        assert seen.value("hystrix_command_error_percentage", **of(command_class)) == 100


class TestHystrixCollectorLatency:
    @BOTH_ISOLATIONS
    def test_latency_quantiles_and_means_in_seconds(
        self, isolation: IsolationStrategy, fake_clock: FakeClock
    ) -> None:
        """Latency quantiles and means are the metrics' milliseconds shown in seconds."""
        command_class = probe("Timed", isolation=isolation)
        for milliseconds in range(10, 101, 10):
            command_class(takes(fake_clock, milliseconds)).execute()

        seen = scrape()

        metrics = hystrixpy.command_metrics("Timed")
        labels = of(command_class)
        for quantile, percent in QUANTILES.items():
            execution = seen.value(
                "hystrix_command_execution_latency_seconds", **labels, quantile=quantile
            )
            total = seen.value("hystrix_command_total_latency_seconds", **labels, quantile=quantile)
            assert execution == metrics.execution_time_percentile(percent) / 1000, quantile
            assert total == metrics.total_time_percentile(percent) / 1000, quantile
            # Within the percentiles' promise of 1 ms (or 2 %) of the exact nearest rank.
            exact = min(m for m in range(10, 101, 10) if m >= percent)
            assert abs(execution - exact / 1000) <= 0.001 + 1e-9, quantile
        assert (
            seen.value("hystrix_command_execution_latency_seconds", **labels, quantile="1") == 0.1
        )
        assert seen.value("hystrix_command_execution_latency_mean_seconds", **labels) == 0.055
        assert seen.value("hystrix_command_total_latency_mean_seconds", **labels) == (
            metrics.total_time_mean() / 1000
        )
        assert metrics.total_time_mean() == 55

    def test_total_latency_includes_the_fallback(self, fake_clock: FakeClock) -> None:
        """Total latency is what the caller waited, run() and fallback; execution is run() alone."""
        command_class = probe("SlowFallback")

        def failing_after_40ms() -> str:
            fake_clock.advance_ms(40)
            raise ValueError("down")

        def answering_after_60ms() -> str:
            fake_clock.advance_ms(60)
            return "slow fallback"

        assert command_class(failing_after_40ms, answering_after_60ms).execute() == "slow fallback"

        seen = scrape()

        labels = of(command_class)
        assert (
            seen.value("hystrix_command_execution_latency_seconds", **labels, quantile="1") == 0.04
        )
        assert seen.value("hystrix_command_total_latency_seconds", **labels, quantile="1") == 0.1

    def test_latency_reads_zero_when_percentiles_are_off(self, fake_clock: FakeClock) -> None:
        """With metrics_rolling_percentile_enabled off, latencies read 0 and counts still show."""
        command_class = probe("Untimed", metrics_rolling_percentile_enabled=False)
        command_class(takes(fake_clock, 80)).execute()

        seen = scrape()

        labels = of(command_class)
        for quantile in QUANTILES:
            assert (
                seen.value("hystrix_command_execution_latency_seconds", **labels, quantile=quantile)
                == 0
            )
        assert seen.value("hystrix_command_total_latency_mean_seconds", **labels) == 0
        assert seen.value("hystrix_command_events_total", **labels, event="success") == 1


class TestHystrixCollectorConcurrency:
    def test_concurrent_executions_and_busy_pool(self, fake_clock: FakeClock) -> None:
        """Runs in progress show as concurrent executions, active threads and pool size."""
        command_class = probe("Busy", isolation=THREAD, pool=ThreadPoolProperties(core_size=2))
        gate = Gate()
        futures: list[Future[str]] = []
        try:
            futures = [command_class(gate.hold()).queue() for _ in range(2)]
            gate.wait_entered(2)

            seen = scrape()

            labels = of(command_class)
            assert seen.value("hystrix_command_concurrent_executions", **labels) == 2
            assert seen.value("hystrix_command_rolling_max_concurrent_executions", **labels) == 2
            assert_pool(
                seen,
                "Busy",
                active_threads=2,
                queue_size=0,
                size=2,
                largest_size=2,
                executed_tasks=2,
                completed_tasks=0,
                rolling_max_active_threads=2,
            )
        finally:
            gate.open()
        assert [future.result(5) for future in futures] == ["held", "held"]
        finish_pool("Busy")

        seen = scrape()
        assert seen.value("hystrix_command_concurrent_executions", **of(command_class)) == 0
        assert (
            seen.value("hystrix_command_rolling_max_concurrent_executions", **of(command_class))
            == 2
        )
        assert_pool(seen, "Busy", active_threads=0, completed_tasks=2, largest_size=2)

    def test_queued_tasks_show_as_queue_size(self, fake_clock: FakeClock) -> None:
        """A task waiting for the pool's only worker shows in the queue size."""
        command_class = probe(
            "Queued",
            isolation=THREAD,
            pool=ThreadPoolProperties(core_size=1, max_queue_size=5),
        )
        gate = Gate()
        futures: list[Future[str]] = []
        try:
            futures.append(command_class(gate.hold()).queue())
            gate.wait_entered()
            futures.append(command_class(gate.hold()).queue())

            assert_pool(scrape(), "Queued", active_threads=1, queue_size=1, size=1, core_size=1)
        finally:
            gate.open()
        assert [future.result(5) for future in futures] == ["held", "held"]

    def test_thread_pool_rejections(self, fake_clock: FakeClock) -> None:
        """A task refused by a full pool counts for the command and for the pool."""
        command_class = probe("Full", isolation=THREAD, pool=ThreadPoolProperties(core_size=1))
        gate = Gate()
        try:
            held = command_class(gate.hold()).queue()
            gate.wait_entered()
            rejected = command_class()
            assert rejected.execute() == "fallback"
            assert rejected.is_response_thread_pool_rejected

            seen = scrape()

            assert_events(
                seen,
                command_class,
                {EventType.THREAD_POOL_REJECTED: 1, EventType.FALLBACK_SUCCESS: 1},
            )
            assert_pool(
                seen,
                "Full",
                rejected_tasks=1,
                executed_tasks=1,
                active_threads=1,
                core_size=1,
                maximum_size=1,
            )
            assert seen.value("hystrix_command_error_percentage", **of(command_class)) == 100
        finally:
            gate.open()
        assert held.result(5) == "held"

    def test_semaphore_rejections(self, fake_clock: FakeClock) -> None:
        """An execution refused by a full semaphore is counted while the holder still runs."""
        command_class = probe("Narrow", execution_isolation_semaphore_max_concurrent_requests=1)
        gate = Gate()
        holder, answers = in_thread(command_class(gate.hold()).execute)
        try:
            gate.wait_entered()
            assert command_class().execute() == "fallback"

            seen = scrape()

            assert_events(
                seen,
                command_class,
                {EventType.SEMAPHORE_REJECTED: 1, EventType.FALLBACK_SUCCESS: 1},
            )
            assert seen.value("hystrix_command_concurrent_executions", **of(command_class)) == 1
        finally:
            gate.open()
        holder.join(5)
        assert answers == ["held"]


class TestRegister:
    def test_registration_reads_nothing_until_a_scrape(self) -> None:
        """Registering creates no per-key state; the first scrape does."""
        command_class = probe("Lazy")
        registry = CollectorRegistry(auto_describe=True)

        register(registry)

        assert "Lazy" not in hystrixpy.registry.known_command_keys()
        seen = scrape(registry)
        assert "Lazy" in hystrixpy.registry.known_command_keys()
        assert_events(seen, command_class, {})

    def test_describe_lists_the_families_without_samples(self) -> None:
        """describe() names every family collect() yields, with no samples."""
        probe("Described", isolation=THREAD)
        collector = HystrixCollector()

        described = collector.describe()

        collected = list(collector.collect())
        assert [(f.name, f.type) for f in described] == [(f.name, f.type) for f in collected]
        assert all(not family.samples for family in described)
        assert {f.name for f in described} == set(FAMILIES)

    def test_registering_twice_in_one_registry_is_refused(self) -> None:
        """A second collector in the same registry is refused, not exported twice."""
        registry = CollectorRegistry()
        register(registry)

        with pytest.raises(ValueError, match="hystrix_command_events"):
            register(registry)

    def test_a_name_filter_selects_hystrix_series(self, fake_clock: FakeClock) -> None:
        """A ``?name[]=`` style restricted registry serves just the series asked for."""
        command_class = probe("Filtered")
        command_class().execute()
        registry = CollectorRegistry()
        register(registry)

        restricted = registry.restricted_registry(["hystrix_command_requests"])
        seen = Scrape(generate_latest(restricted).decode("utf-8"))

        assert list(seen.families) == ["hystrix_command_requests"]
        assert seen.value("hystrix_command_requests", **of(command_class)) == 1

    def test_register_defaults_to_the_global_registry(self, fake_clock: FakeClock) -> None:
        """register() with no argument exports through prometheus_client's own REGISTRY."""
        command_class = probe("Global")
        command_class().execute()

        collector = register()
        try:
            assert isinstance(collector, HystrixCollector)
            assert (
                prometheus_client.REGISTRY.get_sample_value(
                    "hystrix_command_events_total", {**of(command_class), "event": "success"}
                )
                == 1
            )
        finally:
            prometheus_client.REGISTRY.unregister(collector)


class _BlockPrometheusClient(importlib.abc.MetaPathFinder):
    """Makes ``prometheus_client`` look uninstalled."""

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname == "prometheus_client" or fullname.startswith("prometheus_client."):
            raise ModuleNotFoundError(f"No module named {fullname!r}", name=fullname)
        return None


class TestImportWithoutPrometheusClient:
    def test_import_says_which_extra_to_install(self) -> None:
        """Without prometheus_client the import fails with an ImportError naming the extra."""
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(sys, "meta_path", [_BlockPrometheusClient(), *sys.meta_path])
            for name in list(sys.modules):
                if name.split(".")[0] == "prometheus_client" or name == prometheus.__name__:
                    patch.delitem(sys.modules, name)

            with pytest.raises(ImportError, match=r"hystrixpy\[prometheus\]") as raised:
                importlib.import_module("hystrixpy.contrib.prometheus")

            assert isinstance(raised.value.__cause__, ModuleNotFoundError)
            assert raised.value.__cause__.name == "prometheus_client"
        # Everything is as it was: the real modules are back.
        assert sys.modules["hystrixpy.contrib.prometheus"] is prometheus
        assert sys.modules["prometheus_client"] is prometheus_client
        assert importlib.import_module("hystrixpy.contrib.prometheus").register is register
