"""Adaptive timeouts: a deadline that follows the key's successful run() latencies."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

import hystrixpy
from hystrixpy import Command, CommandProperties, EventType, IsolationStrategy, registry
from hystrixpy.contrib.prometheus import register
from hystrixpy.stream import messages
from hystrixpy.testing import FakeClock

SEMAPHORE = IsolationStrategy.SEMAPHORE
TIMEOUT_FIELD = "propertyValue_executionIsolationThreadTimeoutInMilliseconds"


class Adaptive(Command[str]):
    """A semaphore command whose run() takes ``latency_ms`` of fake time, or fails after it."""

    group_key = "Adaptive"
    properties = CommandProperties(
        execution_isolation_strategy=SEMAPHORE,
        execution_timeout_ms=1000,
        execution_timeout_adaptive=True,
        execution_timeout_percentile=99,
        execution_timeout_multiplier=1.5,
        execution_timeout_min_samples=10,
        circuit_breaker_enabled=False,
    )
    clock: FakeClock

    def __init__(self, latency_ms: float, *, fail: bool = False) -> None:
        super().__init__()
        self.latency_ms = latency_ms
        self.fail = fail

    def run(self) -> str:
        self.clock.advance_ms(self.latency_ms)
        if self.fail:
            raise ConnectionError("down")
        return "ok"

    def get_fallback(self) -> str:
        return "fallback"


@pytest.fixture(autouse=True)
def _clocked(fake_clock: FakeClock) -> None:
    Adaptive.clock = fake_clock


def state() -> registry.CommandKeyState:
    return registry.state_of(Adaptive(0))


def run_many(count: int, latency_ms: float, *, fail: bool = False) -> None:
    for _ in range(count):
        Adaptive(latency_ms, fail=fail).execute()


class TestAdaptation:
    def test_the_configured_timeout_applies_until_enough_samples(
        self, fake_clock: FakeClock
    ) -> None:
        """With fewer than min_samples successes the timeout stays execution_timeout_ms."""
        run_many(9, 16)
        fake_clock.advance(1.0)
        Adaptive(16).execute()  # recomputes, with 9 samples in the window

        assert state().timeout_ms == 1000

    def test_the_timeout_becomes_the_percentile_times_the_multiplier(
        self, fake_clock: FakeClock
    ) -> None:
        """Ten 16 ms successes make a 24 ms timeout, and a 40 ms run() then times out."""
        run_many(10, 16)
        fake_clock.advance(1.0)
        Adaptive(16).execute()
        assert state().timeout_ms == 24

        slow = Adaptive(40)
        assert slow.execute() == "fallback"
        assert slow.is_response_timed_out
        assert hystrixpy.command_metrics("Adaptive").rolling_count(EventType.TIMEOUT) == 1

    def test_it_is_recomputed_at_most_once_per_health_interval(
        self, fake_clock: FakeClock
    ) -> None:
        """Slower successes move the timeout only once the 500 ms snapshot interval has passed."""
        run_many(10, 16)
        fake_clock.advance(1.0)
        Adaptive(16).execute()
        assert state().timeout_ms == 24

        run_many(200, 20)  # each 20 ms (under the 24 ms timeout): 4 s of fake time pass
        assert state().timeout_ms == 29  # recomputed on the way: ceil(19 * 1.5), 19 the bin's
        before = state().adapt_at
        Adaptive(20).execute()
        assert state().adapt_at == before  # not due yet: nothing was recomputed

    def test_failures_do_not_count(self, fake_clock: FakeClock) -> None:
        """Slow failures leave the successes' percentile, and so the timeout, as they were."""
        run_many(10, 16)
        run_many(30, 500, fail=True)
        fake_clock.advance(1.0)
        Adaptive(16).execute()

        assert state().timeout_ms == 24

    def test_it_is_clamped_to_min_and_to_the_configured_timeout(
        self, fake_clock: FakeClock
    ) -> None:
        """Fast calls give the 10 ms minimum; slow ones never pass execution_timeout_ms."""
        run_many(10, 1)
        fake_clock.advance(1.0)
        Adaptive(1).execute()
        assert state().timeout_ms == 10

        hystrixpy.configure({"command.Adaptive.execution_timeout_ms": 200})
        run_many(100, 190)
        fake_clock.advance(60.0)  # only the slow successes remain in the window
        run_many(10, 190)
        fake_clock.advance(1.0)
        Adaptive(1).execute()
        assert state().timeout_ms == 200

    def test_a_max_lets_it_grow_past_the_configured_timeout(
        self, fake_clock: FakeClock
    ) -> None:
        """execution_timeout_max_ms raises the ceiling above execution_timeout_ms."""
        hystrixpy.configure(
            {
                "hystrix.command.Adaptive.execution.timeout.adaptive.maxInMilliseconds": "5000",
                "command.Adaptive.execution_timeout_ms": 80,
            }
        )
        run_many(10, 64)
        fake_clock.advance(1.0)
        Adaptive(64).execute()

        assert state().timeout_ms == 96

    def test_not_adaptive_means_never_recomputed(self) -> None:
        """A key without the property never reaches adapt_timeout()."""
        hystrixpy.configure({"command.Adaptive.execution_timeout_adaptive": False})
        run_many(20, 5)

        assert state().adapt_at == float("inf")
        assert state().timeout_ms == 1000


class TestVisibility:
    def test_the_stream_shows_the_timeout_in_force(self, fake_clock: FakeClock) -> None:
        """propertyValue_executionIsolationThreadTimeoutInMilliseconds follows the adaptation."""

        def shown() -> int:
            (message,) = [m for m in messages() if m.get("name") == "Adaptive"]
            return int(message[TIMEOUT_FIELD])

        Adaptive(16).execute()
        assert shown() == 1000
        run_many(10, 16)
        fake_clock.advance(1.0)
        Adaptive(16).execute()
        assert shown() == 24

    def test_prometheus_shows_the_timeout_in_force(self, fake_clock: FakeClock) -> None:
        """hystrix_command_timeout_seconds in a real scrape."""
        run_many(10, 16)
        fake_clock.advance(1.0)
        Adaptive(16).execute()
        collector_registry = CollectorRegistry()
        register(collector_registry)

        text = generate_latest(collector_registry).decode()
        values = {
            sample.labels["command_key"]: sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == "hystrix_command_timeout_seconds"
        }
        assert values["Adaptive"] == pytest.approx(0.024)


class TestValidation:
    def test_a_minimum_above_the_ceiling_is_refused(self) -> None:
        """min_ms above the ceiling names both, when the properties are built."""
        with pytest.raises(ValueError, match=r"execution_timeout_min_ms=2000 must be <="):
            CommandProperties(execution_timeout_adaptive=True, execution_timeout_min_ms=2000)

    def test_a_percentile_out_of_range_is_refused(self) -> None:
        """The percentile must lie within 0..100."""
        with pytest.raises(ValueError, match=r"execution_timeout_percentile.*<= 100, got 101"):
            hystrixpy.configure({"command.Adaptive.execution_timeout_percentile": 101})
