"""Tests for retries against time: the fake clock's sleeps, freezegun, and deadlines."""

from __future__ import annotations

import datetime
import logging
import time
from collections.abc import Iterator

import pytest
from freezegun import freeze_time

from hystrixpy import clock, deadline
from hystrixpy.clock import SystemClock
from hystrixpy.exceptions import RetryError
from hystrixpy.retry import RetryPolicy, retry
from hystrixpy.testing import FakeClock, use_clock

FROZEN_AT = datetime.datetime(2024, 3, 1, 12, 0, 0, tzinfo=datetime.timezone.utc)


@pytest.fixture
def sleepy() -> Iterator[FakeClock]:
    """A fake clock whose sleeps move it on at once, installed for the test."""
    fake = FakeClock(sleep_advances=True)
    with use_clock(fake):
        yield fake


def always(error: Exception) -> object:
    def call() -> object:
        raise error

    return call


class TestFakeClockSleepAdvances:
    def test_sleep_moves_time_on_at_once_and_is_recorded(self) -> None:
        """With sleep_advances, sleep(s) moves both readings by s and lists s."""
        fake = FakeClock(start=10.0, wall_start=500.0, sleep_advances=True)

        fake.sleep(1.5)
        fake.sleep(0.25)

        assert fake.monotonic() == 11.75
        assert fake.wall_time() == 501.75
        assert fake.sleeps == [1.5, 0.25]

    def test_a_negative_sleep_is_refused(self) -> None:
        """Time never goes back, even through sleep()."""
        fake = FakeClock(sleep_advances=True)

        with pytest.raises(ValueError, match=r"a clock cannot go back"):
            fake.sleep(-1.0)

    def test_the_default_clock_records_sleeps_too(self) -> None:
        """Without the flag sleep() still blocks on advance(), and is listed as well."""
        fake = FakeClock()

        fake.sleep(0.0)  # nothing to wait for

        assert fake.sleeps == [0.0]
        assert fake.monotonic() == 1000.0


class TestSystemClockUnderFreezegun:
    def test_sleep_ticks_the_frozen_clock_instead_of_sleeping(self) -> None:
        """An hour's sleep under freezegun returns at once, the frozen time an hour on."""
        with freeze_time(FROZEN_AT):
            before = time.monotonic()
            SystemClock().sleep(3600)

            assert time.monotonic() - before == 3600
            assert datetime.datetime.now(datetime.timezone.utc) == FROZEN_AT + datetime.timedelta(
                hours=1
            )

    def test_the_innermost_freeze_is_ticked(self) -> None:
        """With nested freezes the inner one moves; the outer is back where it was afterwards."""
        naive = FROZEN_AT.replace(tzinfo=None)  # freezegun's factories give naive UTC
        inner_at = naive + datetime.timedelta(days=1)
        with freeze_time(FROZEN_AT) as outer:
            with freeze_time(inner_at) as inner:
                SystemClock().sleep(2.5)
                assert inner() == inner_at + datetime.timedelta(seconds=2.5)
            assert outer() == naive

    def test_a_ticking_freeze_is_moved_on(self) -> None:
        """A tick=True freeze jumps by the sleep as well."""
        with freeze_time(FROZEN_AT, tick=True):
            before = time.time()
            SystemClock().sleep(600)

            assert 600 <= time.time() - before < 660

    def test_a_zero_sleep_leaves_the_frozen_time(self) -> None:
        """sleep(0) does not tick (an auto-ticking freeze would otherwise step)."""
        with freeze_time(FROZEN_AT, auto_tick_seconds=5) as frozen:
            at = frozen.time_to_freeze
            SystemClock().sleep(0)

            assert frozen.time_to_freeze == at

    def test_a_negative_sleep_is_refused_as_time_sleep_does(self) -> None:
        """sleep(-1) raises ValueError under freezegun too."""
        with freeze_time(FROZEN_AT), pytest.raises(ValueError):
            SystemClock().sleep(-1)

    def test_without_a_freeze_sleep_is_real(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """With freezegun imported but nothing frozen, time.sleep is called."""
        slept: list[float] = []
        monkeypatch.setattr(time, "sleep", slept.append)

        SystemClock().sleep(0.5)

        assert slept == [0.5]

    def test_retries_under_freezegun_move_frozen_time(self) -> None:
        """retry() on the system clock under freezegun sleeps no real time; frozen time moves."""
        clock.set_clock(None)
        calls = iter([ConnectionError(), ConnectionError()])

        def flaky() -> str:
            for error in calls:
                raise error
            return "ok"

        with freeze_time(FROZEN_AT):
            before = clock.monotonic()
            assert retry(flaky, jitter=False) == "ok"
            assert clock.monotonic() - before == pytest.approx(0.3)

    def test_a_deadline_under_freezegun(self) -> None:
        """deadline.within() and the retry's sleeps both follow frozen time."""
        clock.set_clock(None)
        with freeze_time(FROZEN_AT), deadline.within(0.25):
            before = clock.monotonic()
            with pytest.raises(ConnectionError) as raised:
                retry(always(ConnectionError("down")), max_attempts=5, jitter=False)

            assert clock.monotonic() - before == pytest.approx(0.1)
        assert raised.value.retry_attempts == 2  # type: ignore[attr-defined]


class TestDeadline:
    def test_stops_before_a_sleep_that_would_pass_the_deadline(
        self, sleepy: FakeClock, caplog: pytest.LogCaptureFixture
    ) -> None:
        """With 250 ms left, the 100 ms wait is made and the 200 ms one is not."""
        caplog.set_level(logging.INFO, logger="hystrixpy")
        last = ConnectionError("still down")
        calls = iter([ConnectionError("down")])

        def fetch() -> object:
            for error in calls:
                raise error
            raise last

        with deadline.within(0.25), pytest.raises(ConnectionError) as raised:
            retry(fetch, max_attempts=5, jitter=False)

        assert raised.value is last
        assert raised.value.retry_attempts == 2  # type: ignore[attr-defined]
        assert raised.value.__notes__ == [
            "hystrixpy.retry: stopped after 2 attempt(s): a 200 ms delay would reach the deadline"
        ]
        assert sleepy.sleeps == [0.1]
        stopped = caplog.records[-1]
        assert stopped.hystrixpy_event == "retry_stopped_by_deadline"  # type: ignore[attr-defined]
        assert stopped.hystrixpy == {  # type: ignore[attr-defined]
            "function": "TestDeadline.test_stops_before_a_sleep_that_would_pass_the_deadline."
            "<locals>.fetch",
            "attempt": 2,
            "delay_ms": 200.0,
            "remaining_ms": pytest.approx(150.0),
            "error": "ConnectionError('still down')",
        }

    def test_a_delay_ending_exactly_at_the_deadline_is_not_slept(self, sleepy: FakeClock) -> None:
        """An attempt that could only start at the deadline is not worth waiting for."""
        with deadline.within(0.125), pytest.raises(ConnectionError) as raised:
            retry(always(ConnectionError()), initial_delay_ms=125, jitter=False)

        assert raised.value.retry_attempts == 1  # type: ignore[attr-defined]
        assert sleepy.sleeps == []

    def test_a_passed_deadline_allows_no_retry_even_without_delay(self, sleepy: FakeClock) -> None:
        """With no time left, even a zero delay is not retried."""
        with deadline.within(0.0), pytest.raises(TimeoutError) as raised:
            retry(always(TimeoutError()), initial_delay_ms=0)

        assert raised.value.retry_attempts == 1  # type: ignore[attr-defined]

    def test_the_jittered_delay_is_the_one_checked_and_slept(self, sleepy: FakeClock) -> None:
        """The deadline check and the sleep use the same drawn delay."""
        draws = iter([1.0, 0.0])  # 100 ms, then 100 ms (half of 200 ms)
        policy = RetryPolicy(max_attempts=3, random=lambda: next(draws))

        with deadline.within(0.25), pytest.raises(ConnectionError):
            policy.run(always(ConnectionError()))

        assert sleepy.sleeps == [0.1, 0.1]

    def test_a_rejected_result_stopped_by_the_deadline_is_a_retry_error(
        self, sleepy: FakeClock
    ) -> None:
        """No error to re-raise: RetryError with the last result."""
        with deadline.within(0.05), pytest.raises(RetryError) as raised:
            retry(lambda: "pending", retry_on_result=lambda value: value == "pending")

        assert (raised.value.last_result, raised.value.attempts) == ("pending", 1)

    def test_without_a_deadline_attempts_run_their_course(self, sleepy: FakeClock) -> None:
        """Outside any deadline only max_attempts stops the retries."""
        assert deadline.remaining() is None
        with pytest.raises(ConnectionError):
            retry(always(ConnectionError()), max_attempts=4, jitter=False)

        assert sleepy.sleeps == [0.1, 0.2, 0.4]
