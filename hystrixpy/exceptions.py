"""hystrixpy's exceptions.

::

    Exception
     +-- HystrixError                 base of everything hystrixpy raises itself
     |    +-- HystrixRuntimeError     the command failed and no fallback answered
     |    +-- ShortCircuitedError     a circuit was open, so the call was not made
     |    |    +-- CircuitBreakerError  a standalone breaker (hystrixpy.breakers) is open
     |    +-- RejectedError           a bulkhead was full, so the call was not made
     |    +-- RetryError              hystrixpy.retry: every attempt returned a result
     |                                that retry_on_result rejected (no error to re-raise)
     +-- BadRequestError              raised by run() for the caller's mistake;
                                      passed through unwrapped, never a fallback,
                                      never counted against the circuit
    TimeoutError
     +-- CommandTimeoutError          raise from run() to have a failure counted
                                      as TIMEOUT; also the ``__cause__`` of a
                                      timed-out execution's HystrixRuntimeError
          +-- CallTimeoutError        a call guarded by a standalone breaker passed its
                                      request timeout (also a HystrixError)

Configuration mistakes raise :class:`ValueError` or :class:`TypeError` when
the configuration is written; misuse of a command (executing it twice)
raises :class:`RuntimeError`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hystrixpy.events import FailureType

if TYPE_CHECKING:
    from hystrixpy.command import Command

__all__ = [
    "BadRequestError",
    "CallTimeoutError",
    "CircuitBreakerError",
    "CommandTimeoutError",
    "HystrixError",
    "HystrixRuntimeError",
    "RejectedError",
    "RetryError",
    "ShortCircuitedError",
]


class HystrixError(Exception):
    """Base class of the exceptions hystrixpy raises."""


class HystrixRuntimeError(HystrixError):
    """A command failed and there was no usable fallback.

    ``failure_type`` says why it failed, ``command_class`` which command it
    was, ``fallback_exception`` what the fallback raised (``None`` when the
    fallback was missing, disabled or rejected), and ``__cause__`` the
    original error.
    """

    def __init__(
        self,
        message: str,
        *,
        failure_type: FailureType,
        command_class: type[Command[Any]] | None,
        fallback_exception: BaseException | None = None,
    ) -> None:
        super().__init__(message)
        self.failure_type = failure_type
        self.command_class = command_class
        self.fallback_exception = fallback_exception

    def __reduce__(self) -> tuple[object, ...]:
        return (
            _rebuild_runtime_error,
            (str(self), self.failure_type, self.command_class, self.fallback_exception),
        )


def _rebuild_runtime_error(
    message: str,
    failure_type: FailureType,
    command_class: type[Command[Any]] | None,
    fallback_exception: BaseException | None,
) -> HystrixRuntimeError:
    return HystrixRuntimeError(
        message,
        failure_type=failure_type,
        command_class=command_class,
        fallback_exception=fallback_exception,
    )


class BadRequestError(Exception):
    """Raise from ``run()`` when the caller's input is at fault, not the dependency.

    It reaches the caller unwrapped, skips the fallback and never counts
    towards opening the circuit.
    """


class CommandTimeoutError(TimeoutError):
    """The execution passed its deadline.

    ``run()`` may raise it itself to have its failure counted as a TIMEOUT.
    """


class ShortCircuitedError(HystrixError):
    """The circuit was open, so run() was not called (the cause of a SHORTCIRCUIT failure)."""


class RejectedError(HystrixError):
    """A bulkhead was full, so run() was not called (the ``__cause__`` of a rejection)."""


class CircuitBreakerError(ShortCircuitedError):
    """A standalone circuit breaker (:mod:`hystrixpy.breakers`) is open: the call was not made.

    ``breaker_name`` names the breaker; ``retry_after`` is how many seconds until
    it lets a trial call through (``None`` when it cannot say, as while half-open).
    """

    def __init__(self, message: str, *, breaker_name: str, retry_after: float | None) -> None:
        super().__init__(message)
        self.breaker_name = breaker_name
        self.retry_after = retry_after

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_breaker_error, (str(self), self.breaker_name, self.retry_after))


def _rebuild_breaker_error(
    message: str, breaker_name: str, retry_after: float | None
) -> CircuitBreakerError:
    return CircuitBreakerError(message, breaker_name=breaker_name, retry_after=retry_after)


class RetryError(HystrixError):
    """A retry (:mod:`hystrixpy.retry`) stopped while ``retry_on_result`` still rejected the result.

    Raised only then: when attempts fail with errors, the last error itself is
    re-raised. ``last_result`` is what the last attempt returned and ``attempts``
    how many attempts were made.
    """

    def __init__(self, message: str, *, last_result: object, attempts: int) -> None:
        super().__init__(message)
        self.last_result = last_result
        self.attempts = attempts

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_retry_error, (str(self), self.last_result, self.attempts))


def _rebuild_retry_error(message: str, last_result: object, attempts: int) -> RetryError:
    return RetryError(message, last_result=last_result, attempts=attempts)


class CallTimeoutError(CommandTimeoutError, HystrixError):
    """A call guarded by a standalone breaker did not finish within its request timeout.

    A :class:`TimeoutError` (and a :class:`CommandTimeoutError`, so raised out
    of a command's ``run()`` it counts as a TIMEOUT), and a :class:`HystrixError`.
    """
