"""A command's rate limiter: checked first, a refusal is RATE_LIMITED and goes to the fallback."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

import hystrixpy
from hystrixpy import (
    Command,
    CommandProperties,
    EventType,
    FailureType,
    HystrixRuntimeError,
    IsolationStrategy,
    RateLimitExceeded,
    registry,
)
from hystrixpy.contrib.prometheus import register
from hystrixpy.ratelimit import TokenBucket
from hystrixpy.stream import messages
from hystrixpy.testing import FakeClock

SEMAPHORE = IsolationStrategy.SEMAPHORE
RATE_LIMITED = EventType.RATE_LIMITED


def limited(name: str, limiter: TokenBucket | None, **properties: object) -> type[Command[str]]:
    """A command class named ``name`` with ``limiter``, counting its run() calls."""

    class Limited(Command[str]):
        group_key = "Limited"
        command_key = name
        rate_limiter = limiter
        runs = 0

        def run(self) -> str:
            type(self).runs += 1
            return "ok"

        def get_fallback(self) -> str:
            return "later"

    Limited.properties = CommandProperties(
        execution_isolation_strategy=SEMAPHORE,
        **properties,  # type: ignore[arg-type]
    )
    Limited.__name__ = name
    return Limited


class TestRateLimitedCommand:
    def test_a_refusal_goes_to_the_fallback_without_run(self, fake_clock: FakeClock) -> None:
        """Past the bucket's burst, executions are RATE_LIMITED and get the fallback."""
        cls = limited("Burst2", TokenBucket(capacity=2, refill_per_second=1))
        answers = [cls().execute() for _ in range(3)]

        assert answers == ["ok", "ok", "later"]
        assert cls.runs == 2
        refused = cls()
        refused.execute()
        assert refused.execution_events == [RATE_LIMITED, EventType.FALLBACK_SUCCESS]
        assert refused.is_response_rate_limited
        assert refused.attempts == 0

    def test_tokens_come_back_with_time(self, fake_clock: FakeClock) -> None:
        """One second later the bucket has one more token."""
        cls = limited("Refills", TokenBucket(capacity=1, refill_per_second=1))
        assert cls().execute() == "ok"
        assert cls().execute() == "later"
        fake_clock.advance(1.0)
        assert cls().execute() == "ok"

    def test_a_refusal_does_not_count_against_the_circuit(self, fake_clock: FakeClock) -> None:
        """Rate-limited executions are not in the health counts, so they never trip it."""
        cls = limited(
            "NoTrip",
            TokenBucket(capacity=1, refill_per_second=0.001),
            circuit_breaker_request_volume_threshold=1,
        )
        for _ in range(30):
            cls().execute()
        metrics = hystrixpy.command_metrics("NoTrip")

        assert metrics.rolling_count(RATE_LIMITED) == 29
        assert metrics.health_counts().total_requests == 1
        assert hystrixpy.circuit_breaker("NoTrip").state.name == "CLOSED"

    def test_the_limiter_is_asked_before_the_breaker(self, fake_clock: FakeClock) -> None:
        """Circuit forced open: a call with no token is RATE_LIMITED, not short-circuited."""
        cls = limited(
            "BeforeBreaker",
            TokenBucket(capacity=1, refill_per_second=0.001),
            circuit_breaker_force_open=True,
        )
        first, second = cls(), cls()
        first.execute()
        second.execute()

        assert first.execution_events[0] is EventType.SHORT_CIRCUITED
        assert second.execution_events[0] is RATE_LIMITED

    def test_without_a_fallback_the_error_says_why(self, fake_clock: FakeClock) -> None:
        """No fallback: HystrixRuntimeError RATE_LIMITED, caused by RateLimitExceeded."""

        class NoFallback(Command[str]):
            group_key = "Limited"
            properties = CommandProperties(execution_isolation_strategy=SEMAPHORE)
            rate_limiter = TokenBucket(capacity=1, refill_per_second=2, name="tiny")

            def run(self) -> str:
                return "ok"

        NoFallback().execute()
        with pytest.raises(HystrixRuntimeError) as raised:
            NoFallback().execute()
        assert raised.value.failure_type is FailureType.RATE_LIMITED
        assert "refused by its rate limiter" in str(raised.value)
        cause = raised.value.__cause__
        assert isinstance(cause, RateLimitExceeded)
        assert cause.limiter == "tiny"
        assert cause.retry_after == pytest.approx(0.5)

    def test_queue_is_limited_too(self, fake_clock: FakeClock) -> None:
        """queue() checks the limiter first as well; thread isolation included."""
        cls = limited("Queued", TokenBucket(capacity=1, refill_per_second=0.001))
        cls.properties = CommandProperties()
        assert cls().queue().result(timeout=5) == "ok"
        assert cls().queue().result(timeout=5) == "later"

    def test_a_class_limiter_must_have_try_acquire(self) -> None:
        """rate_limiter = 5 fails when the class is defined."""
        with pytest.raises(TypeError, match=r"Wrong\.rate_limiter must have a try_acquire"):

            class Wrong(Command[str]):
                group_key = "Limited"
                rate_limiter = 5  # type: ignore[assignment]

                def run(self) -> str:
                    return "ok"


class TestConfiguredLimit:
    def test_configure_sets_a_token_bucket_by_key(self, fake_clock: FakeClock) -> None:
        """rate_limit_per_second and rate_limit_burst give the key its own token bucket."""
        cls = limited("Configured", None)
        hystrixpy.configure(
            {
                "hystrix.command.Configured.rateLimit.permitsPerSecond": "2",
                "command.Configured.rate_limit_burst": 3,
            }
        )
        answers = [cls().execute() for _ in range(4)]
        assert answers == ["ok", "ok", "ok", "later"]
        fake_clock.advance(0.5)
        assert cls().execute() == "ok"

    def test_a_configured_limit_wins_over_the_class_limiter(self, fake_clock: FakeClock) -> None:
        """A key's configured limit replaces its class's limiter; removing it restores it."""
        cls = limited("Overridden", TokenBucket(capacity=1, refill_per_second=0.001))
        hystrixpy.configure({"command.Overridden.rate_limit_per_second": 100})
        assert [cls().execute() for _ in range(5)] == ["ok"] * 5
        hystrixpy.configure({"command.Overridden.rate_limit_per_second": None})
        assert cls().execute() == "ok"  # the class's own bucket still has its one token
        assert cls().execute() == "later"

    def test_an_unchanged_configuration_keeps_the_bucket(self, fake_clock: FakeClock) -> None:
        """Configuring something else keeps the key's bucket (and its spent tokens)."""
        cls = limited("Kept", None)
        hystrixpy.configure({"command.Kept.rate_limit_per_second": 1})
        cls().execute()
        before = registry.state_of(cls()).rate_limiter
        hystrixpy.configure({"command.Kept.execution_timeout_ms": 900})
        assert registry.state_of(cls()).rate_limiter is before
        assert cls().execute() == "later"

    def test_a_rate_of_zero_is_refused(self) -> None:
        """rate_limit_per_second 0 names the property and the value."""
        with pytest.raises(ValueError, match=r"rate_limit_per_second.*got 0"):
            hystrixpy.configure({"command.Zero.rate_limit_per_second": 0})


class TestVisibility:
    def test_the_stream_and_prometheus_count_refusals(self, fake_clock: FakeClock) -> None:
        """rollingCountRateLimited on the stream, event="rate_limited" in a real scrape."""
        cls = limited("Seen", TokenBucket(capacity=1, refill_per_second=0.001))
        for _ in range(3):
            cls().execute()

        (message,) = [m for m in messages() if m.get("name") == "Seen"]
        assert message["rollingCountRateLimited"] == 2
        collector_registry = CollectorRegistry()
        register(collector_registry)
        text = generate_latest(collector_registry).decode()
        samples = {
            sample.labels.get("event"): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == "hystrix_command_events_total"
            and sample.labels.get("command_key") == "Seen"
        }
        assert samples["rate_limited"] == 2.0
