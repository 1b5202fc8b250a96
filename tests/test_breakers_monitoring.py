"""Standalone breakers in the metrics stream and in Prometheus, and the shared state machine."""

from __future__ import annotations

import json
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from hystrixpy import breakers, stream
from hystrixpy.breakers import Breaker, CircuitState
from hystrixpy.circuit_breaker import ALLOWED, DENIED, TRIAL, CircuitBreaker
from hystrixpy.contrib.prometheus import register
from hystrixpy.events import EventType
from hystrixpy.exceptions import CircuitBreakerError
from hystrixpy.metrics import CommandMetrics
from hystrixpy.properties import CommandProperties
from hystrixpy.testing import FakeClock
from tests.test_stream import DASHBOARD_COMMAND_FIELDS


class Down(Exception):
    """A failing dependency's error."""


def boom() -> None:
    raise Down("down")


def tripped(fake_clock: FakeClock) -> Breaker:
    """A breaker with one success, three failures and one short circuit: open."""
    breaker = breakers.get_or_create(
        "payments-api", failure_threshold=3, recovery_timeout_ms=30_000, group="payments"
    )

    def slow() -> str:
        fake_clock.advance_ms(12)
        return "paid"

    breaker.call(slow)
    for _ in range(3):
        with pytest.raises(Down):
            breaker.call(boom)
    with pytest.raises(CircuitBreakerError):
        breaker.call(slow)
    return breaker


def message_of(name: str) -> dict[str, Any]:
    (found,) = [m for m in stream.messages() if m.get("name") == name]
    return found


class TestStream:
    def test_a_breaker_is_a_command_message_with_every_dashboard_field(
        self, fake_clock: FakeClock
    ) -> None:
        """The stream sends a HystrixCommand named after the breaker, in its group."""
        tripped(fake_clock)

        message = message_of("payments-api")

        missing = sorted(field for field in DASHBOARD_COMMAND_FIELDS if field not in message)
        assert missing == []
        assert (message["type"], message["group"]) == ("HystrixCommand", "payments")
        assert message["isCircuitBreakerOpen"] is True
        assert (message["requestCount"], message["errorCount"]) == (4, 3)
        assert message["errorPercentage"] == 75
        assert message["rollingCountSuccess"] == 1
        assert message["rollingCountFailure"] == 3
        assert message["rollingCountShortCircuited"] == 1
        assert message["rollingCountExceptionsThrown"] == 4
        assert message["latencyTotal"]["100"] == 12
        assert message["propertyValue_circuitBreakerSleepWindowInMilliseconds"] == 30_000
        assert message["propertyValue_circuitBreakerRequestVolumeThreshold"] == 3
        assert message["propertyValue_executionIsolationStrategy"] == "SEMAPHORE"

    def test_a_breaker_shows_from_its_creation_in_the_default_group(self) -> None:
        """A breaker that has not been called yet is already in the stream, closed."""
        breakers.get_or_create("idle", request_timeout_ms=750)

        message = message_of("idle")

        assert (message["group"], message["isCircuitBreakerOpen"]) == ("breakers", False)
        assert message["requestCount"] == 0
        assert message["propertyValue_executionTimeoutInMilliseconds"] == 750
        assert message["propertyValue_executionIsolationStrategy"] == "THREAD"

    def test_the_encoded_frame_holds_the_same_message(self, fake_clock: FakeClock) -> None:
        """frame(), what the stream writes, carries the breaker as one data event."""
        tripped(fake_clock)

        events = [
            json.loads(chunk.removeprefix(b"data: "))
            for chunk in stream.frame().split(b"\n\n")
            if chunk
        ]

        (found,) = [event for event in events if event["name"] == "payments-api"]
        assert found == message_of("payments-api")

    def test_a_cleared_breaker_leaves_the_stream(self) -> None:
        """After hystrixpy.reset() the breaker is no longer sent."""
        breakers.get_or_create("gone")
        breakers.clear()
        assert [m for m in stream.messages() if m.get("name") == "gone"] == []


class TestPrometheus:
    def test_a_breaker_is_scraped_as_a_command_key(self, fake_clock: FakeClock) -> None:
        """A real scrape exports the breaker's counters and circuit gauges, labelled by name."""
        tripped(fake_clock)
        registry = CollectorRegistry()
        register(registry)

        text = generate_latest(registry).decode()
        samples = {
            (sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }

        def value(name: str, **extra: str) -> float:
            labels = {"command_key": "payments-api", "group_key": "payments", **extra}
            return samples[(name, frozenset(labels.items()))]

        assert value("hystrix_command_events_total", event="success") == 1
        assert value("hystrix_command_events_total", event="failure") == 3
        assert value("hystrix_command_events_total", event="short_circuited") == 1
        assert value("hystrix_command_circuit_open") == 1
        assert value("hystrix_command_circuit_state", state="open") == 1
        assert value("hystrix_command_circuit_state", state="closed") == 0
        assert value("hystrix_command_error_percentage") == 75
        assert value("hystrix_command_total_latency_seconds", quantile="1") == 0.012


def _machine(**options: Any) -> tuple[CircuitBreaker, CommandMetrics]:
    properties = CommandProperties(circuit_breaker_sleep_window_ms=1000)
    metrics = CommandMetrics("Unit", "UnitGroup", "UnitPool", properties)
    return CircuitBreaker("Unit", metrics, properties, **options), metrics


class TestSharedStateMachine:
    @pytest.mark.parametrize(
        ("options", "message"),
        [
            ({"failure_threshold": 0}, "failure_threshold must be an int >= 1, got 0"),
            ({"success_threshold": 0}, "success_threshold must be an int >= 1, got 0"),
            ({"half_open_max_calls": True}, "half_open_max_calls must be an int >= 1, got True"),
            ({"monitoring_period_ms": 5}, "monitoring_period_ms=5 needs failure_threshold"),
        ],
    )
    def test_bad_options_raise_value_error(self, options: dict[str, Any], message: str) -> None:
        """The state machine's own options are checked when it is made."""
        with pytest.raises(ValueError, match=message):
            _machine(**options)

    def test_consecutive_mode_allows_without_asking_until_a_failure_trips(
        self, fake_clock: FakeClock
    ) -> None:
        """Closed in the consecutive mode, allow_until is forever: time alone cannot trip it."""
        breaker, _ = _machine(failure_threshold=2)
        now = fake_clock.monotonic()
        assert breaker.attempt_execution(now) == ALLOWED
        assert breaker.allow_until == float("inf")

        breaker.on_result(False, True, False, now)
        breaker.on_result(True, False, False, now)  # a success breaks the run
        breaker.on_result(False, True, False, now)
        assert breaker.state is CircuitState.CLOSED
        breaker.on_result(False, True, False, now)

        assert breaker.state is CircuitState.OPEN
        assert breaker.allow_until == float("-inf")
        assert breaker.attempt_execution(now) == DENIED
        assert breaker.consecutive_failures == 2

    def test_trials_of_an_earlier_half_open_spell_keep_their_permits(
        self, fake_clock: FakeClock
    ) -> None:
        """A trial still out when the circuit re-opened holds its permit into the next spell."""
        breaker, _ = _machine(failure_threshold=1, half_open_max_calls=2)
        now = fake_clock.monotonic()
        breaker.on_result(False, True, False, now)
        later = now + 1.0
        assert breaker.attempt_execution(later) == TRIAL
        assert breaker.attempt_execution(later) == TRIAL
        assert breaker.attempt_execution(later) == DENIED
        assert breaker.deny_until == float("inf")
        assert not breaker.allow_request()

        breaker.on_result(False, True, True, later)  # one trial fails: open again
        assert breaker.state is CircuitState.OPEN
        assert breaker.trials_in_flight == 1
        again = later + 1.0
        assert breaker.attempt_execution(again) == TRIAL
        assert breaker.attempt_execution(again) == DENIED  # the old trial still holds one
        breaker.on_result(True, False, True, again)  # the old trial succeeds: closes it
        assert breaker.state is CircuitState.CLOSED
        breaker.on_result(True, False, True, again)  # the new one, after the spell: ordinary
        assert (breaker.state, breaker.trials_in_flight) == (CircuitState.CLOSED, 0)

    def test_a_half_open_spell_may_start_with_every_permit_held(
        self, fake_clock: FakeClock
    ) -> None:
        """If earlier trials hold every permit, the new spell denies until one comes back."""
        breaker, _ = _machine(failure_threshold=1)
        now = fake_clock.monotonic()
        breaker.on_result(False, True, False, now)
        assert breaker.attempt_execution(now + 1.0) == TRIAL
        breaker._move(CircuitState.HALF_OPEN, CircuitState.OPEN, now + 1.0)  # as a timeout would

        assert breaker.attempt_execution(now + 2.0) == DENIED
        assert breaker.state is CircuitState.HALF_OPEN
        breaker.release_trial()
        assert breaker.allow_request()
        assert breaker.attempt_execution(now + 2.0) == TRIAL

    def test_readings_of_the_open_times(self, fake_clock: FakeClock) -> None:
        """opened_at and reopens_at are set only while they mean something."""
        breaker, _ = _machine(failure_threshold=1)
        assert (breaker.opened_at, breaker.reopens_at) == (None, None)
        now = fake_clock.monotonic()
        breaker.on_result(False, True, False, now)
        assert (breaker.opened_at, breaker.reopens_at) == (now, now + 1.0)
        breaker.attempt_execution(now + 1.0)
        assert (breaker.opened_at, breaker.reopens_at) == (now, None)
        breaker.reconfigure(CommandProperties(circuit_breaker_force_open=True))
        assert breaker.reopens_at is None

    def test_a_trial_error_that_is_no_health_error_still_reopens(
        self, fake_clock: FakeClock
    ) -> None:
        """As for a command's bad-request trial: not a success, so the circuit re-opens."""
        breaker, metrics = _machine(failure_threshold=1)
        now = fake_clock.monotonic()
        breaker.on_result(False, True, False, now)
        assert breaker.attempt_execution(now + 1.0) == TRIAL
        breaker.on_result(False, False, True, now + 1.0)
        assert breaker.state is CircuitState.OPEN
        assert metrics.cumulative_count(EventType.SUCCESS) == 0

    def test_races_the_locks_guard_against_change_nothing(self, fake_clock: FakeClock) -> None:
        """A move from a state already left, or a check of a circuit closed since, is a no-op."""
        heard: list[tuple[str, CircuitState, CircuitState]] = []
        properties = CommandProperties()
        metrics = CommandMetrics("Race", "RaceGroup", "RacePool", properties)
        breaker = CircuitBreaker(
            "Race", metrics, properties, lambda *moved: heard.append(moved), failure_threshold=1
        )
        now = fake_clock.monotonic()

        breaker._move(CircuitState.OPEN, CircuitState.CLOSED, now)
        assert breaker._attempt_while_open(now) == DENIED  # closed again before the lock
        breaker.release_trial()  # no permit out, not half-open
        breaker.on_result(True, False, True, now)  # a trial outcome with no spell: ordinary

        assert (breaker.state, breaker.trials_in_flight, heard) == (CircuitState.CLOSED, 0, [])
