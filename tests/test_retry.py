"""Tests for hystrixpy.retry: the policy, its delays, retry(), the decorators and threads."""

from __future__ import annotations

import dataclasses
import functools
import inspect
import logging
import pickle
import random
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import structlog
from hypothesis import given
from hypothesis import strategies as st
from structlog.testing import LogCapture

from hystrixpy import clock
from hystrixpy.exceptions import RetryError
from hystrixpy.retry import (
    RetryOutcome,
    RetryPolicy,
    is_transient,
    make_retryable,
    retry,
    retry_with_result,
)
from hystrixpy.testing import FakeClock, use_clock

EXACT = RetryPolicy(jitter=False)


@pytest.fixture
def sleepy() -> Iterator[FakeClock]:
    """A fake clock whose sleeps move it on at once, installed for the test."""
    fake = FakeClock(sleep_advances=True)
    with use_clock(fake):
        yield fake


class Script:
    """A callable that raises or returns what it is given, one item per call."""

    def __init__(self, *steps: object) -> None:
        self.steps = list(steps)
        self.calls = 0

    def __call__(self) -> Any:
        self.calls += 1
        step = self.steps.pop(0)
        if isinstance(step, BaseException):
            raise step
        return step


def heard_by(record: list[tuple[Exception, int, float]]) -> Callable[[Exception, int, float], None]:
    def listener(error: Exception, attempt: int, delay_ms: float) -> None:
        record.append((error, attempt, delay_ms))

    return listener


class TestRetryPolicyDefaults:
    def test_defaults(self) -> None:
        """Three attempts, 100 ms doubling up to 30 s, jitter, the transient test, no callbacks."""
        policy = RetryPolicy()

        assert policy.max_attempts == 3
        assert policy.initial_delay_ms == 100
        assert policy.backoff_multiplier == 2.0
        assert policy.max_delay_ms == 30_000
        assert policy.jitter is True
        assert policy.is_retryable is is_transient
        assert policy.on_retry is None
        assert policy.retry_on_result is None
        assert policy.random is random.random

    def test_is_immutable(self) -> None:
        """A policy cannot be changed in place; dataclasses.replace makes a changed copy."""
        policy = RetryPolicy()

        with pytest.raises(dataclasses.FrozenInstanceError):
            policy.max_attempts = 5  # type: ignore[misc]
        assert dataclasses.replace(policy, max_attempts=5).max_attempts == 5
        assert policy.max_attempts == 3

    def test_options_are_keyword_only(self) -> None:
        """RetryPolicy(5) is refused: every option is named."""
        with pytest.raises(TypeError):
            RetryPolicy(5)  # type: ignore[misc]

    def test_max_delay_below_initial_delay_is_allowed(self) -> None:
        """A cap below the first delay is accepted and makes every delay the cap."""
        policy = RetryPolicy(initial_delay_ms=1000, max_delay_ms=300, jitter=False)

        assert [policy.delay_ms(n) for n in (1, 2, 3)] == [300.0, 300.0, 300.0]


class TestRetryPolicyValidation:
    @pytest.mark.parametrize(
        ("option", "value", "error", "message"),
        [
            ("max_attempts", 0, ValueError, r"max_attempts must be >= 1, got 0"),
            ("max_attempts", -2, ValueError, r"max_attempts must be >= 1, got -2"),
            ("max_attempts", 2.5, TypeError, r"max_attempts must be an int, got 2\.5"),
            ("max_attempts", True, TypeError, r"max_attempts must be an int, got True"),
            ("max_attempts", "3", TypeError, r"max_attempts must be an int, got '3'"),
            ("initial_delay_ms", -1, ValueError, r"initial_delay_ms must be >= 0, got -1"),
            (
                "initial_delay_ms",
                float("nan"),
                ValueError,
                r"initial_delay_ms must be >= 0, got nan",
            ),
            (
                "initial_delay_ms",
                float("inf"),
                ValueError,
                r"initial_delay_ms must be finite, got inf",
            ),
            ("initial_delay_ms", "100", TypeError, r"initial_delay_ms must be a number, got '100'"),
            ("backoff_multiplier", 0.5, ValueError, r"backoff_multiplier must be >= 1, got 0\.5"),
            ("backoff_multiplier", float("inf"), ValueError, r"backoff_multiplier must be finite"),
            ("max_delay_ms", -5.0, ValueError, r"max_delay_ms must be >= 0, got -5\.0"),
            ("max_delay_ms", False, TypeError, r"max_delay_ms must be a number, got False"),
            ("jitter", "yes", TypeError, r"jitter must be a bool, got 'yes'"),
            ("is_retryable", None, TypeError, r"is_retryable must be a callable, got None"),
            ("is_retryable", 3, TypeError, r"is_retryable must be a callable, got 3"),
            ("on_retry", "log", TypeError, r"on_retry must be a callable or None, got 'log'"),
            ("retry_on_result", 1, TypeError, r"retry_on_result must be a callable or None, got 1"),
            ("random", None, TypeError, r"random must be a callable, got None"),
        ],
    )
    def test_a_bad_option_names_itself_and_its_value(
        self, option: str, value: object, error: type[Exception], message: str
    ) -> None:
        """Building a policy with a bad option fails at once, naming the option and the value."""
        with pytest.raises(error, match=message):
            RetryPolicy(**{option: value})

    def test_an_infinite_cap_is_allowed(self) -> None:
        """max_delay_ms may be infinite: no cap at all."""
        policy = RetryPolicy(max_delay_ms=float("inf"), jitter=False)

        assert policy.delay_ms(20) == 100 * 2.0**19

    def test_retry_checks_its_options_before_calling(self) -> None:
        """retry(fn, max_attempts=0) raises ValueError and never calls fn."""
        fn = Script("never")

        with pytest.raises(ValueError, match=r"max_attempts must be >= 1, got 0"):
            retry(fn, max_attempts=0)
        assert fn.calls == 0

    def test_an_unknown_option_lists_the_options(self) -> None:
        """A misspelt option is a TypeError that lists the real ones."""
        with pytest.raises(
            TypeError, match=r"unknown retry option\(s\) max_attempt; .*max_attempts"
        ):
            retry(lambda: 1, max_attempt=3)  # type: ignore[call-arg]

    def test_policy_must_be_a_policy(self) -> None:
        """policy= takes a RetryPolicy only."""
        with pytest.raises(TypeError, match=r"policy must be a RetryPolicy, got 3"):
            retry(lambda: 1, policy=3)  # type: ignore[arg-type]


class TestDelays:
    def test_exponential_without_jitter(self) -> None:
        """Without jitter the delays double from 100 ms: walked forward attempt by attempt."""
        assert [EXACT.delay_ms(n) for n in range(1, 7)] == [100, 200, 400, 800, 1600, 3200]

    def test_capped_at_max_delay(self) -> None:
        """Delays grow up to max_delay_ms and stay there."""
        policy = RetryPolicy(initial_delay_ms=100, max_delay_ms=500, jitter=False)

        assert [policy.delay_ms(n) for n in range(1, 6)] == [100, 200, 400, 500, 500]

    def test_other_multipliers(self) -> None:
        """The multiplier sets the growth; 1 keeps the delay constant."""
        triple = RetryPolicy(initial_delay_ms=10, backoff_multiplier=3, jitter=False)
        constant = RetryPolicy(initial_delay_ms=250, backoff_multiplier=1, jitter=False)

        assert [triple.delay_ms(n) for n in (1, 2, 3, 4)] == [10, 30, 90, 270]
        assert [constant.delay_ms(n) for n in (1, 2, 3)] == [250, 250, 250]

    def test_delays_are_floats(self) -> None:
        """Integer options still give float delays."""
        policy = RetryPolicy(initial_delay_ms=100, backoff_multiplier=2, jitter=False)

        assert type(policy.delay_ms(3)) is float

    def test_equal_jitter_bounds(self) -> None:
        """With jitter, random 0 gives half the delay, 1 the whole, 0.5 three quarters."""
        policy = RetryPolicy()

        assert policy.delay_ms(3, random_value=0.0) == 200.0
        assert policy.delay_ms(3, random_value=1.0) == 400.0
        assert policy.delay_ms(3, random_value=0.5) == 300.0

    def test_seeded_jitter_is_exact(self) -> None:
        """The jittered delays follow the seeded random source exactly."""
        policy = RetryPolicy(random=random.Random(1234).random)
        expected_source = random.Random(1234)
        expected = []
        for attempt in range(1, 6):
            half = min(100 * 2.0 ** (attempt - 1), 30_000) / 2.0
            expected.append(half + half * expected_source.random())

        assert [policy.delay_ms(n) for n in range(1, 6)] == expected

    @given(
        attempt=st.integers(min_value=1, max_value=200),
        drawn=st.floats(min_value=0.0, max_value=1.0),
        initial=st.floats(min_value=0.0, max_value=10_000.0),
        cap=st.floats(min_value=0.0, max_value=100_000.0),
    )
    def test_jitter_never_exceeds_the_delay_or_the_cap(
        self, attempt: int, drawn: float, initial: float, cap: float
    ) -> None:
        """Equal jitter stays in [d/2, d] of the un-jittered delay d, which is at most the cap."""
        jittered = RetryPolicy(initial_delay_ms=initial, max_delay_ms=cap)
        plain = dataclasses.replace(jittered, jitter=False)
        whole = plain.delay_ms(attempt)

        assert whole <= cap
        assert whole / 2 <= jittered.delay_ms(attempt, random_value=drawn) <= whole

    def test_huge_attempt_numbers_stay_at_the_cap(self) -> None:
        """An exponent too large for a float gives max_delay_ms, not OverflowError."""
        assert EXACT.delay_ms(5000) == 30_000.0
        assert RetryPolicy(initial_delay_ms=0, jitter=False).delay_ms(5000) == 0.0

    def test_retry_after_is_a_floor_capped_at_max(self) -> None:
        """A server's Retry-After raises the delay to it, but never beyond max_delay_ms."""
        assert EXACT.delay_ms(1, retry_after_ms=2500) == 2500.0
        assert EXACT.delay_ms(3, retry_after_ms=50) == 400.0
        assert EXACT.delay_ms(1, retry_after_ms=90_000) == 30_000.0
        assert RetryPolicy().delay_ms(1, random_value=0.0, retry_after_ms=80) == 80.0

    @pytest.mark.parametrize("attempt", [0, -1, 1.5, True])
    def test_attempt_must_be_a_positive_int(self, attempt: Any) -> None:
        """delay_ms() counts attempts from 1."""
        with pytest.raises(ValueError, match=r"attempt must be an int >= 1"):
            EXACT.delay_ms(attempt)

    def test_random_value_must_be_in_range(self) -> None:
        """A random value outside [0, 1] (from the argument or a broken source) is refused."""
        with pytest.raises(ValueError, match=r"random_value must be in \[0, 1\], got 1\.5"):
            RetryPolicy().delay_ms(1, random_value=1.5)
        with pytest.raises(ValueError, match=r"got -0\.25"):
            RetryPolicy(random=lambda: -0.25).delay_ms(1)


class TestRetry:
    def test_a_success_is_returned_without_sleeping(self, sleepy: FakeClock) -> None:
        """The first success is the answer: one call, no sleep."""
        fn = Script("value")

        assert retry(fn) == "value"
        assert fn.calls == 1
        assert sleepy.sleeps == []

    def test_transient_failures_are_retried_with_exact_delays(self, sleepy: FakeClock) -> None:
        """Two connection errors, then a value: waits of 100 ms and 200 ms without jitter."""
        fn = Script(ConnectionError("a"), ConnectionError("b"), "value")

        assert retry(fn, jitter=False) == "value"
        assert fn.calls == 3
        assert sleepy.sleeps == [0.1, 0.2]

    def test_seeded_jitter_gives_exact_sleeps(self, sleepy: FakeClock) -> None:
        """With a seeded random source, each sleep is the equal-jitter delay of that draw."""
        fn = Script(TimeoutError(), TimeoutError(), TimeoutError(), "value")
        source = random.Random(99)
        first, second, third = source.random(), source.random(), source.random()

        assert retry(fn, max_attempts=4, random=random.Random(99).random) == "value"
        assert sleepy.sleeps == [
            (50 + 50 * first) / 1000,
            (100 + 100 * second) / 1000,
            (200 + 200 * third) / 1000,
        ]

    def test_exhausted_attempts_raise_the_last_error_with_the_count(
        self, sleepy: FakeClock
    ) -> None:
        """After max_attempts failures the last error itself is raised, carrying the count."""
        last = ConnectionError("third")
        fn = Script(ConnectionError("first"), ConnectionError("second"), last)

        with pytest.raises(ConnectionError) as raised:
            retry(fn, jitter=False)

        assert raised.value is last
        assert raised.value.retry_attempts == 3  # type: ignore[attr-defined]
        assert raised.value.__notes__ == ["hystrixpy.retry: gave up after 3 attempt(s)"]
        assert sleepy.sleeps == [0.1, 0.2]

    def test_later_errors_are_not_chained_to_the_first(self, sleepy: FakeClock) -> None:
        """The raised error has no __context__ from the earlier attempts' errors."""
        fn = Script(ConnectionError("first"), ConnectionError("second"))

        with pytest.raises(ConnectionError) as raised:
            retry(fn, max_attempts=2)

        assert raised.value.__context__ is None

    def test_an_error_that_is_not_transient_is_raised_at_once(self, sleepy: FakeClock) -> None:
        """A ValueError is not retried and is raised untouched."""
        error = ValueError("bad input")
        fn = Script(error, "never")

        with pytest.raises(ValueError) as raised:
            retry(fn)

        assert raised.value is error
        assert fn.calls == 1
        assert sleepy.sleeps == []
        assert not hasattr(error, "retry_attempts")

    def test_a_later_error_that_is_not_retryable_ends_the_retries(self, sleepy: FakeClock) -> None:
        """A permanent error after a transient one is raised with the attempts made so far."""
        fn = Script(ConnectionError("blip"), ValueError("permanent"), "never")

        with pytest.raises(ValueError, match="permanent") as raised:
            retry(fn, jitter=False)

        assert fn.calls == 2
        assert raised.value.retry_attempts == 2  # type: ignore[attr-defined]
        assert raised.value.__notes__ == ["hystrixpy.retry: the error is not retryable"]
        assert sleepy.sleeps == [0.1]

    def test_one_attempt_means_no_retry(self, sleepy: FakeClock) -> None:
        """max_attempts=1 makes one attempt, and says so on the error."""
        fn = Script(ConnectionError("down"), "never")

        with pytest.raises(ConnectionError) as raised:
            retry(fn, max_attempts=1)

        assert fn.calls == 1
        assert raised.value.retry_attempts == 1  # type: ignore[attr-defined]
        assert sleepy.sleeps == []

    @pytest.mark.parametrize("interrupt", [KeyboardInterrupt, SystemExit, GeneratorExit])
    def test_base_exceptions_propagate_at_once_on_the_first_attempt(
        self, sleepy: FakeClock, interrupt: type[BaseException]
    ) -> None:
        """KeyboardInterrupt and kin are neither judged nor retried, whatever is_retryable says."""
        judged: list[BaseException] = []
        fn = Script(interrupt(), "never")

        with pytest.raises(interrupt):
            retry(fn, is_retryable=lambda error: judged.append(error) or True)

        assert fn.calls == 1
        assert judged == []
        assert sleepy.sleeps == []

    @pytest.mark.parametrize("interrupt", [KeyboardInterrupt, SystemExit])
    def test_base_exceptions_propagate_at_once_on_a_later_attempt(
        self, sleepy: FakeClock, interrupt: type[BaseException]
    ) -> None:
        """A KeyboardInterrupt during a retry stops it at once, whatever is_retryable says."""
        stop = interrupt()
        fn = Script(ConnectionError("blip"), stop, "never")

        with pytest.raises(interrupt) as raised:
            retry(fn, is_retryable=lambda error: True, jitter=False)

        assert raised.value is stop
        assert fn.calls == 2
        assert sleepy.sleeps == [0.1]

    def test_is_retryable_decides_and_sees_the_error(self, sleepy: FakeClock) -> None:
        """A custom test extending is_transient retries what it accepts."""

        class Flaky(Exception):
            pass

        seen: list[Exception] = []
        first, second = Flaky("one"), ConnectionError("two")
        fn = Script(first, second, "value")

        def judge(error: Exception) -> bool:
            seen.append(error)
            return is_transient(error) or isinstance(error, Flaky)

        assert retry(fn, is_retryable=judge) == "value"
        assert seen == [first, second]

    def test_a_zero_delay_does_not_sleep(self, sleepy: FakeClock) -> None:
        """initial_delay_ms=0 retries straight away."""
        fn = Script(ConnectionError(), ConnectionError(), "value")

        assert retry(fn, initial_delay_ms=0) == "value"
        assert sleepy.sleeps == []

    def test_sleeps_go_through_the_clock_installed_at_call_time(self) -> None:
        """A clock installed after the decorator was made is the one slept on."""

        @retry.on(jitter=False)
        def flaky(script: Script) -> object:
            return script()

        first, second = FakeClock(sleep_advances=True), FakeClock(sleep_advances=True)
        with use_clock(first):
            flaky(Script(ConnectionError(), "value"))
        clock.set_clock(second)
        flaky(Script(ConnectionError(), "value"))

        assert first.sleeps == [0.1]
        assert second.sleeps == [0.1]

    def test_policy_and_options_combine(self, sleepy: FakeClock) -> None:
        """Options given beside policy= replace its fields for this call only."""
        policy = RetryPolicy(max_attempts=5, initial_delay_ms=10)
        fn = Script(*[ConnectionError()] * 4, "value")

        assert retry(fn, policy=policy, jitter=False) == "value"
        assert sleepy.sleeps == [0.01, 0.02, 0.04, 0.08]
        assert policy.jitter is True

    def test_a_policy_alone_is_used_as_it_is(self, sleepy: FakeClock) -> None:
        """retry(fn, policy=p) follows p."""
        fn = Script(ConnectionError(), "value")

        assert retry(fn, policy=RetryPolicy(initial_delay_ms=30, jitter=False)) == "value"
        assert sleepy.sleeps == [0.03]

    def test_partial_functions_are_retried(self, sleepy: FakeClock) -> None:
        """functools.partial is the way to pass arguments."""
        scripts = {7: Script(ConnectionError(), "seven")}

        def fetch(user_id: int) -> object:
            return scripts[user_id]()

        assert retry(functools.partial(fetch, 7)) == "seven"

    def test_repr(self) -> None:
        """retry shows where it comes from."""
        assert repr(retry) == "hystrixpy.retry.retry"


class TestRetryOnResult:
    def test_retries_while_the_predicate_holds(self, sleepy: FakeClock) -> None:
        """A rejected result is retried like an error; the first result accepted is returned."""
        fn = Script(None, None, "ready")

        assert retry(fn, retry_on_result=lambda value: value is None, jitter=False) == "ready"
        assert sleepy.sleeps == [0.1, 0.2]

    def test_an_accepted_first_result_is_returned(self, sleepy: FakeClock) -> None:
        """No retry when the first result is fine."""
        assert retry(Script(5), retry_on_result=lambda value: value is None) == 5
        assert sleepy.sleeps == []

    def test_running_out_raises_retry_error_with_the_last_result(self, sleepy: FakeClock) -> None:
        """There is no error to re-raise, so RetryError holds the last result and the count."""
        fn = Script("pending-1", "pending-2", "pending-3")

        with pytest.raises(RetryError) as raised:
            retry(fn, retry_on_result=lambda value: value.startswith("pending"))

        assert raised.value.last_result == "pending-3"
        assert raised.value.attempts == 3
        assert str(raised.value) == (
            "retry_on_result still rejected the result after 3 attempt(s): 'pending-3'"
        )

    def test_errors_and_results_mix(self, sleepy: FakeClock) -> None:
        """A rejected result, then an error, then a good result."""
        fn = Script(None, ConnectionError(), 1)

        assert retry(fn, retry_on_result=lambda value: value is None, jitter=False) == 1
        assert sleepy.sleeps == [0.1, 0.2]

    def test_on_retry_hears_a_retry_error_for_a_rejected_result(self, sleepy: FakeClock) -> None:
        """on_retry gets a RetryError describing the result that was rejected."""
        heard: list[tuple[Exception, int, float]] = []

        retry(
            Script(0, 1),
            retry_on_result=lambda value: value == 0,
            on_retry=heard_by(heard),
            jitter=False,
        )

        [(error, attempt, delay_ms)] = heard
        assert isinstance(error, RetryError)
        assert (error.last_result, error.attempts, attempt, delay_ms) == (0, 1, 1, 100.0)

    def test_retry_error_pickles(self) -> None:
        """RetryError crosses process boundaries with its result and count."""
        error = RetryError("still pending", last_result=[1, 2], attempts=4)

        copy = pickle.loads(pickle.dumps(error))

        assert (str(copy), copy.last_result, copy.attempts) == ("still pending", [1, 2], 4)


class TestCallbacks:
    def test_on_retry_gets_the_error_the_attempt_and_the_delay(self, sleepy: FakeClock) -> None:
        """on_retry(error, attempt, delay_ms) is called before each sleep; attempts count from 1."""
        heard: list[tuple[Exception, int, float]] = []
        first, second = ConnectionError("1"), TimeoutError("2")

        retry(Script(first, second, "ok"), on_retry=heard_by(heard), jitter=False)

        assert heard == [(first, 1, 100.0), (second, 2, 200.0)]

    def test_on_retry_is_not_called_when_giving_up(self, sleepy: FakeClock) -> None:
        """The last failure has no sleep after it, so no on_retry."""
        heard: list[tuple[Exception, int, float]] = []

        with pytest.raises(ConnectionError):
            retry(Script(*[ConnectionError()] * 3), on_retry=heard_by(heard))

        assert [attempt for _, attempt, _ in heard] == [1, 2]

    def test_the_listener_is_called_after_on_retry(self, sleepy: FakeClock) -> None:
        """RetryPolicy.run's listener hears the same arguments, after the policy's on_retry."""
        order: list[tuple[str, int, float]] = []
        policy = RetryPolicy(
            jitter=False,
            on_retry=lambda error, attempt, delay: order.append(("on_retry", attempt, delay)),
        )

        value = policy.run(
            Script(ConnectionError(), "ok"),
            lambda error, attempt, delay: order.append(("listener", attempt, delay)),
        )

        assert value == "ok"
        assert order == [("on_retry", 1, 100.0), ("listener", 1, 100.0)]

    def test_a_failing_callback_is_logged_and_the_retry_goes_on(
        self, sleepy: FakeClock, caplog: pytest.LogCaptureFixture
    ) -> None:
        """An exception from on_retry is logged (retry_callback_failed); the listener still runs."""
        caplog.set_level(logging.WARNING, logger="hystrixpy")
        heard: list[tuple[Exception, int, float]] = []

        def broken(error: Exception, attempt: int, delay_ms: float) -> None:
            raise RuntimeError("metrics backend down")

        value = RetryPolicy(on_retry=broken).run(Script(ConnectionError(), "ok"), heard_by(heard))

        assert value == "ok"
        assert len(heard) == 1
        [record] = caplog.records
        assert record.levelno == logging.WARNING
        assert record.hystrixpy_event == "retry_callback_failed"  # type: ignore[attr-defined]
        fields = record.hystrixpy  # type: ignore[attr-defined]
        assert fields == {
            "function": fields["function"],
            "callback": "TestCallbacks.test_a_failing_callback_is_logged_and_the_retry_goes_on."
            "<locals>.broken",
            "error": "RuntimeError('metrics backend down')",
        }


class TestLogEvents:
    @pytest.fixture(autouse=True)
    def _structlog_defaults(self) -> Iterator[None]:
        structlog.reset_defaults()
        yield
        structlog.reset_defaults()

    def test_each_retry_and_the_give_up_are_logged(
        self, sleepy: FakeClock, caplog: pytest.LogCaptureFixture
    ) -> None:
        """retry_scheduled for each retry, then retry_exhausted, at INFO on the hystrixpy logger."""
        caplog.set_level(logging.INFO, logger="hystrixpy")

        def fetch_user() -> str:
            raise ConnectionError("refused")

        with pytest.raises(ConnectionError):
            retry(fetch_user, max_attempts=2, jitter=False)

        events = [(r.levelno, r.hystrixpy_event, r.hystrixpy) for r in caplog.records]  # type: ignore[attr-defined]
        name = "TestLogEvents.test_each_retry_and_the_give_up_are_logged.<locals>.fetch_user"
        assert events == [
            (
                logging.INFO,
                "retry_scheduled",
                {
                    "function": name,
                    "attempt": 1,
                    "delay_ms": 100.0,
                    "error": "ConnectionError('refused')",
                },
            ),
            (
                logging.INFO,
                "retry_exhausted",
                {"function": name, "attempts": 2, "error": "ConnectionError('refused')"},
            ),
        ]
        assert caplog.records[0].getMessage().startswith("retry_scheduled function=")

    def test_a_partial_is_named_after_its_function(
        self, sleepy: FakeClock, caplog: pytest.LogCaptureFixture
    ) -> None:
        """The logged function name sees through functools.partial."""
        caplog.set_level(logging.INFO, logger="hystrixpy")

        script = Script(ConnectionError(), 1)

        def fetch(user_id: int) -> object:
            return script()

        retry(functools.partial(fetch, 1))

        name = caplog.records[0].hystrixpy["function"]  # type: ignore[attr-defined]
        assert name == "TestLogEvents.test_a_partial_is_named_after_its_function.<locals>.fetch"

    def test_a_callable_without_a_name_is_shown_by_repr(
        self, sleepy: FakeClock, caplog: pytest.LogCaptureFixture
    ) -> None:
        """An object with no __qualname__ is named by its repr."""
        caplog.set_level(logging.INFO, logger="hystrixpy")
        fn = Script(ConnectionError(), 1)

        retry(fn)

        assert caplog.records[0].hystrixpy["function"] == repr(fn)  # type: ignore[attr-defined]

    def test_events_go_through_structlog_when_configured(self, sleepy: FakeClock) -> None:
        """With structlog configured, the retry events are structured events."""
        capture = LogCapture()
        structlog.configure(processors=[capture])

        script = Script(TimeoutError("slow"), "ok")

        def ping() -> object:
            return script()

        retry(ping, jitter=False)

        assert capture.entries == [
            {
                "event": "retry_scheduled",
                "log_level": "info",
                "function": "TestLogEvents.test_events_go_through_structlog_when_configured."
                "<locals>.ping",
                "attempt": 1,
                "delay_ms": 100.0,
                "error": "TimeoutError('slow')",
            }
        ]


class TestRetryWithResult:
    def test_a_success(self, sleepy: FakeClock) -> None:
        """A first-time success: its value, no error, one attempt."""
        outcome = retry_with_result(Script(42))

        assert outcome == RetryOutcome(success=True, value=42, error=None, attempts=1)

    def test_a_success_after_retries_counts_the_attempts(self, sleepy: FakeClock) -> None:
        """Two failures then a value: three attempts."""
        outcome = retry_with_result(Script(ConnectionError(), ConnectionError(), "v"))

        assert (outcome.success, outcome.value, outcome.error, outcome.attempts) == (
            True,
            "v",
            None,
            3,
        )

    def test_running_out_is_reported_not_raised(self, sleepy: FakeClock) -> None:
        """The last error is in the outcome, with the attempt count."""
        last = ConnectionError("3")

        outcome = retry_with_result(Script(ConnectionError(), ConnectionError(), last))

        assert (outcome.success, outcome.value, outcome.error, outcome.attempts) == (
            False,
            None,
            last,
            3,
        )

    def test_an_error_that_is_not_retryable_is_reported(self, sleepy: FakeClock) -> None:
        """A permanent error is in the outcome after one attempt."""
        error = ValueError("bad")

        outcome = retry_with_result(Script(error), max_attempts=5)

        assert (outcome.success, outcome.error, outcome.attempts) == (False, error, 1)

    def test_a_rejected_result_is_a_retry_error(self, sleepy: FakeClock) -> None:
        """retry_on_result running out gives a RetryError in the outcome."""
        outcome = retry_with_result(Script(0, 0), max_attempts=2, retry_on_result=lambda v: v == 0)

        assert isinstance(outcome.error, RetryError)
        assert (outcome.success, outcome.attempts, outcome.error.last_result) == (False, 2, 0)

    def test_on_retry_is_still_called(self, sleepy: FakeClock) -> None:
        """The policy's own on_retry hears the retries too."""
        heard: list[tuple[Exception, int, float]] = []

        retry_with_result(Script(ConnectionError(), 1), on_retry=heard_by(heard), jitter=False)

        assert [(attempt, delay) for _, attempt, delay in heard] == [(1, 100.0)]

    def test_keyboard_interrupt_still_propagates(self, sleepy: FakeClock) -> None:
        """Only Exceptions are reported; KeyboardInterrupt goes on up."""
        with pytest.raises(KeyboardInterrupt):
            retry_with_result(Script(KeyboardInterrupt()))

    def test_bad_options_still_raise(self) -> None:
        """A misconfiguration is the caller's bug, raised before fn is called."""
        with pytest.raises(ValueError, match="backoff_multiplier"):
            retry_with_result(Script(1), backoff_multiplier=0.1)


def fetch_user(user_id: int, *, fields: tuple[str, ...] = ("name",)) -> dict[str, object]:
    """Fetch a user by id."""
    return {"id": user_id, "fields": fields}


class TestDecorators:
    def test_make_retryable_keeps_name_doc_and_signature(self) -> None:
        """The wrapper looks like the function: name, qualname, doc, signature, __wrapped__."""
        wrapped = make_retryable(fetch_user, max_attempts=3)

        assert wrapped.__name__ == "fetch_user"
        assert wrapped.__qualname__ == "fetch_user"
        assert wrapped.__doc__ == "Fetch a user by id."
        assert inspect.signature(wrapped) == inspect.signature(fetch_user)
        assert wrapped.__wrapped__ is fetch_user  # type: ignore[attr-defined]
        assert wrapped(7, fields=("email",)) == {"id": 7, "fields": ("email",)}

    def test_retry_on_keeps_the_signature(self) -> None:
        """@retry.on(...) is the same wrapper in decorator spelling."""

        @retry.on(max_attempts=2)
        def lookup(key: str, default: int = 0) -> int:
            """Look a key up."""
            return default

        assert lookup.__name__ == "lookup"
        assert lookup.__doc__ == "Look a key up."
        assert str(inspect.signature(lookup)) == "(key: 'str', default: 'int' = 0) -> 'int'"
        assert lookup("k", default=3) == 3

    def test_each_call_is_retried_with_its_arguments(self, sleepy: FakeClock) -> None:
        """Every call gets fresh attempts and the same arguments each attempt."""
        seen: list[tuple[int, str]] = []
        failures = {"a": 2, "b": 1}

        @retry.on(jitter=False)
        def load(number: int, *, key: str) -> str:
            seen.append((number, key))
            if failures[key]:
                failures[key] -= 1
                raise ConnectionError(key)
            return f"{key}{number}"

        assert load(1, key="a") == "a1"
        assert load(2, key="b") == "b2"
        assert seen == [(1, "a"), (1, "a"), (1, "a"), (2, "b"), (2, "b")]
        assert sleepy.sleeps == [0.1, 0.2, 0.1]

    def test_works_on_methods(self, sleepy: FakeClock) -> None:
        """A decorated method receives its instance and is retried per call."""

        class Client:
            def __init__(self) -> None:
                self.calls = 0

            @retry.on(max_attempts=3, jitter=False)
            def get(self, path: str) -> str:
                """GET a path."""
                self.calls += 1
                if self.calls < 2:
                    raise TimeoutError(path)
                return f"body of {path}"

            @classmethod
            @retry.on(max_attempts=2)
            def build(cls) -> str:
                return cls.__name__

        client = Client()

        assert client.get("/users") == "body of /users"
        assert client.calls == 2
        assert Client.get.__doc__ == "GET a path."
        assert str(inspect.signature(client.get)) == "(path: 'str') -> 'str'"
        assert Client.build() == "Client"
        assert sleepy.sleeps == [0.1]

    def test_decorator_options_are_checked_when_decorating(self) -> None:
        """A bad option fails where the decorator is written, not at the first call."""
        with pytest.raises(ValueError, match=r"max_attempts must be >= 1, got 0"):
            retry.on(max_attempts=0)
        with pytest.raises(ValueError, match=r"backoff_multiplier must be >= 1, got 0\.5"):
            make_retryable(fetch_user, backoff_multiplier=0.5)

    def test_retry_on_without_parentheses_says_how_to_write_it(self) -> None:
        """@retry.on applied straight to a function is a TypeError explaining the spelling."""
        with pytest.raises(
            TypeError, match=r"write @retry\.on\(\) or @retry\.on\(max_attempts=3\)"
        ):
            retry.on(fetch_user)  # type: ignore[arg-type]

    def test_only_callables_are_made_retryable(self) -> None:
        """make_retryable(3) is a TypeError."""
        with pytest.raises(
            TypeError, match=r"only a function or method can be made retryable, got 3"
        ):
            make_retryable(3)  # type: ignore[arg-type]

    def test_a_decorator_with_a_policy(self, sleepy: FakeClock) -> None:
        """policy= works for decorators as for retry()."""
        policy = RetryPolicy(initial_delay_ms=5, jitter=False)
        calls = Script(ConnectionError(), "ok")

        @retry.on(policy=policy)
        def call() -> object:
            return calls()

        assert call() == "ok"
        assert sleepy.sleeps == [0.005]


class TestThreadSafety:
    THREADS = 64

    @pytest.mark.parametrize("shape", ["decorated function", "one policy's run()"])
    def test_sixty_four_threads_each_get_their_own_retry_state(
        self, sleepy: FakeClock, shape: str
    ) -> None:
        """64 simultaneous calls through one policy each see only their own errors and value."""
        count = self.THREADS
        in_first = threading.Barrier(count, timeout=30)
        in_second = threading.Barrier(count, timeout=30)
        attempts: dict[int, int] = defaultdict(int)
        heard: dict[int, list[tuple[str, int, float]]] = defaultdict(list)

        def on_retry(error: Exception, attempt: int, delay_ms: float) -> None:
            heard[threading.get_ident()].append((str(error), attempt, delay_ms))

        policy = RetryPolicy(jitter=False, on_retry=on_retry)

        def work(index: int) -> int:
            attempts[index] += 1
            attempt = attempts[index]
            if attempt == 1:
                in_first.wait()  # all 64 first attempts are in flight together
            elif attempt == 2:
                in_second.wait()  # and all 64 retries, each in its own tenacity state
            if attempt < 3:
                raise ConnectionError(f"{index}/{attempt}")
            return index * 10

        decorated = make_retryable(work, policy=policy)
        results: dict[int, tuple[int, list[tuple[str, int, float]]]] = {}

        def caller(index: int) -> None:
            if shape == "decorated function":
                value = decorated(index)
            else:
                value = policy.run(functools.partial(work, index))
            results[index] = (value, heard[threading.get_ident()])

        threads = [threading.Thread(target=caller, args=(i,)) for i in range(count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)

        assert sorted(results) == list(range(count))
        for index, (value, own) in results.items():
            assert value == index * 10
            assert own == [(f"{index}/1", 1, 100.0), (f"{index}/2", 2, 200.0)]
        assert sorted(sleepy.sleeps) == [0.1] * count + [0.2] * count
