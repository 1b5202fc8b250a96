"""Tests for hystrixpy._timer.DeadlineTimer, on the fake clock."""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable, Iterator

import pytest

from hystrixpy._timer import DeadlineTimer
from hystrixpy.testing import FakeClock

_names = itertools.count(1)


class Calls:
    """Records which callbacks ran, and lets a test wait for a given one."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.threads: list[str] = []
        self._events: dict[str, threading.Event] = {}

    def callback(self, name: str) -> Callable[[], None]:
        event = self._events.setdefault(name, threading.Event())

        def call() -> None:
            self.names.append(name)
            self.threads.append(threading.current_thread().name)
            event.set()

        return call

    def wait_for(self, name: str) -> bool:
        return self._events[name].wait(5)


@pytest.fixture
def timer_name() -> str:
    """A thread name no other timer uses."""
    return f"test-timer-{next(_names)}"


@pytest.fixture
def timer(timer_name: str) -> Iterator[DeadlineTimer]:
    """A timer whose thread is called ``timer_name``, stopped after the test."""
    made = DeadlineTimer(name=timer_name)
    yield made
    made.stop()


def threads_named(name: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == name]


class TestDeadlineTimer:
    def test_callbacks_run_at_their_deadlines_in_deadline_order(
        self, fake_clock: FakeClock, timer: DeadlineTimer, timer_name: str
    ) -> None:
        """A callback runs once its deadline is reached, earliest deadline first."""
        calls = Calls()
        now = fake_clock.monotonic()
        timer.schedule(now + 3.0, calls.callback("third"))
        timer.schedule(now + 1.0, calls.callback("first"))
        timer.schedule(now + 2.0, calls.callback("second"))

        fake_clock.advance(1.5)
        assert calls.wait_for("first")
        assert calls.names == ["first"]

        fake_clock.advance(1.5)
        assert calls.wait_for("third")
        assert calls.names == ["first", "second", "third"]
        assert set(calls.threads) == {timer_name}

    def test_equal_deadlines_run_in_scheduling_order(
        self, fake_clock: FakeClock, timer: DeadlineTimer
    ) -> None:
        """Callbacks sharing a deadline run in the order they were scheduled."""
        calls = Calls()
        deadline = fake_clock.monotonic() + 1.0
        for name in ("a", "b", "c", "d"):
            timer.schedule(deadline, calls.callback(name))

        fake_clock.advance(1.0)

        assert calls.wait_for("d")
        assert calls.names == ["a", "b", "c", "d"]

    def test_a_deadline_already_passed_runs_at_once(
        self, fake_clock: FakeClock, timer: DeadlineTimer
    ) -> None:
        """Scheduling for a time already past calls the callback without waiting."""
        calls = Calls()

        timer.schedule(fake_clock.monotonic() - 1.0, calls.callback("overdue"))

        assert calls.wait_for("overdue")

    def test_cancelled_entry_is_not_called(
        self, fake_clock: FakeClock, timer: DeadlineTimer
    ) -> None:
        """A cancelled entry is skipped while later entries still run."""
        calls = Calls()
        now = fake_clock.monotonic()
        cancelled = timer.schedule(now + 1.0, calls.callback("cancelled"))
        timer.schedule(now + 2.0, calls.callback("kept"))

        cancelled.cancel()
        fake_clock.advance(2.0)

        assert calls.wait_for("kept")
        assert calls.names == ["kept"]
        assert cancelled.cancelled

    def test_earlier_entry_scheduled_while_waiting_is_honoured(
        self, fake_clock: FakeClock, timer: DeadlineTimer
    ) -> None:
        """An entry earlier than the one the thread waits for runs at its own deadline."""
        calls = Calls()
        now = fake_clock.monotonic()
        timer.schedule(now + 0.5, calls.callback("warm-up"))
        timer.schedule(now + 100.0, calls.callback("late"))
        fake_clock.advance(0.5)
        assert calls.wait_for("warm-up")  # the thread now waits for the late entry

        timer.schedule(now + 1.0, calls.callback("early"))
        fake_clock.advance(0.5)

        assert calls.wait_for("early")
        assert calls.names == ["warm-up", "early"]

    def test_entry_scheduled_on_an_idle_timer_is_honoured(
        self, fake_clock: FakeClock, timer: DeadlineTimer
    ) -> None:
        """Once every entry has run, a new one wakes the idle thread."""
        calls = Calls()
        timer.schedule(fake_clock.monotonic(), calls.callback("first"))
        assert calls.wait_for("first")

        timer.schedule(fake_clock.monotonic() + 1.0, calls.callback("second"))
        fake_clock.advance(1.0)

        assert calls.wait_for("second")

    def test_failing_callback_is_logged_and_later_callbacks_still_run(
        self,
        fake_clock: FakeClock,
        timer: DeadlineTimer,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """An exception in one callback is logged as an error and does not stop the timer."""
        caplog.set_level(logging.ERROR, logger="hystrixpy")
        calls = Calls()
        now = fake_clock.monotonic()

        def broken() -> None:
            raise ValueError("callback bug")

        timer.schedule(now + 1.0, broken)
        timer.schedule(now + 2.0, calls.callback("after"))
        fake_clock.advance(2.0)

        assert calls.wait_for("after")
        [record] = [r for r in caplog.records if r.name == "hystrixpy"]
        assert record.levelno == logging.ERROR
        assert record.hystrixpy_event == "timer_callback_failed"
        assert record.hystrixpy == {"error": "ValueError('callback bug')"}

    def test_stop_ends_the_thread_and_drops_pending_entries(
        self, fake_clock: FakeClock, timer: DeadlineTimer, timer_name: str
    ) -> None:
        """After stop() the thread exits and entries not yet due are never called."""
        calls = Calls()
        now = fake_clock.monotonic()
        timer.schedule(now + 0.5, calls.callback("before-stop"))
        timer.schedule(now + 1.0, calls.callback("dropped"))
        fake_clock.advance(0.5)
        assert calls.wait_for("before-stop")
        [thread] = threads_named(timer_name)
        assert thread.daemon

        timer.stop()
        thread.join(5)

        assert not thread.is_alive()
        fake_clock.advance(5.0)
        assert calls.names == ["before-stop"]

    def test_stop_before_anything_is_scheduled(self, timer: DeadlineTimer, timer_name: str) -> None:
        """Stopping a timer that never started a thread is harmless and starts none."""
        timer.stop()

        assert not threads_named(timer_name)
