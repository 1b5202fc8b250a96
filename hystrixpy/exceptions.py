"""hystrixpy's exceptions.

::

    Exception
     +-- HystrixError                 base of everything hystrixpy raises itself
     |    +-- HystrixRuntimeError     the command failed and no fallback answered
     |    +-- ShortCircuitedError     a circuit was open, so the call was not made
     |    |    +-- CircuitBreakerError  a standalone breaker (hystrixpy.breakers) is open
     |    +-- RejectedError           a bulkhead was full, so the call was not made
     |    +-- RetryError              hystrixpy.retry: every attempt returned a result
     |    |                           that retry_on_result rejected (no error to re-raise)
     |    +-- RateLimitExceeded       hystrixpy.ratelimit: no permit within the time
     |                                allowed; ``retry_after`` says when to try again
     |    +-- AllFallbacksFailed      hystrixpy.fallback: every level of a chain failed;
     |                                an ExceptionGroup on Python 3.11+ (except* works)
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

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from hystrixpy.events import FailureType

if TYPE_CHECKING:
    from hystrixpy.command import Command

__all__ = [
    "AllFallbacksFailed",
    "BadRequestError",
    "CallTimeoutError",
    "CircuitBreakerError",
    "CommandTimeoutError",
    "HystrixError",
    "HystrixRuntimeError",
    "RateLimitExceeded",
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


class RateLimitExceeded(HystrixError):
    """A rate limiter (:mod:`hystrixpy.ratelimit`) gave no permit within the time allowed.

    ``limiter`` is the limiter's name, ``key`` the key that was limited (``None``
    for an unkeyed bucket) and ``retry_after`` how many seconds until the permit
    asked for could be had (as a ``Retry-After`` header would say).
    """

    def __init__(
        self, message: str, *, limiter: str, key: object = None, retry_after: float
    ) -> None:
        super().__init__(message)
        self.limiter = limiter
        self.key = key
        self.retry_after = retry_after

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_rate_limit_error, (str(self), self.limiter, self.key, self.retry_after))


def _rebuild_rate_limit_error(
    message: str, limiter: str, key: object, retry_after: float
) -> RateLimitExceeded:
    return RateLimitExceeded(message, limiter=limiter, key=key, retry_after=retry_after)


if sys.version_info >= (3, 11):

    class AllFallbacksFailed(ExceptionGroup[Exception], HystrixError):  # noqa: F821
        """Every level of a fallback chain (:mod:`hystrixpy.fallback`) failed.

        An :class:`ExceptionGroup`, so ``except* ConnectionError:`` catches it
        when any level failed with one; ``exceptions`` holds each level's error
        in the chain's order. Built like any group: ``AllFallbacksFailed(message,
        errors)``.
        """

else:  # pragma: no cover - Python 3.10 has no ExceptionGroup

    class AllFallbacksFailed(HystrixError):
        """Every level of a fallback chain (:mod:`hystrixpy.fallback`) failed.

        Python 3.10's stand-in for the :class:`ExceptionGroup` of 3.11+: the same
        ``message`` and ``exceptions`` (each level's error, in the chain's order),
        the same ``str()``, but no ``except*``. Catch it with ``except``.
        """

        def __init__(self, message: str, exceptions: Sequence[Exception], /) -> None:
            errors = tuple(exceptions)
            if not errors:
                raise ValueError("AllFallbacksFailed needs at least one exception")
            super().__init__(message, errors)
            self.message = message
            self.exceptions = errors

        def __str__(self) -> str:
            count = len(self.exceptions)
            return f"{self.message} ({count} sub-exception{'' if count == 1 else 's'})"


class CallTimeoutError(CommandTimeoutError, HystrixError):
    """A call guarded by a standalone breaker did not finish within its request timeout.

    A :class:`TimeoutError` (and a :class:`CommandTimeoutError`, so raised out
    of a command's ``run()`` it counts as a TIMEOUT), and a :class:`HystrixError`.
    """
