"""Retries of run() inside a command: one outcome for the breaker, every attempt counted."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

import hystrixpy
from hystrixpy import (
    BadRequestError,
    Command,
    CommandProperties,
    EventType,
    IsolationStrategy,
    deadline,
)
from hystrixpy.contrib.prometheus import register
from hystrixpy.retry import RetryPolicy
from hystrixpy.stream import messages
from hystrixpy.testing import FakeClock, use_clock

SEMAPHORE = IsolationStrategy.SEMAPHORE
RETRY, SUCCESS, FAILURE = EventType.RETRY, EventType.SUCCESS, EventType.FAILURE


@pytest.fixture
def sleepy_clock() -> Iterator[FakeClock]:
    """A fake clock whose sleeps move it on at once (retries wait without real time)."""
    fake = FakeClock(sleep_advances=True)
    with use_clock(fake):
        yield fake


class Flaky(Command[str]):
    """Fails with ConnectionError the first ``failures`` times it is run (counted per class)."""

    group_key = "Flaky"
    properties = CommandProperties(execution_isolation_strategy=SEMAPHORE)
    retry = RetryPolicy(max_attempts=3, initial_delay_ms=100, jitter=False)
    failures = 0
    error: Exception = ConnectionError("dropped")

    def run(self) -> str:
        cls = type(self)
        if cls.failures > 0:
            cls.failures -= 1
            raise cls.error
        return "ok"

    def get_fallback(self) -> str:
        return "fallback"


@pytest.fixture(autouse=True)
def _fresh_flaky() -> None:
    Flaky.failures = 0
    Flaky.error = ConnectionError("dropped")


class TestRetriedExecution:
    def test_retries_until_run_succeeds(self, sleepy_clock: FakeClock) -> None:
        """Two dropped attempts are retried after 100 and 200 ms, and the third succeeds."""
        Flaky.failures = 2
        command = Flaky()

        assert command.execute() == "ok"
        assert command.execution_events == [RETRY, RETRY, SUCCESS]
        assert command.attempts == 3
        assert sleepy_clock.sleeps == [0.1, 0.2]

    def test_breaker_and_health_see_one_outcome(self, sleepy_clock: FakeClock) -> None:
        """A success after retries is one request and no error in the health counts."""
        Flaky.failures = 2
        Flaky().execute()
        metrics = hystrixpy.command_metrics("Flaky")

        health = metrics.health_counts()
        assert (health.total_requests, health.error_count) == (1, 0)
        assert metrics.rolling_count(RETRY) == 2
        assert metrics.cumulative_count(RETRY) == 2
        assert metrics.rolling_count(SUCCESS) == 1

    def test_exhausted_retries_fail_once_and_fall_back(self, sleepy_clock: FakeClock) -> None:
        """When every attempt fails the execution is one FAILURE, then its fallback."""
        Flaky.failures = 5
        command = Flaky()

        assert command.execute() == "fallback"
        assert command.execution_events == [RETRY, RETRY, FAILURE, EventType.FALLBACK_SUCCESS]
        assert command.attempts == 3
        assert isinstance(command.failed_execution_exception, ConnectionError)
        health = hystrixpy.command_metrics("Flaky").health_counts()
        assert (health.total_requests, health.error_count) == (1, 1)

    def test_an_error_that_is_not_transient_is_not_retried(self, sleepy_clock: FakeClock) -> None:
        """A ValueError is a FAILURE at once: no retry, no sleep."""
        Flaky.failures, Flaky.error = 1, ValueError("bad data")
        command = Flaky()

        assert command.execute() == "fallback"
        assert command.execution_events == [FAILURE, EventType.FALLBACK_SUCCESS]
        assert command.attempts == 1
        assert sleepy_clock.sleeps == []

    def test_a_bad_request_is_raised_without_retry(self, sleepy_clock: FakeClock) -> None:
        """BadRequestError reaches the caller after one attempt."""
        Flaky.failures, Flaky.error = 1, BadRequestError("no such user")

        with pytest.raises(BadRequestError):
            Flaky().execute()
        assert hystrixpy.command_metrics("Flaky").cumulative_count(RETRY) == 0

    def test_retries_stop_before_the_deadline(self, sleepy_clock: FakeClock) -> None:
        """With 1000 ms to go, a 400 ms wait is made but the following 800 ms one is not."""

        class Slow(Flaky):
            properties = CommandProperties(
                execution_isolation_strategy=SEMAPHORE, execution_timeout_ms=1000
            )
            retry = RetryPolicy(max_attempts=5, initial_delay_ms=400, jitter=False)

        Slow.failures = 5
        command = Slow()

        assert command.execute() == "fallback"
        assert sleepy_clock.sleeps == [0.4]
        assert command.execution_events == [RETRY, FAILURE, EventType.FALLBACK_SUCCESS]

    def test_the_policy_own_on_retry_is_called_too(self, sleepy_clock: FakeClock) -> None:
        """A class policy's on_retry hears each retry beside the command's metrics."""
        heard: list[tuple[str, int, float]] = []

        class Heard(Flaky):
            retry = RetryPolicy(
                max_attempts=2,
                initial_delay_ms=50,
                jitter=False,
                on_retry=lambda error, attempt, delay_ms: heard.append(
                    (str(error), attempt, delay_ms)
                ),
            )

        Heard.failures = 1
        assert Heard().execute() == "ok"
        assert heard == [("dropped", 1, 50.0)]

    def test_retries_run_on_the_worker_in_thread_isolation(self, sleepy_clock: FakeClock) -> None:
        """A thread-isolated command retries on its pool's worker, within its deadline."""
        workers: list[str] = []

        class Pooled(Flaky):
            properties = CommandProperties(execution_timeout_ms=10_000)
            retry = RetryPolicy(max_attempts=3, initial_delay_ms=10, jitter=False)

            def run(self) -> str:
                workers.append(threading.current_thread().name)
                return super().run()

        Pooled.failures = 2
        command = Pooled()

        assert command.execute() == "ok"
        assert command.execution_events == [RETRY, RETRY, SUCCESS]
        assert command.is_executed_in_thread
        assert len(set(workers)) == 1
        assert workers[0].startswith("hystrix-Flaky")

    def test_a_queued_command_retries_too(self, sleepy_clock: FakeClock) -> None:
        """queue() gives the value of the attempt that succeeded."""
        Flaky.failures = 1
        command = Flaky()

        assert command.queue().result(timeout=10) == "ok"
        assert command.attempts == 2

    def test_no_attempt_is_reported_for_a_short_circuit(self) -> None:
        """A forced-open circuit never calls run(): zero attempts."""

        class Open(Flaky):
            properties = CommandProperties(
                execution_isolation_strategy=SEMAPHORE, circuit_breaker_force_open=True
            )

        command = Open()
        assert command.execute() == "fallback"
        assert command.attempts == 0
        assert Flaky().attempts == 0


class TestRetryConfiguration:
    def test_the_class_policy_becomes_its_retry_properties(self) -> None:
        """The policy's numbers are the class's code defaults for the retry_* properties."""
        properties = Flaky.properties
        assert properties.retry_max_attempts == 3
        assert properties.retry_initial_delay_ms == 100
        assert properties.retry_jitter is False
        assert "retry_max_attempts" in properties.explicit_fields

    def test_configure_changes_retries_by_key(self, sleepy_clock: FakeClock) -> None:
        """A per-key override (Hystrix-style name, string value) sets the attempts."""
        hystrixpy.configure({"hystrix.command.Flaky.retry.maxAttempts": "5"})
        Flaky.failures = 3  # one more than the class's own three attempts could absorb

        assert Flaky().execute() == "ok"
        assert hystrixpy.command_metrics("Flaky").cumulative_count(RETRY) == 3

    def test_one_attempt_turns_retries_off(self, sleepy_clock: FakeClock) -> None:
        """retry_max_attempts 1 for the key: the first failure falls back."""
        hystrixpy.configure({"command.Flaky.retry_max_attempts": 1})
        Flaky.failures = 1

        assert Flaky().execute() == "fallback"
        assert sleepy_clock.sleeps == []

    def test_a_global_default_gives_way_to_the_class_policy(self, sleepy_clock: FakeClock) -> None:
        """command.default.retry_max_attempts does not override the class's own policy."""
        hystrixpy.configure({"command.default.retry_max_attempts": 1})
        Flaky.failures = 2

        assert Flaky().execute() == "ok"

    def test_retries_can_be_configured_on_a_class_without_a_policy(
        self, sleepy_clock: FakeClock
    ) -> None:
        """A key with no class policy retries transient errors once configured to."""

        class Plain(Command[str]):
            group_key = "Plain"
            properties = CommandProperties(execution_isolation_strategy=SEMAPHORE)
            calls = 0

            def run(self) -> str:
                type(self).calls += 1
                if type(self).calls < 3:
                    raise TimeoutError("slow")
                return "ok"

        hystrixpy.configure(
            {"command.Plain.retry_max_attempts": 3, "command.Plain.retry_jitter": False}
        )
        assert Plain().execute() == "ok"
        assert sleepy_clock.sleeps == [0.1, 0.2]

    def test_a_bad_multiplier_is_refused_when_configured(self) -> None:
        """A multiplier below 1 or not a number names the property and the value."""
        with pytest.raises(ValueError, match=r"retry_backoff_multiplier.*0\.5"):
            hystrixpy.configure({"command.Flaky.retry_backoff_multiplier": 0.5})
        with pytest.raises(ValueError, match="must be a number, got 'fast'"):
            hystrixpy.configure({"hystrix.command.Flaky.retry.backoffMultiplier": "fast"})

    def test_a_multiplier_read_from_text_is_a_float(self, sleepy_clock: FakeClock) -> None:
        """A multiplier of "1.5" read from text makes delays of 100 then 150 ms."""
        hystrixpy.configure({"hystrix.command.Flaky.retry.backoffMultiplier": "1.5"})
        Flaky.failures = 2

        Flaky().execute()
        assert sleepy_clock.sleeps == [0.1, 0.15]

    def test_a_retry_that_is_not_a_policy_fails_at_definition(self) -> None:
        """retry = 3 on a command class is a TypeError naming the class."""
        with pytest.raises(TypeError, match=r"Wrong\.retry must be a RetryPolicy"):

            class Wrong(Flaky):
                retry = 3  # type: ignore[assignment]

    def test_an_inherited_policy_leaves_explicit_properties_alone(self) -> None:
        """A subclass's own retry_max_attempts wins over the policy it inherits."""

        class Child(Flaky):
            properties = CommandProperties(
                execution_isolation_strategy=SEMAPHORE, retry_max_attempts=7
            )

        assert Child.properties.retry_max_attempts == 7
        assert Child.properties.retry_initial_delay_ms == 100


class TestDeadlineInRun:
    def test_run_sees_its_deadline_on_the_caller(self, fake_clock: FakeClock) -> None:
        """A semaphore command's run() can read how long it has left."""
        seen: list[float | None] = []

        class Reads(Flaky):
            properties = CommandProperties(
                execution_isolation_strategy=SEMAPHORE, execution_timeout_ms=750
            )

            def run(self) -> str:
                seen.append(deadline.remaining())
                return "ok"

        Reads().execute()
        assert seen == [0.75]
        assert deadline.current() is None  # the caller's own context is untouched

    def test_run_sees_its_deadline_on_a_worker(self) -> None:
        """A thread-isolated run() reads the deadline of its execution, queue time included."""
        seen: list[float | None] = []

        class Reads(Flaky):
            properties = CommandProperties(execution_timeout_ms=5000)

            def run(self) -> str:
                seen.append(deadline.current())
                return "ok"

        command = Reads()
        command.execute()
        assert command._execution is not None
        assert seen == [command._execution.start + 5.0]

    def test_no_deadline_without_a_timeout(self) -> None:
        """With timeouts off, run() sees no deadline."""
        seen: list[float | None] = []

        class Untimed(Flaky):
            properties = CommandProperties(
                execution_isolation_strategy=SEMAPHORE, execution_timeout_enabled=False
            )

            def run(self) -> str:
                seen.append(deadline.remaining())
                return "ok"

        Untimed().execute()
        assert seen == [None]


class TestRetriesAreVisible:
    def test_the_stream_carries_the_rolling_retry_count(self, sleepy_clock: FakeClock) -> None:
        """rollingCountRetries in the key's HystrixCommand message."""
        Flaky.failures = 2
        Flaky().execute()

        (message,) = [m for m in messages() if m.get("name") == "Flaky"]
        assert message["rollingCountRetries"] == 2
        assert message["rollingCountSuccess"] == 1

    def test_prometheus_counts_retries(self, sleepy_clock: FakeClock) -> None:
        """hystrix_command_events_total{event="retry"} in a real scrape."""
        Flaky.failures = 1
        Flaky().execute()
        registry = CollectorRegistry()
        register(registry)

        text = generate_latest(registry).decode()
        samples = {
            (sample.labels.get("command_key"), sample.labels.get("event")): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == "hystrix_command_events_total"
        }
        assert samples[("Flaky", "retry")] == 1.0
