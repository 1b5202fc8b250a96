"""``Command``: the protected call, and what it reports about its one execution."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from hystrixpy import clock, execution, registry
from hystrixpy.circuit_breaker import CircuitBreaker, NoOpCircuitBreaker
from hystrixpy.events import EventType
from hystrixpy.properties import CommandProperties, ThreadPoolProperties
from hystrixpy.ratelimit import RateLimiter
from hystrixpy.retry import RetryPolicy

if TYPE_CHECKING:
    from hystrixpy.metrics import CommandMetrics

__all__ = ["Command"]

R = TypeVar("R")


class Command(Generic[R]):
    """A call to a dependency, with a bulkhead, a timeout, a circuit breaker and a fallback.

    Subclass it, set ``group_key``, implement :meth:`run` (and optionally
    :meth:`get_fallback`), then call :meth:`execute` or :meth:`queue` on a new
    instance for every call::

        class GetUser(Command[dict]):
            group_key = "UserService"
            properties = CommandProperties(execution_timeout_ms=500)

            def __init__(self, user_id: int) -> None:
                super().__init__()
                self.user_id = user_id

            def run(self) -> dict: ...
            def get_fallback(self) -> dict: ...

    ``command_key`` defaults to the class name and ``thread_pool_key`` to the
    group key; both may also be given per instance to ``__init__``.

    ``retry = RetryPolicy(max_attempts=3)`` retries run() inside the bulkhead
    and before the deadline; the breaker and the health counts see only the
    execution's final outcome, and each extra attempt is a ``RETRY`` event.
    """

    group_key: str
    command_key: str
    thread_pool_key: str
    properties: ClassVar[CommandProperties] = CommandProperties()
    thread_pool_properties: ClassVar[ThreadPoolProperties] = ThreadPoolProperties()
    #: How run() is retried within one execution; its numbers become the class's
    #: ``retry_*`` properties (so ``configure()`` can change them per key).
    retry: ClassVar[RetryPolicy | None] = None
    #: Asked first, before the breaker: an execution it refuses is RATE_LIMITED and falls
    #: back. Any object with ``try_acquire() -> bool`` (see :mod:`hystrixpy.ratelimit`).
    rate_limiter: ClassVar[RateLimiter | None] = None

    _command_key_is_default: ClassVar[bool] = True
    _thread_pool_key_is_default: ClassVar[bool] = True
    _execution: execution.Execution[R] | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "command_key" in cls.__dict__:
            cls._command_key_is_default = False
        elif cls._command_key_is_default:
            cls.command_key = cls.__name__
        if not isinstance(cls.properties, CommandProperties):
            raise TypeError(
                f"{cls.__name__}.properties must be a CommandProperties, got {cls.properties!r}"
            )
        if not isinstance(cls.thread_pool_properties, ThreadPoolProperties):
            raise TypeError(
                f"{cls.__name__}.thread_pool_properties must be a ThreadPoolProperties, "
                f"got {cls.thread_pool_properties!r}"
            )
        _adopt_retry_policy(cls)
        limiter = cls.rate_limiter
        if limiter is not None and not callable(getattr(limiter, "try_acquire", None)):
            raise TypeError(
                f"{cls.__name__}.rate_limiter must have a try_acquire() method "
                f"(a hystrixpy.ratelimit limiter), got {limiter!r}"
            )
        if cls.run is Command.run:
            return  # an abstract base: its subclasses name their group
        group_key = getattr(cls, "group_key", None)
        if not isinstance(group_key, str) or not group_key:
            raise TypeError(
                f"{cls.__qualname__} implements run() but has no group_key: "
                f'add a class attribute such as group_key = "{cls.__name__}Group"'
            )
        if "thread_pool_key" in cls.__dict__:
            cls._thread_pool_key_is_default = False
        elif cls._thread_pool_key_is_default:
            cls.thread_pool_key = group_key
        # Fail now, not at the first call, if the class's properties clash with the configuration.
        registry.declare(
            registry.Declaration(
                cls.command_key,
                group_key,
                cls.thread_pool_key,
                cls.properties,
                cls.thread_pool_properties,
                cls.retry,
                cls.rate_limiter,
            )
        )

    def __init__(
        self, *, command_key: str | None = None, thread_pool_key: str | None = None
    ) -> None:
        self._execution = None  # on the instance, where execute() looks first
        if command_key is not None:
            self.command_key = command_key
        if thread_pool_key is not None:
            self.thread_pool_key = thread_pool_key

    # -- what users implement ------------------------------------------------

    def run(self) -> R:
        """The protected call; raise :class:`~hystrixpy.BadRequestError` for a caller's mistake."""
        raise NotImplementedError(f"{type(self).__name__} must implement run()")

    def get_fallback(self) -> R:
        """The answer when run() fails, times out, is rejected or short-circuited."""
        raise NotImplementedError(f"{type(self).__name__} defines no fallback")

    def has_fallback(self) -> bool:
        """Whether this command's class overrides :meth:`get_fallback`."""
        return type(self).get_fallback is not Command.get_fallback

    # -- running -------------------------------------------------------------

    #: Run and block for run()'s value, or the fallback's (see :func:`hystrixpy.execution.execute`).
    execute = execution.execute
    #: Start running and return a future at once (see :func:`hystrixpy.execution.queue`).
    queue = execution.queue

    def remaining_time(self) -> float | None:
        """Seconds left before the deadline (0.0 once passed), ``None`` without a timeout.

        Pass it to blocking I/O in run() so it gives up when the caller does.
        """
        current = self._execution
        if current is None or current.deadline is None:
            return None
        return max(current.deadline - clock.monotonic(), 0.0)

    @property
    def is_timed_out(self) -> bool:
        """Whether the execution's deadline has passed (run() may check it and stop early)."""
        current = self._execution
        if current is None:
            return False
        if EventType.TIMEOUT in current.events:
            return True
        return current.deadline is not None and clock.monotonic() >= current.deadline

    # -- per-key state -------------------------------------------------------

    @property
    def metrics(self) -> CommandMetrics:
        """The rolling and cumulative metrics of this command's key."""
        return self._key_state().metrics

    @property
    def circuit_breaker(self) -> CircuitBreaker | NoOpCircuitBreaker:
        """The circuit breaker of this command's key."""
        return self._key_state().circuit_breaker

    def _key_state(self) -> registry.CommandKeyState:
        return registry.state_of(self)

    # -- introspection of the execution --------------------------------------

    @property
    def execution_events(self) -> list[EventType]:
        """The events of this execution, in the order they happened."""
        current = self._execution
        return [] if current is None else list(current.events)

    def _has(self, event: EventType) -> bool:
        current = self._execution
        return current is not None and event in current.events

    @property
    def is_successful_execution(self) -> bool:
        """run() returned a value in time."""
        return self._has(EventType.SUCCESS)

    @property
    def is_failed_execution(self) -> bool:
        """run() raised an error (recorded as FAILURE)."""
        return self._has(EventType.FAILURE)

    @property
    def failed_execution_exception(self) -> BaseException | None:
        """What run() raised, if it raised."""
        current = self._execution
        return None if current is None else current.run_exception

    @property
    def is_response_from_fallback(self) -> bool:
        """The value came from get_fallback()."""
        return self._has(EventType.FALLBACK_SUCCESS)

    @property
    def is_response_timed_out(self) -> bool:
        """The execution timed out."""
        return self._has(EventType.TIMEOUT)

    @property
    def is_response_short_circuited(self) -> bool:
        """The circuit was open, so run() was not called."""
        return self._has(EventType.SHORT_CIRCUITED)

    @property
    def is_response_rejected(self) -> bool:
        """A bulkhead (pool or semaphore) refused the execution."""
        return self.is_response_thread_pool_rejected or self.is_response_semaphore_rejected

    @property
    def is_response_thread_pool_rejected(self) -> bool:
        """The thread pool was full."""
        return self._has(EventType.THREAD_POOL_REJECTED)

    @property
    def is_response_semaphore_rejected(self) -> bool:
        """The execution semaphore was full."""
        return self._has(EventType.SEMAPHORE_REJECTED)

    @property
    def is_response_rate_limited(self) -> bool:
        """The rate limiter refused the execution, so run() was not called."""
        return self._has(EventType.RATE_LIMITED)

    @property
    def is_circuit_breaker_open(self) -> bool:
        """Whether this command's circuit is open now."""
        return self.circuit_breaker.is_open()

    @property
    def is_executed_in_thread(self) -> bool:
        """run() ran on a pool worker thread."""
        current = self._execution
        return current is not None and current.executed_in_thread

    @property
    def attempts(self) -> int:
        """How many times run() was attempted (1 plus its retries; 0 if it was not called)."""
        current = self._execution
        if current is None or (current.execution_time_ms < 0 and not current.executed_in_thread):
            return 0
        return 1 + current.events.count(EventType.RETRY)

    @property
    def execution_time_ms(self) -> int:
        """How long run() took, in milliseconds (-1 if it was not called or is still running)."""
        current = self._execution
        return -1 if current is None else current.execution_time_ms

    def __repr__(self) -> str:
        return f"<{type(self).__name__} command_key={self.command_key!r}>"


_RETRY_FIELDS = {
    "retry_max_attempts": "max_attempts",
    "retry_initial_delay_ms": "initial_delay_ms",
    "retry_backoff_multiplier": "backoff_multiplier",
    "retry_max_delay_ms": "max_delay_ms",
    "retry_jitter": "jitter",
}


def _adopt_retry_policy(cls: type[Command[Any]]) -> None:
    """Make the class's retry policy's numbers its ``retry_*`` code defaults.

    A policy set on this very class wins over the ``retry_*`` fields of its
    ``properties``; an inherited one fills only the fields they leave unset.
    """
    policy = cls.retry
    if policy is None:
        return
    if not isinstance(policy, RetryPolicy):
        raise TypeError(f"{cls.__name__}.retry must be a RetryPolicy or None, got {policy!r}")
    own = "retry" in cls.__dict__
    changes = {
        field: getattr(policy, option)
        for field, option in _RETRY_FIELDS.items()
        if own or field not in cls.properties.explicit_fields
    }
    cls.properties = dataclasses.replace(cls.properties, **changes)
