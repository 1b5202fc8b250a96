"""Tests for hystrixpy.circuit_breaker, driven through real command executions."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import pytest

import hystrixpy
from hystrixpy import (
    BadRequestError,
    CircuitBreaker,
    CircuitState,
    Command,
    CommandProperties,
    CommandTimeoutError,
    EventType,
    FailureType,
    HealthCounts,
    HystrixRuntimeError,
    IsolationStrategy,
    NoOpCircuitBreaker,
    ShortCircuitedError,
)
from hystrixpy.circuit_breaker import ALLOWED, DENIED, TRIAL
from hystrixpy.metrics import CommandMetrics
from hystrixpy.testing import FakeClock

SEMAPHORE = IsolationStrategy.SEMAPHORE
SLEEP_WINDOW = 5.0


def ok() -> str:
    return "ok"


def boom() -> str:
    raise RuntimeError("dependency down")


class Probe(Command[str]):
    """A semaphore-isolated command that runs whatever behaviour it is given."""

    group_key = "BreakerGroup"
    thread_pool_key = "BreakerPool"
    properties = CommandProperties(execution_isolation_strategy=SEMAPHORE)

    def __init__(self, behaviour: Callable[[], str] = ok) -> None:
        super().__init__()
        self.behaviour = behaviour
        self.ran = False

    def run(self) -> str:
        self.ran = True
        return self.behaviour()

    def get_fallback(self) -> str:
        return "fallback"


class NoFallbackProbe(Probe):
    """A probe without a fallback."""

    get_fallback = Command.get_fallback  # type: ignore[assignment]


class ForcedOpenAndClosedProbe(Probe):
    properties = CommandProperties(
        execution_isolation_strategy=SEMAPHORE,
        circuit_breaker_force_open=True,
        circuit_breaker_force_closed=True,
    )


class ForcedClosedProbe(Probe):
    properties = CommandProperties(
        execution_isolation_strategy=SEMAPHORE, circuit_breaker_force_closed=True
    )


class DisabledBreakerProbe(Probe):
    properties = CommandProperties(
        execution_isolation_strategy=SEMAPHORE, circuit_breaker_enabled=False
    )


class SingleSlotProbe(Probe):
    properties = CommandProperties(
        execution_isolation_strategy=SEMAPHORE,
        execution_isolation_semaphore_max_concurrent_requests=1,
        execution_timeout_enabled=False,
    )


class SlowHealthCheckProbe(Probe):
    properties = CommandProperties(
        execution_isolation_strategy=SEMAPHORE, metrics_health_snapshot_interval_ms=300
    )


def execute(behaviour: Callable[[], str] = ok, cls: type[Probe] = Probe) -> Probe:
    """Execute one command of ``cls`` and return it (for its execution flags)."""
    command = cls(behaviour)
    command.execute()
    return command


def trip(cls: type[Probe] = Probe) -> None:
    """Open the circuit of ``cls`` with 20 failures (the default volume threshold)."""
    for _ in range(20):
        assert execute(boom, cls).ran
    assert hystrixpy.circuit_breaker(cls.command_key).state is CircuitState.OPEN


def fail_with(error: Exception, clock: FakeClock, seconds: float) -> Callable[[], str]:
    """A behaviour that lets ``seconds`` pass and then raises ``error``."""

    def behaviour() -> str:
        clock.advance(seconds)
        raise error

    return behaviour


def age_successes_out_of_window(clock: FakeClock, cls: type[Probe] = Probe) -> None:
    """21 successes, then 20 failures 5 s later (48%: no trip); ends at the successes' expiry."""
    for _ in range(21):
        execute(ok, cls)
    clock.advance(5.0)
    for _ in range(20):
        execute(boom, cls)
    assert hystrixpy.command_metrics(cls.command_key).health_counts() == HealthCounts(41, 20)


class TestCircuitBreaker:
    def test_trips_at_exactly_volume_threshold_and_fifty_percent(
        self, fake_clock: FakeClock
    ) -> None:
        """Twenty requests of which exactly half failed open the circuit at the 20th."""
        for _ in range(10):
            execute(ok)
        for _ in range(9):
            execute(boom)
        breaker = hystrixpy.circuit_breaker("Probe")
        assert breaker.state is CircuitState.CLOSED

        assert execute(boom).ran
        follow_up = execute(ok)

        assert not follow_up.ran
        assert follow_up.is_response_short_circuited
        assert breaker.state is CircuitState.OPEN

    def test_nineteen_failed_requests_do_not_trip(self, fake_clock: FakeClock) -> None:
        """Below the volume threshold even 100% errors leave the circuit closed."""
        for _ in range(19):
            execute(boom)
        breaker = hystrixpy.circuit_breaker("Probe")

        assert breaker.state is CircuitState.CLOSED
        assert not breaker.is_open()
        assert breaker.allow_request()
        assert execute(ok).ran

    def test_forty_nine_percent_errors_do_not_trip(self, fake_clock: FakeClock) -> None:
        """An error percentage one below the threshold keeps the circuit closed."""
        for _ in range(51):
            execute(ok)
        for _ in range(49):
            execute(boom)
        health = hystrixpy.command_metrics("Probe").health_counts()
        assert (health.total_requests, health.error_percentage) == (100, 49)

        assert hystrixpy.circuit_breaker("Probe").state is CircuitState.CLOSED
        assert execute(ok).ran

    def test_bad_requests_and_short_circuits_are_not_health_errors(
        self, fake_clock: FakeClock
    ) -> None:
        """BadRequestError never trips the circuit, and short-circuits do not add to the counts."""

        def bad() -> str:
            raise BadRequestError("caller's mistake")

        for _ in range(30):
            with pytest.raises(BadRequestError):
                execute(bad)
        assert hystrixpy.circuit_breaker("Probe").state is CircuitState.CLOSED

        trip()
        for _ in range(5):
            execute(ok)
        assert hystrixpy.command_metrics("Probe").health_counts() == HealthCounts(20, 20)

    def test_open_circuit_short_circuits_without_calling_run(self, fake_clock: FakeClock) -> None:
        """While OPEN, run() is not called and the fallback answers at once."""
        trip()

        command = Probe(ok)
        assert command.execute() == "fallback"

        assert not command.ran
        assert command.is_response_short_circuited
        assert command.is_circuit_breaker_open
        assert command.execution_events == [EventType.SHORT_CIRCUITED, EventType.FALLBACK_SUCCESS]
        assert hystrixpy.command_metrics("Probe").rolling_count(EventType.SHORT_CIRCUITED) == 1

    def test_open_circuit_without_fallback_raises_short_circuit_failure(
        self, fake_clock: FakeClock
    ) -> None:
        """Without a fallback the caller gets a SHORTCIRCUIT HystrixRuntimeError."""
        for _ in range(20):
            with pytest.raises(HystrixRuntimeError):
                NoFallbackProbe(boom).execute()

        command = NoFallbackProbe(ok)
        with pytest.raises(HystrixRuntimeError) as raised:
            command.execute()

        assert not command.ran
        assert raised.value.failure_type is FailureType.SHORTCIRCUIT
        assert isinstance(raised.value.__cause__, ShortCircuitedError)

    def test_trial_is_allowed_only_once_the_sleep_window_has_passed(
        self, fake_clock: FakeClock
    ) -> None:
        """Short-circuiting lasts the whole sleep window; at its end a request gets through."""
        trip()

        fake_clock.advance(SLEEP_WINDOW - 0.001)
        assert not execute(ok).ran

        fake_clock.advance(0.001)
        trial = execute(ok)
        assert trial.ran
        assert trial.is_successful_execution

    def test_exactly_one_concurrent_caller_becomes_the_trial(self, fake_clock: FakeClock) -> None:
        """After the sleep window one caller runs; every other caller is short-circuited at once."""
        trip()
        fake_clock.advance(SLEEP_WINDOW)
        callers = 6
        barrier = threading.Barrier(callers)
        trial_entered = threading.Event()
        release_trial = threading.Event()
        runners: list[str] = []
        outcomes: dict[str, tuple[str, Probe]] = {}

        def blocking_run() -> str:
            runners.append(threading.current_thread().name)
            trial_entered.set()
            release_trial.wait(10)
            return "trial"

        def call() -> None:
            command = Probe(blocking_run)
            barrier.wait(5)
            outcomes[threading.current_thread().name] = (command.execute(), command)

        threads = [threading.Thread(target=call, name=f"caller-{n}") for n in range(callers)]
        breaker = hystrixpy.circuit_breaker("Probe")
        try:
            for thread in threads:
                thread.start()
            assert trial_entered.wait(5)
            others = [thread for thread in threads if thread.name not in runners]
            for thread in others:
                thread.join(5)
                assert not thread.is_alive()

            assert breaker.state is CircuitState.HALF_OPEN
            assert breaker.is_open()
            assert not breaker.allow_request()
        finally:
            release_trial.set()
            for thread in threads:
                thread.join(5)

        assert all(not thread.is_alive() for thread in threads)
        assert len(runners) == 1
        trial_value, trial_command = outcomes[runners[0]]
        assert (trial_value, trial_command.ran) == ("trial", True)
        short_circuited = [outcomes[thread.name] for thread in others]
        assert len(short_circuited) == callers - 1
        for value, command in short_circuited:
            assert (value, command.ran) == ("fallback", False)
            assert command.is_response_short_circuited
        assert breaker.state is CircuitState.CLOSED

    def test_trial_success_closes_and_resets_health_counts(self, fake_clock: FakeClock) -> None:
        """A successful trial closes the circuit and forgets the failures that opened it."""
        trip()
        fake_clock.advance(SLEEP_WINDOW)

        assert execute(ok).ran

        breaker = hystrixpy.circuit_breaker("Probe")
        assert breaker.state is CircuitState.CLOSED
        assert hystrixpy.command_metrics("Probe").health_counts() == HealthCounts(0, 0)
        # The 20 old failures are still inside the rolling window but no longer count.
        assert execute(boom).ran
        assert breaker.state is CircuitState.CLOSED
        assert execute(ok).ran

    @pytest.mark.parametrize(
        ("error", "seconds", "expected_event"),
        [
            (RuntimeError("still down"), 1.0, EventType.FAILURE),
            (CommandTimeoutError("slow"), 1.0, EventType.TIMEOUT),
            (BadRequestError("bad input"), 1.0, EventType.BAD_REQUEST),
        ],
        ids=["failure", "raised-timeout", "bad-request"],
    )
    def test_trial_that_raises_reopens_with_a_new_sleep_window(
        self,
        fake_clock: FakeClock,
        error: Exception,
        seconds: float,
        expected_event: EventType,
    ) -> None:
        """A trial that fails in any way re-opens the circuit for a sleep window from its end."""
        trip()
        fake_clock.advance(SLEEP_WINDOW)

        trial = Probe(fail_with(error, fake_clock, seconds))
        try:
            trial.execute()
        except BadRequestError as raised:
            assert raised is error
        assert trial.ran
        assert expected_event in trial.execution_events
        failed_at = fake_clock.monotonic()
        breaker = hystrixpy.circuit_breaker("Probe")
        assert breaker.state is CircuitState.OPEN

        fake_clock.advance(SLEEP_WINDOW - 0.001)
        assert not execute(ok).ran
        assert fake_clock.monotonic() - failed_at < SLEEP_WINDOW
        fake_clock.advance(0.001)
        assert execute(ok).ran
        assert breaker.state is CircuitState.CLOSED

    def test_trial_that_times_out_reopens_with_a_new_sleep_window(
        self, fake_clock: FakeClock
    ) -> None:
        """A trial whose run() outlives the timeout re-opens the circuit from the time it ended."""
        trip()
        fake_clock.advance(SLEEP_WINDOW)

        def too_slow() -> str:
            fake_clock.advance(1.5)
            return "late"

        trial = execute(too_slow)
        assert trial.ran
        assert trial.is_response_timed_out
        assert hystrixpy.circuit_breaker("Probe").state is CircuitState.OPEN

        fake_clock.advance(SLEEP_WINDOW - 0.001)
        assert not execute(ok).ran
        fake_clock.advance(0.001)
        assert execute(ok).ran

    def test_rejected_trial_reopens_with_a_new_sleep_window(self, fake_clock: FakeClock) -> None:
        """A trial refused by its semaphore counts as failed and re-opens the circuit."""
        entered = threading.Event()
        release = threading.Event()

        def hold() -> str:
            entered.set()
            release.wait(10)
            return "held"

        holder = threading.Thread(target=lambda: SingleSlotProbe(hold).execute())
        holder.start()
        breaker = hystrixpy.circuit_breaker("SingleSlotProbe")
        try:
            assert entered.wait(5)
            for _ in range(20):
                assert execute(ok, SingleSlotProbe).is_response_semaphore_rejected
            assert breaker.state is CircuitState.OPEN
            fake_clock.advance(SLEEP_WINDOW)

            trial = execute(ok, SingleSlotProbe)

            assert not trial.ran
            assert trial.is_response_semaphore_rejected
            assert not trial.is_response_short_circuited
            assert breaker.state is CircuitState.OPEN
            fake_clock.advance(SLEEP_WINDOW - 0.001)
            assert execute(ok, SingleSlotProbe).is_response_short_circuited
        finally:
            release.set()
            holder.join(5)
        assert not holder.is_alive()
        fake_clock.advance(0.001)
        assert execute(ok, SingleSlotProbe).ran
        assert breaker.state is CircuitState.CLOSED

    @pytest.mark.parametrize(
        "reports_open",
        [
            lambda breaker: breaker.state is CircuitState.OPEN,
            lambda breaker: breaker.is_open(),
            lambda breaker: breaker.is_open_given(
                hystrixpy.command_metrics("Probe").snapshot().health
            ),
            lambda breaker: not breaker.allow_request(),
        ],
        ids=["state", "is_open", "is_open_given", "allow_request"],
    )
    def test_reading_applies_a_trip_that_is_due(
        self,
        fake_clock: FakeClock,
        reports_open: Callable[[CircuitBreaker | NoOpCircuitBreaker], bool],
    ) -> None:
        """Once successes age out of the window, reading the breaker shows it OPEN."""
        age_successes_out_of_window(fake_clock)
        breaker = hystrixpy.circuit_breaker("Probe")
        assert breaker.state is CircuitState.CLOSED

        fake_clock.advance(5.0)

        assert reports_open(breaker)
        assert breaker.state is CircuitState.OPEN
        assert not execute(ok).ran

    def test_reading_never_takes_the_trial(self, fake_clock: FakeClock) -> None:
        """After the sleep window the breaker reads OPEN and allows a request until one runs."""
        trip()
        breaker = hystrixpy.circuit_breaker("Probe")
        assert not breaker.allow_request()

        fake_clock.advance(SLEEP_WINDOW)
        for _ in range(3):
            assert breaker.allow_request()
            assert breaker.is_open()
            assert breaker.is_open_given(HealthCounts(0, 0))
            assert breaker.state is CircuitState.OPEN
        assert repr(breaker) == "CircuitBreaker('Probe', OPEN)"

        assert execute(ok).ran
        assert breaker.state is CircuitState.CLOSED

    def test_periodic_health_check_is_at_most_one_interval_late(
        self, fake_clock: FakeClock
    ) -> None:
        """A trip caused only by time passing is applied within the health snapshot interval."""
        age_successes_out_of_window(fake_clock, SlowHealthCheckProbe)
        fake_clock.advance(4.9)
        assert execute(ok, SlowHealthCheckProbe).ran  # the last health check, at +9.9 s

        # The 21 successes leave the window at +10.0 s; the check is due by +9.9 + 0.3 s.
        fake_clock.advance(0.3)
        late = execute(ok, SlowHealthCheckProbe)

        assert not late.ran
        assert late.is_response_short_circuited

    def test_force_open_wins_over_force_closed(self, fake_clock: FakeClock) -> None:
        """With both forced, every request is short-circuited and the breaker reads OPEN."""
        for _ in range(3):
            command = execute(ok, ForcedOpenAndClosedProbe)
            assert not command.ran
            assert command.is_response_short_circuited

        breaker = hystrixpy.circuit_breaker("ForcedOpenAndClosedProbe")
        assert breaker.state is CircuitState.OPEN
        assert breaker.is_open()
        assert breaker.is_open_given(HealthCounts(0, 0))
        fake_clock.advance(SLEEP_WINDOW * 2)
        assert not breaker.allow_request()
        assert not execute(ok, ForcedOpenAndClosedProbe).ran

    def test_force_open_from_configuration_applies_to_the_next_execution(
        self, fake_clock: FakeClock
    ) -> None:
        """Forcing a running command open by configuration short-circuits its next call."""
        assert execute(ok).ran
        hystrixpy.configure({"hystrix.command.Probe.circuitBreaker.forceOpen": "true"})
        assert not execute(ok).ran

        hystrixpy.configure({"hystrix.command.Probe.circuitBreaker.forceOpen": None})
        assert execute(ok).ran

    def test_force_closed_never_opens_but_counts_health(self, fake_clock: FakeClock) -> None:
        """A forced-closed circuit lets every failure run, while health is still tracked."""
        for _ in range(30):
            assert execute(boom, ForcedClosedProbe).ran
        breaker = hystrixpy.circuit_breaker("ForcedClosedProbe")

        assert breaker.state is CircuitState.CLOSED
        assert breaker.allow_request()
        health = hystrixpy.command_metrics("ForcedClosedProbe").health_counts()
        assert health == HealthCounts(30, 30)
        assert not breaker.is_open_given(health)

        hystrixpy.configure({"command.ForcedClosedProbe.circuit_breaker_force_closed": False})
        assert execute(ok, ForcedClosedProbe).is_response_short_circuited

    def test_disabled_breaker_is_a_no_op(self, fake_clock: FakeClock) -> None:
        """With circuit_breaker_enabled off, run() is always called and nothing ever opens."""
        for _ in range(30):
            assert execute(boom, DisabledBreakerProbe).ran
        breaker = hystrixpy.circuit_breaker("DisabledBreakerProbe")

        assert isinstance(breaker, NoOpCircuitBreaker)
        assert breaker.state is CircuitState.CLOSED
        assert not breaker.is_open()
        assert not breaker.is_open_given(HealthCounts(30, 30))
        assert breaker.allow_request()
        assert repr(breaker) == "NoOpCircuitBreaker('DisabledBreakerProbe')"

        hystrixpy.configure({"command.DisabledBreakerProbe.circuit_breaker_sleep_window_ms": 1})
        assert hystrixpy.circuit_breaker("DisabledBreakerProbe") is breaker
        assert execute(boom, DisabledBreakerProbe).ran

    def test_enabling_the_breaker_by_configuration_replaces_the_no_op(
        self, fake_clock: FakeClock
    ) -> None:
        """Turning circuit_breaker_enabled on at run time gives a real breaker that can trip."""
        execute(ok, DisabledBreakerProbe)
        hystrixpy.configure({"command.DisabledBreakerProbe.circuit_breaker_enabled": True})

        breaker = hystrixpy.circuit_breaker("DisabledBreakerProbe")
        assert isinstance(breaker, CircuitBreaker)
        for _ in range(18):
            execute(boom, DisabledBreakerProbe)
        assert breaker.state is CircuitState.CLOSED
        # The success before the change still counts: 19 failures in 20 requests trip it.
        assert execute(boom, DisabledBreakerProbe).ran
        assert not execute(ok, DisabledBreakerProbe).ran
        assert breaker.state is CircuitState.OPEN

    def test_transitions_are_logged(
        self, fake_clock: FakeClock, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Opening logs a WARNING naming the keys; half-opening and closing log at INFO."""
        caplog.set_level(logging.INFO, logger="hystrixpy")
        trip()
        fake_clock.advance(SLEEP_WINDOW)
        execute(ok)

        transitions = [r for r in caplog.records if r.getMessage().startswith("circuit_")]
        assert [(r.levelno, r.hystrixpy_event) for r in transitions] == [
            (logging.WARNING, "circuit_open"),
            (logging.INFO, "circuit_half_open"),
            (logging.INFO, "circuit_closed"),
        ]
        opened = transitions[0]
        assert opened.name == "hystrixpy"
        assert opened.hystrixpy == {
            "command_key": "Probe",
            "group_key": "BreakerGroup",
            "thread_pool_key": "BreakerPool",
            "previous_state": "CLOSED",
        }
        assert "command_key=Probe" in opened.getMessage()
        assert transitions[2].hystrixpy["previous_state"] == "HALF_OPEN"

    def test_breaker_without_a_listener_moves_through_its_states(
        self, fake_clock: FakeClock
    ) -> None:
        """A breaker built on its own, with no transition listener, opens, trials and closes."""
        properties = CommandProperties(circuit_breaker_request_volume_threshold=1)
        metrics = CommandMetrics("Direct", "DirectGroup", "DirectPool", properties)
        breaker = CircuitBreaker("Direct", metrics, properties)
        now = fake_clock.monotonic()
        assert breaker.attempt_execution(now) == ALLOWED

        metrics.record([EventType.FAILURE], now)
        breaker.on_result(False, True, False, now)
        assert breaker.state is CircuitState.OPEN
        assert breaker.attempt_execution(now) == DENIED

        later = now + SLEEP_WINDOW
        assert breaker.attempt_execution(later) == TRIAL
        assert breaker.attempt_execution(later) == DENIED
        breaker.on_result(True, False, True, later)
        assert breaker.state is CircuitState.CLOSED

    def test_fast_path_hints_agree_with_the_breaker(self, fake_clock: FakeClock) -> None:
        """Before ``allow_until`` the breaker would allow, before ``deny_until`` it would deny.

        execute() trusts these two times instead of asking the breaker, so they must never
        contradict attempt_execution(), in any state.
        """
        properties = CommandProperties(circuit_breaker_request_volume_threshold=1)
        metrics = CommandMetrics("Hints", "HintsGroup", "HintsPool", properties)
        breaker = CircuitBreaker("Hints", metrics, properties)

        def check(now: float) -> int:
            allow_until, deny_until = breaker.allow_until, breaker.deny_until
            decision = breaker.attempt_execution(now)
            assert not (now < allow_until and now < deny_until)
            if now < allow_until:
                assert decision == ALLOWED
            if now < deny_until:
                assert decision == DENIED
            return decision

        now = fake_clock.monotonic()
        assert check(now) == ALLOWED
        metrics.record([EventType.FAILURE], now)
        breaker.on_result(False, True, False, now)
        assert breaker.deny_until == now + SLEEP_WINDOW
        assert check(now + 1.0) == DENIED
        assert check(now + SLEEP_WINDOW) == TRIAL
        assert check(now + SLEEP_WINDOW) == DENIED  # half-open, its trial still out
        breaker.on_result(False, False, True, now + SLEEP_WINDOW)  # the trial failed
        assert check(now + SLEEP_WINDOW + 1.0) == DENIED
        reopened = now + 2 * SLEEP_WINDOW
        assert check(reopened) == TRIAL
        breaker.on_result(True, False, True, reopened)
        assert breaker.deny_until == float("-inf")
        assert check(reopened + 0.1) == ALLOWED

        breaker.reconfigure(CommandProperties(circuit_breaker_force_open=True))
        assert check(reopened + 1.0) == DENIED
        assert breaker.deny_until == float("inf")
        breaker.reconfigure(CommandProperties(circuit_breaker_force_closed=True))
        assert check(reopened + 2.0) == ALLOWED
        assert breaker.allow_until == float("inf")

        no_op = NoOpCircuitBreaker("Hints")
        assert no_op.attempt_execution(now) == ALLOWED
        assert no_op.allow_until == float("inf") > no_op.deny_until

    def test_unknown_command_key_raises_key_error(self) -> None:
        """Asking for the breaker of a command key never used raises KeyError naming it."""
        with pytest.raises(KeyError, match="NeverUsed"):
            hystrixpy.circuit_breaker("NeverUsed")
