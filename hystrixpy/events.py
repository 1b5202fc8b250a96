"""The event vocabulary: what can happen to one execution, and its record.

Each execution produces one :class:`ExecutionResult`. The circuit breaker,
the metrics, the logs and the command's own introspection only read it.
"""

from __future__ import annotations

import enum

__all__ = ["EventType", "ExecutionResult", "FailureType", "IsolationStrategy"]


class EventType(enum.Enum):
    """Hystrix's event types in Hystrix's order, then hystrixpy's ``RETRY`` and ``RATE_LIMITED``.

    ``is_terminal`` tells whether the event ends an execution; ``index`` is the
    event's position, used to address per-event counters; ``is_health_error``
    whether the breaker counts it as an error.
    """

    EMIT = "EMIT"
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"
    TIMEOUT = "TIMEOUT"
    BAD_REQUEST = "BAD_REQUEST"
    SHORT_CIRCUITED = "SHORT_CIRCUITED"
    THREAD_POOL_REJECTED = "THREAD_POOL_REJECTED"
    SEMAPHORE_REJECTED = "SEMAPHORE_REJECTED"
    FALLBACK_EMIT = "FALLBACK_EMIT"
    FALLBACK_SUCCESS = "FALLBACK_SUCCESS"
    FALLBACK_FAILURE = "FALLBACK_FAILURE"
    FALLBACK_REJECTION = "FALLBACK_REJECTION"
    FALLBACK_DISABLED = "FALLBACK_DISABLED"
    FALLBACK_MISSING = "FALLBACK_MISSING"
    EXCEPTION_THROWN = "EXCEPTION_THROWN"
    RESPONSE_FROM_CACHE = "RESPONSE_FROM_CACHE"
    CANCELLED = "CANCELLED"
    COLLAPSED = "COLLAPSED"
    COMMAND_MAX_ACTIVE = "COMMAND_MAX_ACTIVE"
    #: hystrixpy's own: run() failed and is being tried again (one per extra attempt).
    RETRY = "RETRY"
    #: hystrixpy's own: the command's rate limiter refused the execution (run() not called).
    RATE_LIMITED = "RATE_LIMITED"

    index: int
    is_terminal: bool
    is_health_error: bool


_TERMINAL = {
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
for _position, _event in enumerate(EventType):
    _event.index = _position
    _event.is_terminal = _event.value in _TERMINAL
del _position, _event

#: Events that count as errors in the breaker's health counts.
HEALTH_ERRORS = frozenset(
    {
        EventType.FAILURE,
        EventType.TIMEOUT,
        EventType.THREAD_POOL_REJECTED,
        EventType.SEMAPHORE_REJECTED,
    }
)
#: Events that count towards the breaker's request volume.
HEALTH_TOTAL = HEALTH_ERRORS | {EventType.SUCCESS}
# Read on hot paths instead of ``event in HEALTH_ERRORS``, which would hash the member in Python.
for _event in EventType:
    _event.is_health_error = _event in HEALTH_ERRORS
del _event


class FailureType(enum.Enum):
    """Why an execution failed (Hystrix's ``HystrixRuntimeException.FailureType``)."""

    BAD_REQUEST_EXCEPTION = "BAD_REQUEST_EXCEPTION"
    COMMAND_EXCEPTION = "COMMAND_EXCEPTION"
    TIMEOUT = "TIMEOUT"
    SHORTCIRCUIT = "SHORTCIRCUIT"
    REJECTED_THREAD_EXECUTION = "REJECTED_THREAD_EXECUTION"
    REJECTED_SEMAPHORE_EXECUTION = "REJECTED_SEMAPHORE_EXECUTION"
    REJECTED_SEMAPHORE_FALLBACK = "REJECTED_SEMAPHORE_FALLBACK"
    #: hystrixpy's own: the command's rate limiter refused the execution.
    RATE_LIMITED = "RATE_LIMITED"


class IsolationStrategy(enum.Enum):
    """Where ``run()`` executes: on a pool's worker thread, or on the caller's thread."""

    THREAD = "THREAD"
    SEMAPHORE = "SEMAPHORE"


class ExecutionResult:
    """What happened during one execution, filled in as it proceeds.

    ``events`` lists the events in the order they happened. ``exception`` is
    why run() gave no value (the HystrixRuntimeError's cause) and
    ``run_exception`` what run() itself raised, if it did. Times are in
    milliseconds; ``execution_time_ms`` is run()'s own time (-1 when run() was
    not called) and ``total_time_ms`` what the caller waited.
    """

    # Fields an execution has not reached yet read these class-level defaults, so
    # starting an execution sets only what every execution has.
    exception: BaseException | None = None
    run_exception: BaseException | None = None
    fallback_exception: BaseException | None = None
    failure_type: FailureType | None = None
    execution_time_ms: int = -1
    total_time_ms: int = -1
    executed_in_thread: bool = False

    def __init__(self, start: float) -> None:
        self.start = start
        self.events: list[EventType] = []

    def __repr__(self) -> str:
        names = ", ".join(event.name for event in self.events)
        return f"ExecutionResult([{names}], {self.total_time_ms}ms)"
