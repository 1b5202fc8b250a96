"""Tests for hystrixpy._log: stdlib logging by default, structlog when it is configured."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from structlog.testing import LogCapture

import hystrixpy
from hystrixpy import Command, CommandProperties, IsolationStrategy, _log
from hystrixpy.testing import FakeClock


@pytest.fixture(autouse=True)
def _structlog_defaults() -> Iterator[None]:
    """Every test starts and ends with structlog unconfigured and no bound contextvars."""
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()
    yield
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()


@pytest.fixture
def captured() -> LogCapture:
    """structlog configured by the application, merging contextvars into captured events."""
    capture = LogCapture()
    structlog.configure(processors=[structlog.contextvars.merge_contextvars, capture])
    return capture


class Slow(Command[str]):
    """A semaphore-isolated command whose run() outlives its 100 ms timeout on the fake clock."""

    group_key = "LogGroup"
    thread_pool_key = "LogPool"
    properties = CommandProperties(
        execution_isolation_strategy=IsolationStrategy.SEMAPHORE, execution_timeout_ms=100
    )

    def __init__(self, clock: FakeClock) -> None:
        super().__init__()
        self.clock = clock

    def run(self) -> str:
        self.clock.advance(0.2)
        return "late"

    def get_fallback(self) -> str:
        return "fallback"


class SeesContext(Command[str]):
    """A thread-isolated command recording the structlog contextvars its run() and fallback see."""

    group_key = "ContextGroup"

    def __init__(self, fail: bool = True, block: threading.Event | None = None) -> None:
        super().__init__()
        self.fail = fail
        self.block = block
        self.seen: dict[str, tuple[str, dict[str, Any]]] = {}

    def _record(self, step: str) -> None:
        self.seen[step] = (
            threading.current_thread().name,
            structlog.contextvars.get_contextvars(),
        )

    def run(self) -> str:
        self._record("run")
        if self.block is not None:
            self.block.wait(10)
        if self.fail:
            raise RuntimeError("dependency down")
        return "ok"

    def get_fallback(self) -> str:
        self._record("fallback")
        return "fallback"


class TestStdlibLogging:
    @pytest.mark.parametrize(
        ("emit", "level"),
        [
            (_log.debug, logging.DEBUG),
            (_log.info, logging.INFO),
            (_log.warning, logging.WARNING),
            (_log.error, logging.ERROR),
        ],
        ids=["debug", "info", "warning", "error"],
    )
    def test_event_goes_to_the_hystrixpy_logger_as_key_value_text(
        self, caplog: pytest.LogCaptureFixture, emit: Any, level: int
    ) -> None:
        """Without structlog configured, an event is a 'event key=value' record with extras."""
        caplog.set_level(logging.DEBUG, logger="hystrixpy")

        emit("pool_resized", pool_key="Users", core_size=4)

        [record] = caplog.records
        assert record.name == "hystrixpy"
        assert record.levelno == level
        assert record.getMessage() == "pool_resized pool_key=Users core_size=4"
        assert record.hystrixpy_event == "pool_resized"
        assert record.hystrixpy == {"pool_key": "Users", "core_size": 4}

    def test_event_below_the_loggers_level_is_not_emitted(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Events under the hystrixpy logger's level produce no record."""
        caplog.set_level(logging.WARNING, logger="hystrixpy")

        _log.info("routine_event", detail="x")
        _log.warning("notable_event", detail="y")

        assert [r.getMessage() for r in caplog.records] == ["notable_event detail=y"]

    def test_execution_events_carry_the_command_keys(
        self, fake_clock: FakeClock, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A timed-out execution logs its command, group and pool keys at INFO."""
        caplog.set_level(logging.INFO, logger="hystrixpy")

        assert Slow(fake_clock).execute() == "fallback"

        [record] = [r for r in caplog.records if r.hystrixpy_event == "execution_timed_out"]
        assert record.levelno == logging.INFO
        assert record.hystrixpy == {
            "timeout_ms": 100,
            "command_key": "Slow",
            "group_key": "LogGroup",
            "thread_pool_key": "LogPool",
        }

    def test_info_events_print_nothing_when_logging_is_not_configured(
        self, fake_clock: FakeClock, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Routine INFO events stay silent for an application that configured no logging."""
        _log.info("routine_event", detail="x")
        assert Slow(fake_clock).execute() == "fallback"

        printed = capsys.readouterr()
        assert printed.out == ""
        assert printed.err == ""


class TestStructlogLogging:
    def test_events_arrive_as_structured_events(
        self, captured: LogCapture, caplog: pytest.LogCaptureFixture
    ) -> None:
        """With structlog configured, an event goes through its pipeline, not the stdlib logger."""
        caplog.set_level(logging.DEBUG, logger="hystrixpy")

        _log.debug("a_debug", n=1)
        _log.info("an_info", n=2)
        _log.warning("a_warning", n=3)
        _log.error("an_error", n=4)

        assert captured.entries == [
            {"event": "a_debug", "n": 1, "log_level": "debug"},
            {"event": "an_info", "n": 2, "log_level": "info"},
            {"event": "a_warning", "n": 3, "log_level": "warning"},
            {"event": "an_error", "n": 4, "log_level": "error"},
        ]
        assert not [r for r in caplog.records if r.name == "hystrixpy"]

    def test_execution_events_carry_the_command_keys(
        self, fake_clock: FakeClock, captured: LogCapture
    ) -> None:
        """A timed-out execution's structured event has command_key, group_key, thread_pool_key."""
        assert Slow(fake_clock).execute() == "fallback"

        assert [e for e in captured.entries if e["event"] != "execution_finished"] == [
            {
                "event": "execution_timed_out",
                "log_level": "info",
                "timeout_ms": 100,
                "command_key": "Slow",
                "group_key": "LogGroup",
                "thread_pool_key": "LogPool",
            }
        ]

    def test_bound_contextvars_reach_run_and_fallback_on_the_worker(
        self, fake_clock: FakeClock
    ) -> None:
        """Context bound by the caller is visible in run() and get_fallback() on a worker thread."""
        structlog.contextvars.bind_contextvars(request_id="req-7")
        command = SeesContext(fail=True)

        assert command.queue().result(5) == "fallback"

        run_thread, run_context = command.seen["run"]
        fallback_thread, fallback_context = command.seen["fallback"]
        assert run_thread.startswith("hystrix-ContextGroup-")
        assert fallback_thread == run_thread
        assert run_context == {"request_id": "req-7"}
        assert fallback_context == {"request_id": "req-7"}

    def test_bound_contextvars_reach_run_in_execute(self, fake_clock: FakeClock) -> None:
        """A blocking execute() carries the caller's context into run() on the worker."""
        structlog.contextvars.bind_contextvars(request_id="req-8", user="ada")
        command = SeesContext(fail=False)

        assert command.execute() == "ok"

        run_thread, run_context = command.seen["run"]
        assert run_thread.startswith("hystrix-ContextGroup-")
        assert run_context == {"request_id": "req-8", "user": "ada"}

    def test_bound_contextvars_reach_a_fallback_after_a_timeout(
        self, fake_clock: FakeClock, captured: LogCapture
    ) -> None:
        """A queued command that times out logs and falls back with the caller's context."""
        structlog.contextvars.bind_contextvars(request_id="req-9")
        release = threading.Event()
        command = SeesContext(fail=False, block=release)
        try:
            future = command.queue()
            fake_clock.advance(1.0)
            assert future.result(5) == "fallback"
        finally:
            release.set()
            # Let the worker finish (and log its dropped result) before the next test.
            hystrixpy.thread_pool("ContextGroup").shutdown(wait=True)

        fallback_thread, fallback_context = command.seen["fallback"]
        assert fallback_thread != threading.current_thread().name
        assert not fallback_thread.startswith("hystrix-ContextGroup-")
        assert fallback_context == {"request_id": "req-9"}
        [event] = [e for e in captured.entries if e["event"] == "execution_timed_out"]
        assert event["request_id"] == "req-9"
        assert event["command_key"] == "SeesContext"


class TestExecutionFinishedEvent:
    def test_debug_event_per_execution_when_debug_is_on(
        self, fake_clock: FakeClock, caplog: pytest.LogCaptureFixture
    ) -> None:
        """With DEBUG on, each finished execution logs its keys, events and durations."""
        caplog.set_level(logging.DEBUG, logger="hystrixpy")
        _log.forget_cached_levels()

        assert Slow(fake_clock).execute() == "fallback"

        [record] = [r for r in caplog.records if r.hystrixpy_event == "execution_finished"]
        assert record.levelno == logging.DEBUG
        assert record.hystrixpy == {
            "events": ["TIMEOUT", "FALLBACK_SUCCESS"],
            "total_ms": 200,
            "execution_ms": 200,
            "command_key": "Slow",
            "group_key": "LogGroup",
            "thread_pool_key": "LogPool",
        }

    def test_no_debug_event_when_debug_is_off(
        self, fake_clock: FakeClock, caplog: pytest.LogCaptureFixture
    ) -> None:
        """At INFO, no per-execution event is produced."""
        caplog.set_level(logging.INFO, logger="hystrixpy")
        _log.forget_cached_levels()

        Slow(fake_clock).execute()

        assert not [r for r in caplog.records if r.hystrixpy_event == "execution_finished"]

    def test_level_is_checked_again_within_a_second(
        self, fake_clock: FakeClock, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Turning DEBUG on is noticed once a second of clock time has passed."""
        caplog.set_level(logging.INFO, logger="hystrixpy")
        _log.forget_cached_levels()
        assert not _log.debug_enabled(fake_clock.monotonic())

        caplog.set_level(logging.DEBUG, logger="hystrixpy")
        assert not _log.debug_enabled(fake_clock.monotonic())
        fake_clock.advance(1.0)
        assert _log.debug_enabled(fake_clock.monotonic())

    def test_filtering_structlog_logger_below_debug_gets_no_event(
        self, fake_clock: FakeClock
    ) -> None:
        """A structlog pipeline filtering at INFO receives no per-execution debug event."""
        capture = LogCapture()
        structlog.configure(
            processors=[capture],
            wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        )
        _log.forget_cached_levels()

        Slow(fake_clock).execute()

        assert [e["event"] for e in capture.entries] == ["execution_timed_out"]

    def test_structlog_logger_that_cannot_tell_gets_the_event(
        self, fake_clock: FakeClock, captured: LogCapture
    ) -> None:
        """A structlog pipeline with no level check receives the debug event."""
        _log.forget_cached_levels()

        Slow(fake_clock).execute()

        assert [e["event"] for e in captured.entries] == [
            "execution_timed_out",
            "execution_finished",
        ]
