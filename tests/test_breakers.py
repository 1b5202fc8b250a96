"""Tests for hystrixpy.breakers: the standalone Breaker's modes, half-open rules and outcomes."""

from __future__ import annotations

import contextvars
import logging
import pickle
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from hystrixpy import deadline
from hystrixpy.breakers import Breaker, BreakerConfig, CircuitState, get_or_create
from hystrixpy.events import EventType
from hystrixpy.exceptions import (
    BadRequestError,
    CallTimeoutError,
    CircuitBreakerError,
    CommandTimeoutError,
    RejectedError,
)
from hystrixpy.testing import FakeClock, use_clock

CLOSED, OPEN, HALF_OPEN = CircuitState.CLOSED, CircuitState.OPEN, CircuitState.HALF_OPEN
WAIT = 5.0  # real seconds a test waits for another thread before it gives up


class DependencyDown(Exception):
    """The error a failing dependency raises in these tests."""


def ok() -> str:
    return "ok"


def boom() -> str:
    raise DependencyDown("down")


def fail(breaker: Breaker, times: int = 1, error: BaseException | None = None) -> None:
    """Make ``times`` calls through ``breaker`` that raise ``error`` (DependencyDown by default)."""
    raised = error if error is not None else DependencyDown("down")

    def failing() -> str:
        raise raised

    for _ in range(times):
        with pytest.raises(type(raised)):
            breaker.call(failing)


def raiser(error: BaseException) -> Callable[[], str]:
    """A function that raises ``error``."""

    def raising() -> str:
        raise error

    return raising


def rejected(breaker: Breaker) -> bool:
    """Whether a call made now is refused with CircuitBreakerError (and ``ok`` is not called)."""
    called = []
    try:
        breaker.call(lambda: called.append(1))
    except CircuitBreakerError:
        assert not called
        return True
    return False


class Gate:
    """Holds calls inside the breaker until the test opens it, counting those that entered."""

    def __init__(self) -> None:
        self.entered = threading.Semaphore(0)
        self.opened = threading.Event()

    def __call__(self) -> str:
        self.entered.release()
        assert self.opened.wait(WAIT)
        return "released"

    def wait_for(self, count: int) -> None:
        for _ in range(count):
            assert self.entered.acquire(timeout=WAIT)


def in_threads(count: int, target: Callable[[], Any]) -> tuple[list[threading.Thread], list[Any]]:
    """Start ``count`` threads running ``target``; each one's value or exception lands in a list."""
    outcomes: list[Any] = []

    def run() -> None:
        try:
            outcomes.append(target())
        except BaseException as error:
            outcomes.append(error)

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    return threads, outcomes


def join(threads: list[threading.Thread]) -> None:
    for thread in threads:
        thread.join(WAIT)
        assert not thread.is_alive()


class _Signal(logging.Handler):
    """Sets an Event when hystrixpy logs the event it waits for."""

    def __init__(self, event_name: str) -> None:
        super().__init__(logging.DEBUG)
        self.event_name = event_name
        self.seen = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, "hystrixpy_event", None) == self.event_name:
            self.seen.set()


@pytest.fixture
def dropped() -> Iterator[threading.Event]:
    """An Event set once a timeout pool's worker drops a late result (its DEBUG event)."""
    logger = logging.getLogger("hystrixpy")
    signal = _Signal("late_result_dropped")
    level = logger.level
    logger.addHandler(signal)
    logger.setLevel(logging.DEBUG)
    try:
        yield signal.seen
    finally:
        logger.removeHandler(signal)
        logger.setLevel(level)


@pytest.fixture
def breaker(fake_clock: FakeClock) -> Breaker:
    """A registered breaker with the defaults: 5 consecutive failures, 60 s recovery."""
    return get_or_create("dependency")


class TestConsecutiveMode:
    def test_trips_at_exactly_the_failure_threshold(self, breaker: Breaker) -> None:
        """Four failures in a row leave it closed; the fifth opens it."""
        fail(breaker, 4)
        assert breaker.state is CLOSED
        assert breaker.call(ok) == "ok"  # a success breaks the run
        fail(breaker, 4)
        assert breaker.state is CLOSED

        fail(breaker)

        assert breaker.state is OPEN
        assert rejected(breaker)

    def test_a_success_clears_the_run_of_failures(self, breaker: Breaker) -> None:
        """The count starts again after a success, so ten alternating failures never trip it."""
        for _ in range(10):
            fail(breaker, 4)
            assert breaker.call(ok) == "ok"
            assert breaker.stats().consecutive_failures == 0
        assert breaker.state is CLOSED

    def test_failures_spread_wider_than_the_monitoring_period_do_not_trip(
        self, fake_clock: FakeClock
    ) -> None:
        """Only a run whose newest and oldest failure lie within the period opens the circuit."""
        breaker = get_or_create("periodic", failure_threshold=3, monitoring_period_ms=1000)
        fail(breaker, 2)
        fake_clock.advance(1.5)
        fail(breaker)  # the oldest of the last three is 1.5 s back
        assert breaker.state is CLOSED
        fail(breaker)  # the last three still span 1.5 s
        assert breaker.state is CLOSED

        fake_clock.advance(1.0)
        fail(breaker)  # the last three now span exactly 1 s

        assert breaker.state is OPEN

    def test_without_a_period_old_failures_still_count(self, fake_clock: FakeClock) -> None:
        """With no monitoring period a run of failures trips however long it took."""
        breaker = get_or_create("patient", failure_threshold=2)
        fail(breaker)
        fake_clock.advance(3600)
        fail(breaker)
        assert breaker.state is OPEN


class TestRollingMode:
    def test_trips_at_exactly_the_volume_and_percentage(self, fake_clock: FakeClock) -> None:
        """Twenty calls of which exactly half failed open the circuit at the twentieth."""
        breaker = get_or_create(
            "rolling", error_threshold_percentage=50, request_volume_threshold=20
        )
        for _ in range(10):
            breaker.call(ok)
        fail(breaker, 9)
        assert breaker.state is CLOSED

        fail(breaker)

        assert breaker.state is OPEN
        stats = breaker.stats()
        assert (stats.mode, stats.error_percentage, stats.failures) == ("rolling", 50, 10)

    def test_below_the_volume_even_every_call_failing_does_not_trip(
        self, fake_clock: FakeClock
    ) -> None:
        """Nineteen failures out of nineteen calls keep it closed."""
        breaker = get_or_create("quiet", request_volume_threshold=20)
        fail(breaker, 19)
        assert breaker.state is CLOSED
        assert breaker.stats().error_percentage == 100

    def test_failures_age_out_of_the_rolling_window(self, fake_clock: FakeClock) -> None:
        """Failures older than the window no longer count towards the volume."""
        breaker = get_or_create("window", request_volume_threshold=4, rolling_window_ms=1000)
        fail(breaker, 3)
        fake_clock.advance_ms(1000)
        fail(breaker)
        assert breaker.state is CLOSED
        assert breaker.stats().failures == 1

    def test_successes_ageing_out_trip_it_without_a_new_failure(
        self, fake_clock: FakeClock
    ) -> None:
        """Once the successes leave the window, reading the state shows it open."""
        opened: list[BaseException | None] = []
        breaker = get_or_create(
            "ageing", request_volume_threshold=4, rolling_window_ms=2000, on_open=opened.append
        )
        for _ in range(4):
            breaker.call(ok)
        fake_clock.advance_ms(1000)
        fail(breaker, 4)  # 4 of 8 calls failed: 50% trips it
        assert breaker.state is OPEN
        assert isinstance(opened[0], DependencyDown)

        breaker.reset()
        for _ in range(5):
            breaker.call(ok)
        fake_clock.advance_ms(1000)
        fail(breaker, 4)  # 4 of 9: 44%, closed
        assert breaker.state is CLOSED
        fake_clock.advance_ms(1000)  # the successes leave the window

        assert breaker.state is OPEN
        assert opened[1] is None  # no failure tripped it: time did


class TestRecovery:
    def test_open_circuit_says_when_to_retry(self, fake_clock: FakeClock) -> None:
        """CircuitBreakerError names the breaker and the seconds until a trial is let through."""
        breaker = get_or_create("retry-after", failure_threshold=1, recovery_timeout_ms=10_000)
        fail(breaker)
        fake_clock.advance(4)

        with pytest.raises(CircuitBreakerError) as raised:
            breaker.call(ok)

        assert raised.value.breaker_name == "retry-after"
        assert raised.value.retry_after == pytest.approx(6.0)
        assert "retry-after" in str(raised.value)

    def test_the_error_survives_pickling(self, fake_clock: FakeClock) -> None:
        """CircuitBreakerError keeps its breaker name and retry time through pickle."""
        breaker = get_or_create("pickled", failure_threshold=1, recovery_timeout_ms=2000)
        fail(breaker)
        with pytest.raises(CircuitBreakerError) as raised:
            breaker.call(ok)

        copy = pickle.loads(pickle.dumps(raised.value))

        assert (copy.breaker_name, copy.retry_after) == ("pickled", 2.0)
        assert str(copy) == str(raised.value)

    def test_half_opens_exactly_at_the_recovery_timeout(self, fake_clock: FakeClock) -> None:
        """One millisecond before the timeout calls are refused; at the timeout a trial runs."""
        breaker = get_or_create("recovering", failure_threshold=1, recovery_timeout_ms=5000)
        fail(breaker)
        fake_clock.advance_ms(4999)
        assert rejected(breaker)
        assert breaker.state is OPEN

        fake_clock.advance_ms(1)
        assert breaker.call(ok) == "ok"
        assert breaker.state is CLOSED

    def test_failed_trial_reopens_for_a_new_recovery_timeout(self, fake_clock: FakeClock) -> None:
        """A trial that fails re-opens the circuit, counted from the trial's end."""
        breaker = get_or_create("relapse", failure_threshold=1, recovery_timeout_ms=5000)
        fail(breaker)
        fake_clock.advance(5)

        fail(breaker)

        assert breaker.state is OPEN
        fake_clock.advance_ms(4999)
        assert rejected(breaker)
        fake_clock.advance_ms(1)
        assert breaker.call(ok) == "ok"

    def test_success_threshold_trials_close_it(self, fake_clock: FakeClock) -> None:
        """With success_threshold=3 the circuit stays half-open until the third trial succeeds."""
        breaker = get_or_create(
            "cautious", failure_threshold=1, recovery_timeout_ms=1000, success_threshold=3
        )
        fail(breaker)
        fake_clock.advance(1)

        for _ in range(2):
            assert breaker.call(ok) == "ok"
            assert breaker.state is HALF_OPEN
        assert breaker.call(ok) == "ok"

        assert breaker.state is CLOSED

    def test_one_failed_trial_reopens_despite_earlier_trial_successes(
        self, fake_clock: FakeClock
    ) -> None:
        """Trial successes short of the threshold are forgotten when a trial fails."""
        breaker = get_or_create(
            "forgetful", failure_threshold=1, recovery_timeout_ms=1000, success_threshold=2
        )
        fail(breaker)
        fake_clock.advance(1)
        breaker.call(ok)
        fail(breaker)
        assert breaker.state is OPEN

        fake_clock.advance(1)
        breaker.call(ok)
        assert breaker.state is HALF_OPEN
        breaker.call(ok)
        assert breaker.state is CLOSED


class TestHalfOpenConcurrency:
    def test_exactly_half_open_max_calls_trials_run_and_the_rest_fail_fast(
        self, fake_clock: FakeClock
    ) -> None:
        """With three trial permits, three callers run and three more are refused at once."""
        breaker = get_or_create(
            "probing",
            failure_threshold=1,
            recovery_timeout_ms=1000,
            half_open_max_calls=3,
            success_threshold=3,
        )
        fail(breaker)
        fake_clock.advance(1)
        gate = Gate()

        trials, outcomes = in_threads(3, lambda: breaker.call(gate))
        try:
            gate.wait_for(3)
            assert breaker.state is HALF_OPEN
            assert breaker.stats().half_open_calls == 3
            for _ in range(3):  # refused on this thread, at once, while the trials run
                with pytest.raises(CircuitBreakerError) as raised:
                    breaker.call(ok)
                assert raised.value.retry_after is None
        finally:
            gate.opened.set()
            join(trials)

        assert outcomes == ["released"] * 3
        assert breaker.state is CLOSED
        assert breaker.stats().rejections == 3

    def test_a_freed_permit_admits_the_next_trial(self, fake_clock: FakeClock) -> None:
        """Once a trial succeeds short of the threshold, another caller may take its permit."""
        breaker = get_or_create(
            "relay", failure_threshold=1, recovery_timeout_ms=1000, success_threshold=2
        )
        fail(breaker)
        fake_clock.advance(1)
        gate = Gate()
        trials, _ = in_threads(1, lambda: breaker.call(gate))
        try:
            gate.wait_for(1)
            assert rejected(breaker)
        finally:
            gate.opened.set()
            join(trials)
        assert breaker.state is HALF_OPEN

        assert breaker.call(ok) == "ok"
        assert breaker.state is CLOSED

    def test_many_successes_are_all_counted(self, breaker: Breaker) -> None:
        """Successes counted without the lock, in batches, all reach the counts."""
        for _ in range(100):
            breaker.call(ok)
        stats = breaker.stats()
        assert (stats.successes, stats.total_successes) == (100, 100)

    def test_no_lock_is_held_around_the_call(self, breaker: Breaker) -> None:
        """Eight callers are inside the protected function at the same time."""
        barrier = threading.Barrier(8)

        def meet() -> int:
            return barrier.wait(WAIT)

        callers, outcomes = in_threads(8, lambda: breaker.call(meet))
        join(callers)

        assert sorted(outcomes) == list(range(8))
        assert breaker.metrics.rolling_max_concurrent_executions == 8


class TestRequestTimeout:
    def test_caller_gets_call_timeout_error_at_the_deadline(self, fake_clock: FakeClock) -> None:
        """A call still running at request_timeout_ms raises CallTimeoutError, a timeout."""
        breaker = get_or_create("slow", request_timeout_ms=500)
        gate = Gate()
        callers, outcomes = in_threads(1, lambda: breaker.call(gate))
        try:
            gate.wait_for(1)
            fake_clock.advance_ms(500)
            join(callers)
        finally:
            gate.opened.set()

        (error,) = outcomes
        assert isinstance(error, CallTimeoutError)
        assert isinstance(error, TimeoutError)
        assert "500 ms" in str(error)
        stats = breaker.stats()
        assert (stats.timeouts, stats.failures, stats.consecutive_failures) == (1, 1, 1)
        assert stats.last_failure == repr(error)

    def test_late_result_is_dropped(self, fake_clock: FakeClock, dropped: threading.Event) -> None:
        """A call that finishes after its deadline is not counted again, nor returned."""
        breaker = get_or_create("late", request_timeout_ms=100)
        gate = Gate()
        callers, outcomes = in_threads(1, lambda: breaker.call(gate))
        gate.wait_for(1)
        fake_clock.advance_ms(100)
        join(callers)
        gate.opened.set()
        assert dropped.wait(WAIT)

        assert isinstance(outcomes[0], CallTimeoutError)
        stats = breaker.stats()
        assert (stats.successes, stats.timeouts) == (0, 1)

    def test_the_call_sees_the_callers_context_and_the_deadline(
        self, fake_clock: FakeClock
    ) -> None:
        """The worker runs in a copy of the caller's contextvars, with the deadline as current."""
        request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id")
        request_id.set("r-42")
        breaker = get_or_create("context", request_timeout_ms=2000)

        def look() -> tuple[str, float | None, str]:
            return request_id.get(), deadline.remaining(), threading.current_thread().name

        seen, left, thread_name = breaker.call(look)

        assert seen == "r-42"
        assert left == pytest.approx(2.0)
        assert thread_name.startswith("hystrix-breaker-context-")

    def test_nearer_enclosing_deadline_is_kept(self, fake_clock: FakeClock) -> None:
        """Inside deadline.within() a shorter deadline than the request timeout stays current."""
        breaker = get_or_create("nested", request_timeout_ms=2000)
        with deadline.within(0.5):
            assert breaker.call(deadline.remaining) == pytest.approx(0.5)

    def test_values_and_errors_come_back_from_the_worker(self, fake_clock: FakeClock) -> None:
        """A timed call returns its value, and its error is re-raised and counted as a failure."""
        breaker = get_or_create("timed", request_timeout_ms=1000, failure_threshold=1)
        assert breaker.call(lambda a, b=0: a + b, 1, b=2) == 3

        with pytest.raises(DependencyDown):
            breaker.call(boom)

        assert breaker.state is OPEN
        stats = breaker.stats()
        assert (stats.successes, stats.failures, stats.timeouts) == (1, 1, 0)

    def test_full_pool_rejects_and_counts_it(self, fake_clock: FakeClock) -> None:
        """With every worker busy a call gets RejectedError at once, counted as a pool rejection."""
        breaker = get_or_create("narrow", request_timeout_ms=10_000, timeout_pool_size=1)
        gate = Gate()
        holders, outcomes = in_threads(1, lambda: breaker.call(gate))
        try:
            gate.wait_for(1)
            with pytest.raises(RejectedError, match="pool is full"):
                breaker.call(ok)
        finally:
            gate.opened.set()
            join(holders)

        assert outcomes == ["released"]
        assert breaker.metrics.cumulative_count(EventType.THREAD_POOL_REJECTED) == 1
        assert breaker.stats().failures == 1

    def test_timed_out_trial_reopens_the_circuit(self, fake_clock: FakeClock) -> None:
        """A trial that passes its deadline counts as a failed trial."""
        breaker = get_or_create(
            "slow-trial", failure_threshold=1, recovery_timeout_ms=1000, request_timeout_ms=100
        )
        fail(breaker)
        fake_clock.advance(1)
        gate = Gate()
        callers, outcomes = in_threads(1, lambda: breaker.call(gate))
        try:
            gate.wait_for(1)
            fake_clock.advance_ms(100)
            join(callers)
        finally:
            gate.opened.set()

        assert isinstance(outcomes[0], CallTimeoutError)
        assert breaker.state is OPEN

    def test_keyboard_interrupt_in_the_worker_reaches_the_caller(
        self, fake_clock: FakeClock
    ) -> None:
        """A KeyboardInterrupt raised by a timed call is re-raised on the caller's thread."""
        breaker = get_or_create("interrupted-worker", request_timeout_ms=1000)

        def interrupt() -> None:
            raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            breaker.call(interrupt)
        assert breaker.metrics.cumulative_count(EventType.CANCELLED) == 1
        assert breaker.stats().failures == 0

    def test_a_call_cancelled_by_a_pool_shutdown_is_a_rejection(
        self, fake_clock: FakeClock, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A call its pool will never start (shut down with cancel_futures) is rejected."""
        breaker = get_or_create("cancelled", request_timeout_ms=1000)

        def dispatch_then_cancel(task: Any) -> bool:
            task.cancel()  # what shutdown(cancel_futures=True) does to a queued task
            task.cancel()  # twice is harmless
            task()  # and a cancelled task that still reaches a worker does nothing
            return True

        monkeypatch.setattr(breaker._timeout_pool(), "try_dispatch", dispatch_then_cancel)
        with pytest.raises(RejectedError, match="shut down"):
            breaker.call(ok)
        assert breaker.metrics.cumulative_count(EventType.THREAD_POOL_REJECTED) == 1

    def test_interrupted_wait_gives_the_trial_back(self, dropped: threading.Event) -> None:
        """A caller interrupted while it waits frees its trial permit and counts a cancellation."""
        gate = Gate()

        class InterruptingClock(FakeClock):
            interrupt = False

            def wait(self, lock: threading.Lock, timeout: float) -> bool:
                if self.interrupt:
                    gate.wait_for(1)  # the call is running on its worker
                    raise KeyboardInterrupt
                return super().wait(lock, timeout)

        fake = InterruptingClock()
        with use_clock(fake):
            breaker = get_or_create(
                "impatient", failure_threshold=1, recovery_timeout_ms=1000, request_timeout_ms=1000
            )
            fail(breaker)
            fake.advance(1)
            fake.interrupt = True
            with pytest.raises(KeyboardInterrupt):
                breaker.call(gate)
            fake.interrupt = False
            gate.opened.set()
            assert dropped.wait(WAIT)  # the worker's result went nowhere

            assert breaker.state is HALF_OPEN
            assert breaker.stats().half_open_calls == 0
            assert breaker.metrics.cumulative_count(EventType.CANCELLED) == 1
            assert breaker.call(ok) == "ok"
            assert breaker.state is CLOSED

    def test_interrupted_wait_of_an_ordinary_call(self, dropped: threading.Event) -> None:
        """Interrupting the caller of a closed circuit's call counts a cancellation, no failure."""
        gate = Gate()

        class InterruptingClock(FakeClock):
            def wait(self, lock: threading.Lock, timeout: float) -> bool:
                gate.wait_for(1)
                raise KeyboardInterrupt

        with use_clock(InterruptingClock()):
            breaker = get_or_create("interrupted", request_timeout_ms=1000)
            with pytest.raises(KeyboardInterrupt):
                breaker.call(gate)
            gate.opened.set()
            assert dropped.wait(WAIT)
            assert breaker.metrics.cumulative_count(EventType.CANCELLED) == 1
            assert breaker.stats().failures == 0

    def test_a_worker_that_finishes_at_the_deadline_still_delivers(self) -> None:
        """If the wait times out just as the worker settles the call, the caller gets the value."""
        gate = Gate()

        class LateClock(FakeClock):
            def wait(self, lock: threading.Lock, timeout: float) -> bool:
                gate.wait_for(1)
                gate.opened.set()
                assert lock.acquire(timeout=WAIT)  # the worker settled the call...
                lock.release()
                return False  # ...but this wait reports its timeout all the same

        with use_clock(LateClock()):
            breaker = get_or_create("photo-finish", request_timeout_ms=1000)
            assert breaker.call(gate) == "released"
            stats = breaker.stats()
            assert (stats.successes, stats.timeouts) == (1, 0)


class TestWhatCountsAsFailure:
    @pytest.mark.parametrize(
        "options",
        [
            {"exclude": KeyError},
            {"exclude": [LookupError, OSError]},
            {"include": DependencyDown},
            {"is_failure": lambda error: not isinstance(error, KeyError)},
        ],
        ids=["exclude-one", "exclude-several", "include", "predicate"],
    )
    def test_an_error_that_is_not_a_failure_is_raised_recorded_and_ignored(
        self, fake_clock: FakeClock, options: dict[str, Any]
    ) -> None:
        """The caller gets the error as it was; it counts as BAD_REQUEST and as a success."""
        breaker = get_or_create("choosy", failure_threshold=2, **options)
        fail(breaker)
        error = KeyError("missing")
        with pytest.raises(KeyError) as raised:
            breaker.call(raiser(error))
        assert raised.value is error

        stats = breaker.stats()
        assert (stats.ignored_errors, stats.failures, stats.consecutive_failures) == (1, 1, 0)
        assert breaker.metrics.cumulative_count(EventType.BAD_REQUEST) == 1
        fail(breaker)
        assert breaker.state is CLOSED  # the run was broken by the ignored error

    def test_include_counts_only_the_named_errors(self, fake_clock: FakeClock) -> None:
        """With include, other errors never trip the circuit, the named ones do."""
        breaker = get_or_create("included", failure_threshold=1, include=(TimeoutError,))
        fail(breaker, 3)
        assert breaker.state is CLOSED
        fail(breaker, error=TimeoutError("slow"))
        assert breaker.state is OPEN

    def test_bad_request_error_never_counts(self, fake_clock: FakeClock) -> None:
        """BadRequestError is never a failure, even when include names it."""
        breaker = get_or_create("bad-input", failure_threshold=1, include=BadRequestError)
        fail(breaker, 3, error=BadRequestError("caller's fault"))
        assert breaker.state is CLOSED
        assert breaker.stats().ignored_errors == 3

    def test_a_predicate_that_raises_is_logged_and_the_error_counted(
        self, fake_clock: FakeClock, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A broken is_failure predicate does not hide the call's error; it counts as a failure."""

        def broken(error: BaseException) -> bool:
            raise ValueError("predicate bug")

        breaker = get_or_create("broken-predicate", failure_threshold=1, is_failure=broken)
        with caplog.at_level(logging.ERROR, logger="hystrixpy"):
            fail(breaker)

        assert breaker.state is OPEN
        (record,) = [r for r in caplog.records if r.hystrixpy_event == "breaker_predicate_failed"]
        assert record.hystrixpy["breaker"] == "broken-predicate"
        assert "predicate bug" in record.hystrixpy["error"]

    def test_an_excluded_error_in_a_trial_closes_the_circuit(self, fake_clock: FakeClock) -> None:
        """The dependency answered, so a trial ending in an ignored error is a successful trial."""
        breaker = get_or_create(
            "answered", failure_threshold=1, recovery_timeout_ms=1000, exclude=KeyError
        )
        fail(breaker)
        fake_clock.advance(1)
        fail(breaker, error=KeyError("no such row"))
        assert breaker.state is CLOSED

    def test_a_raised_timeout_counts_as_a_timeout(self, breaker: Breaker) -> None:
        """A CommandTimeoutError raised by the call itself is counted as TIMEOUT."""
        fail(breaker, error=CommandTimeoutError("slow"))
        assert breaker.stats().timeouts == 1

    @pytest.mark.parametrize("interrupt", [KeyboardInterrupt, SystemExit])
    def test_interrupts_propagate_and_never_count(
        self, breaker: Breaker, interrupt: type[BaseException]
    ) -> None:
        """KeyboardInterrupt and SystemExit reach the caller and are no failure."""
        fail(breaker, 10, error=interrupt())
        assert breaker.state is CLOSED
        stats = breaker.stats()
        assert (stats.failures, stats.consecutive_failures) == (0, 0)
        assert breaker.metrics.cumulative_count(EventType.CANCELLED) == 10

    def test_an_interrupted_trial_gives_its_permit_back(self, fake_clock: FakeClock) -> None:
        """After a trial is interrupted the breaker is not stuck: the next caller is the trial."""
        breaker = get_or_create("stuck?", failure_threshold=1, recovery_timeout_ms=1000)
        fail(breaker)
        fake_clock.advance(1)
        fail(breaker, error=KeyboardInterrupt())
        assert breaker.state is HALF_OPEN
        assert breaker.stats().half_open_calls == 0

        assert breaker.call(ok) == "ok"
        assert breaker.state is CLOSED


class TestListeners:
    def test_each_transition_is_told_once_in_order(self, fake_clock: FakeClock) -> None:
        """on_state_change hears every move, on_open the tripping error, on_close the close."""
        heard: list[tuple[str, Any]] = []
        breaker = get_or_create(
            "told",
            failure_threshold=2,
            recovery_timeout_ms=1000,
            on_state_change=lambda old, new: heard.append(("change", (old, new))),
            on_open=lambda error: heard.append(("open", error)),
            on_close=lambda: heard.append(("close", None)),
        )
        error = DependencyDown("second")
        fail(breaker)
        fail(breaker, error=error)
        for _ in range(3):
            assert rejected(breaker)
        fake_clock.advance(1)
        breaker.call(ok)
        breaker.call(ok)

        assert heard == [
            ("change", (CLOSED, OPEN)),
            ("open", error),
            ("change", (OPEN, HALF_OPEN)),
            ("change", (HALF_OPEN, CLOSED)),
            ("close", None),
        ]

    def test_listeners_run_outside_the_lock(self, fake_clock: FakeClock) -> None:
        """A listener may read the breaker it is told about (stats, state) without deadlock."""
        seen: list[tuple[CircuitState, CircuitState]] = []
        holder: list[Breaker] = []

        def look(old: CircuitState, new: CircuitState) -> None:
            stats = holder[0].stats()
            seen.append((holder[0].state, stats.state))

        breaker = get_or_create(
            "reentrant", failure_threshold=1, recovery_timeout_ms=1000, on_state_change=look
        )
        holder.append(breaker)

        def run() -> None:
            fail(breaker)
            fake_clock.advance(1)
            breaker.call(ok)

        worker = threading.Thread(target=run)
        worker.start()
        join([worker])

        assert seen == [(OPEN, OPEN), (HALF_OPEN, HALF_OPEN), (CLOSED, CLOSED)]

    def test_a_failing_listener_is_logged_and_the_call_goes_on(
        self, fake_clock: FakeClock, caplog: pytest.LogCaptureFixture
    ) -> None:
        """An exception in a listener is logged at ERROR; the caller still gets its own outcome."""

        def broken(*args: object) -> None:
            raise RuntimeError("listener bug")

        breaker = get_or_create(
            "noisy",
            failure_threshold=1,
            recovery_timeout_ms=1000,
            on_state_change=broken,
            on_open=broken,
            on_close=broken,
        )
        with caplog.at_level(logging.ERROR, logger="hystrixpy"):
            fail(breaker)
            fake_clock.advance(1)
            assert breaker.call(ok) == "ok"

        failures = [r for r in caplog.records if r.hystrixpy_event == "breaker_listener_failed"]
        assert [r.hystrixpy["listener"] for r in failures] == [
            "on_state_change",
            "on_open",
            "on_state_change",
            "on_state_change",
            "on_close",
        ]
        assert all(r.levelno == logging.ERROR and r.name == "hystrixpy" for r in failures)
        assert "listener bug" in failures[0].hystrixpy["error"]
        assert breaker.state is CLOSED

    def test_transitions_are_log_events(
        self, fake_clock: FakeClock, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Opening logs circuit_open at WARNING with the breaker's name; the rest at INFO."""
        breaker = get_or_create("logged", failure_threshold=1, recovery_timeout_ms=1000)
        with caplog.at_level(logging.INFO, logger="hystrixpy"):
            fail(breaker)
            fake_clock.advance(1)
            breaker.call(ok)

        moves = [r for r in caplog.records if r.hystrixpy_event.startswith("circuit_")]
        assert [(r.levelno, r.hystrixpy_event) for r in moves] == [
            (logging.WARNING, "circuit_open"),
            (logging.INFO, "circuit_half_open"),
            (logging.INFO, "circuit_closed"),
        ]
        assert moves[0].hystrixpy == {
            "breaker": "logged",
            "group": "breakers",
            "previous_state": "CLOSED",
        }


class TestStats:
    def test_a_fresh_breaker_reads_all_zero(self, breaker: Breaker) -> None:
        """Before any call every count is 0 and no time is set."""
        stats = breaker.stats()
        assert (stats.name, stats.state, stats.mode) == ("dependency", CLOSED, "consecutive")
        assert (stats.successes, stats.failures, stats.rejections, stats.timeouts) == (0, 0, 0, 0)
        assert (stats.last_failure, stats.last_failure_at) == (None, None)
        assert (stats.opened_at, stats.next_attempt_at, stats.half_open_calls) == (None, None, 0)

    def test_every_field_after_a_trip(self, fake_clock: FakeClock) -> None:
        """Counts in the window and in total, the last failure and the times, in wall-clock time."""
        breaker = get_or_create(
            "counted", failure_threshold=2, recovery_timeout_ms=30_000, rolling_window_ms=1000
        )
        breaker.call(ok)
        breaker.call(ok)
        fake_clock.advance_ms(1000)  # the successes leave the window, not the totals
        breaker.call(ok)
        fail(breaker)
        fail(breaker, error=DependencyDown("last"))
        opened_wall = fake_clock.wall_time()
        assert rejected(breaker)
        fake_clock.advance(0.5)  # the last success stays in the window, the first two do not

        stats = breaker.stats()

        assert (stats.successes, stats.total_successes) == (1, 3)
        assert (stats.failures, stats.total_failures) == (2, 2)
        assert (stats.rejections, stats.total_rejections) == (1, 1)
        assert (stats.ignored_errors, stats.total_ignored_errors) == (0, 0)
        assert stats.consecutive_failures == 2
        assert stats.error_percentage == 66
        assert stats.last_failure == "DependencyDown('last')"
        assert stats.last_failure_at == opened_wall
        assert stats.opened_at == pytest.approx(opened_wall)
        assert stats.next_attempt_at == pytest.approx(opened_wall + 30)
        assert stats.state is OPEN

    def test_half_open_has_no_next_attempt_time(self, fake_clock: FakeClock) -> None:
        """While half-open the open time stays and there is no next attempt time."""
        breaker = get_or_create(
            "half", failure_threshold=1, recovery_timeout_ms=1000, success_threshold=2
        )
        fail(breaker)
        opened_wall = fake_clock.wall_time()
        fake_clock.advance(1)
        breaker.call(ok)

        stats = breaker.stats()
        assert (stats.state, stats.next_attempt_at) == (HALF_OPEN, None)
        assert stats.opened_at == pytest.approx(opened_wall)


class TestReset:
    def test_reset_closes_and_forgets_the_counts(self, fake_clock: FakeClock) -> None:
        """After reset() the circuit is closed, every count 0 and the listeners told once."""
        heard: list[tuple[CircuitState, CircuitState]] = []
        closes: list[None] = []
        breaker = get_or_create(
            "resettable",
            failure_threshold=1,
            on_state_change=lambda old, new: heard.append((old, new)),
            on_close=lambda: closes.append(None),
        )
        breaker.call(ok)
        fail(breaker)

        breaker.reset()

        stats = breaker.stats()
        assert stats.state is CLOSED
        assert (stats.total_successes, stats.total_failures, stats.last_failure) == (0, 0, None)
        assert heard == [(CLOSED, OPEN), (OPEN, CLOSED)]
        assert closes == [None]
        assert breaker.call(ok) == "ok"

    def test_reset_of_a_closed_breaker_tells_no_one(self, fake_clock: FakeClock) -> None:
        """No transition, no listener call."""
        heard: list[object] = []
        breaker = get_or_create("calm", on_state_change=lambda *moved: heard.append(moved))
        fail(breaker, 2)
        breaker.reset()
        assert heard == []
        assert breaker.stats().consecutive_failures == 0

    def test_repr_names_breaker_and_state(self, breaker: Breaker) -> None:
        """The repr shows the name and the state."""
        assert repr(breaker) == "Breaker('dependency', CLOSED)"
        assert repr(breaker.view) == "BreakerView('dependency')"


class TestUnregisteredBreaker:
    def test_a_breaker_made_directly_works_alone(self, fake_clock: FakeClock) -> None:
        """Breaker(name) uses the default options and is not in the registry."""
        from hystrixpy import breakers

        alone = Breaker("alone")
        assert alone.config == BreakerConfig()
        fail(alone, 5)
        assert alone.state is OPEN
        assert breakers.registered() == []

    def test_a_breaker_needs_a_name(self) -> None:
        """An empty or non-str name raises ValueError."""
        with pytest.raises(ValueError, match="name"):
            Breaker("")
