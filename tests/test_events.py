"""The event vocabulary follows Hystrix's."""

from __future__ import annotations

from hystrixpy import EventType, ExecutionResult, FailureType, IsolationStrategy
from hystrixpy.events import HEALTH_ERRORS, HEALTH_TOTAL


class TestEventType:
    def test_order_matches_hystrix(self) -> None:
        """Hystrix's events in its order, then RETRY and RATE_LIMITED; index is the position."""
        names = [event.name for event in EventType]
        assert names == [
            "EMIT",
            "SUCCESS",
            "FAILURE",
            "TIMEOUT",
            "BAD_REQUEST",
            "SHORT_CIRCUITED",
            "THREAD_POOL_REJECTED",
            "SEMAPHORE_REJECTED",
            "FALLBACK_EMIT",
            "FALLBACK_SUCCESS",
            "FALLBACK_FAILURE",
            "FALLBACK_REJECTION",
            "FALLBACK_DISABLED",
            "FALLBACK_MISSING",
            "EXCEPTION_THROWN",
            "RESPONSE_FROM_CACHE",
            "CANCELLED",
            "COLLAPSED",
            "COMMAND_MAX_ACTIVE",
            "RETRY",
            "RATE_LIMITED",
        ]
        assert [event.index for event in EventType] == list(range(len(names)))

    def test_terminal_events(self) -> None:
        """Exactly Hystrix's terminal events report is_terminal."""
        terminal = {event.name for event in EventType if event.is_terminal}
        assert terminal == {
            "SUCCESS",
            "BAD_REQUEST",
            "FALLBACK_SUCCESS",
            "FALLBACK_FAILURE",
            "FALLBACK_REJECTION",
            "FALLBACK_DISABLED",
            "FALLBACK_MISSING",
            "RESPONSE_FROM_CACHE",
            "CANCELLED",
        }

    def test_health_sets(self) -> None:
        """Health errors are failures, timeouts and rejections; the total adds successes."""
        assert {
            EventType.FAILURE,
            EventType.TIMEOUT,
            EventType.THREAD_POOL_REJECTED,
            EventType.SEMAPHORE_REJECTED,
        } == HEALTH_ERRORS
        assert HEALTH_ERRORS | {EventType.SUCCESS} == HEALTH_TOTAL


class TestFailureTypeAndIsolation:
    def test_failure_types(self) -> None:
        """Failure types are Hystrix's seven, then hystrixpy's RATE_LIMITED."""
        assert [failure.name for failure in FailureType] == [
            "BAD_REQUEST_EXCEPTION",
            "COMMAND_EXCEPTION",
            "TIMEOUT",
            "SHORTCIRCUIT",
            "REJECTED_THREAD_EXECUTION",
            "REJECTED_SEMAPHORE_EXECUTION",
            "REJECTED_SEMAPHORE_FALLBACK",
            "RATE_LIMITED",
        ]

    def test_isolation_strategies(self) -> None:
        """There are two isolation strategies, THREAD and SEMAPHORE."""
        assert [strategy.name for strategy in IsolationStrategy] == ["THREAD", "SEMAPHORE"]


class TestExecutionResult:
    def test_starts_empty(self) -> None:
        """A new result has no events, no exception, and no times yet."""
        result = ExecutionResult(12.5)
        assert result.start == 12.5
        assert result.events == []
        assert result.exception is None
        assert result.run_exception is None
        assert result.execution_time_ms == -1
        assert result.total_time_ms == -1
        assert not result.executed_in_thread

    def test_repr_lists_events(self) -> None:
        """The repr names the events and the total time."""
        result = ExecutionResult(0.0)
        result.events += [EventType.FAILURE, EventType.FALLBACK_SUCCESS]
        result.total_time_ms = 3
        assert repr(result) == "ExecutionResult([FAILURE, FALLBACK_SUCCESS], 3ms)"
