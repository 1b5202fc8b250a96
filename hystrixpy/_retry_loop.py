"""The retry loop of one call: tenacity driven by hystrixpy's stop, wait, retry and sleep.

:meth:`hystrixpy.retry.RetryPolicy.run` makes the first attempt itself and
hands a call that must be retried to :class:`_Call`, which replays that first
outcome to tenacity as its attempt 1.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Generic, NoReturn, TypeVar, cast

import tenacity

from hystrixpy import _log, clock, deadline
from hystrixpy._retry_classify import retry_after_ms
from hystrixpy.exceptions import RetryError

if TYPE_CHECKING:
    from hystrixpy.retry import RetryListener, RetryPolicy

T = TypeVar("T")


class _GaveUp(tenacity.RetryError):
    """tenacity's signal that it stopped; with ``reraise=True`` it raises the last error itself.

    A last attempt that returned a value has no error to raise, so hystrixpy's
    :class:`RetryError` carries the value instead.
    """

    def reraise(self) -> NoReturn:
        last = self.last_attempt
        if last.failed:
            super().reraise()
        value = last.result()
        raise RetryError(
            f"retry_on_result still rejected the result after {last.attempt_number} "
            f"attempt(s): {value!r}",
            last_result=value,
            attempts=last.attempt_number,
        )


class _Call(Generic[T]):
    """One call's retry state, shared by the callables tenacity is driven with.

    tenacity asks for the wait before it asks whether to stop (older versions the
    other way round); both read the one delay drawn per failed attempt here.
    """

    __slots__ = (
        "_delay_attempt",
        "_delay_ms",
        "_first_error",
        "_first_value",
        "_fn",
        "_listener",
        "_name",
        "_policy",
        "_replay",
    )

    def __init__(
        self,
        policy: RetryPolicy,
        fn: Callable[[], T],
        listener: RetryListener | None,
        first_error: Exception | None,
        first_value: T | None,
    ) -> None:
        self._policy = policy
        self._fn = fn
        self._listener = listener
        self._first_error = first_error
        self._first_value = first_value
        self._replay = True
        self._name = _name_of(fn)
        self._delay_attempt = 0
        self._delay_ms = 0.0

    def resume(self) -> T:
        """Hand the call to tenacity, the first outcome replayed as attempt 1."""
        retrying = tenacity.Retrying(
            sleep=_sleep,
            stop=self._stop,
            wait=self._wait,
            retry=self._retry,
            before_sleep=self._before_sleep,
            reraise=True,
            retry_error_cls=_GaveUp,
        )
        return retrying(self._attempt)

    def _attempt(self) -> T:
        if not self._replay:
            return self._fn()
        self._replay = False
        error, self._first_error = self._first_error, None
        if error is not None:
            raise error
        return cast("T", self._first_value)

    def _retry(self, state: tenacity.RetryCallState) -> bool:
        if state.attempt_number == 1:
            return True  # the replayed first outcome, already found worth retrying
        outcome = _outcome(state)
        error = outcome.exception()
        if error is None:
            check = self._policy.retry_on_result
            return check is not None and bool(check(outcome.result()))
        if not isinstance(error, Exception):
            return False  # KeyboardInterrupt, SystemExit: out at once, as they are
        if self._policy.is_retryable(error):
            return True
        _annotate(error, state.attempt_number, "the error is not retryable")
        return False

    def _delay(self, state: tenacity.RetryCallState) -> float:
        attempt = state.attempt_number
        if attempt != self._delay_attempt:
            self._delay_attempt = attempt
            policy = self._policy
            if attempt >= policy.max_attempts:
                self._delay_ms = 0.0  # no next attempt: draw no jitter
            else:
                error = _outcome(state).exception()
                asked = None if error is None else retry_after_ms(error)
                self._delay_ms = policy.delay_ms(attempt, retry_after_ms=asked)
        return self._delay_ms

    def _wait(self, state: tenacity.RetryCallState) -> float:
        return self._delay(state) / 1000.0

    def _stop(self, state: tenacity.RetryCallState) -> bool:
        attempt = state.attempt_number
        outcome = _outcome(state)
        error = outcome.exception()
        if attempt >= self._policy.max_attempts:
            _log.info(
                "retry_exhausted",
                function=self._name,
                attempts=attempt,
                error=_describe(outcome),
            )
            if error is not None:
                _annotate(error, attempt, f"gave up after {attempt} attempt(s)")
            return True
        delay_ms = self._delay(state)
        left = deadline.remaining()
        if left is None or delay_ms < left * 1000.0:
            return False
        _log.info(
            "retry_stopped_by_deadline",
            function=self._name,
            attempt=attempt,
            delay_ms=delay_ms,
            remaining_ms=left * 1000.0,
            error=_describe(outcome),
        )
        if error is not None:
            _annotate(
                error,
                attempt,
                f"stopped after {attempt} attempt(s): a {delay_ms:g} ms delay "
                f"would reach the deadline",
            )
        return True

    def _before_sleep(self, state: tenacity.RetryCallState) -> None:
        attempt = state.attempt_number
        delay_ms = self._delay_ms
        outcome = _outcome(state)
        # Only Exceptions are ever retried (_retry), so this is one or a rejected result.
        error = cast("Exception | None", outcome.exception())
        if error is None:
            value = outcome.result()
            error = RetryError(
                f"retry_on_result rejected the result of attempt {attempt}: {value!r}",
                last_result=value,
                attempts=attempt,
            )
        _log.info(
            "retry_scheduled",
            function=self._name,
            attempt=attempt,
            delay_ms=delay_ms,
            error=repr(error),
        )
        for callback in (self._policy.on_retry, self._listener):
            if callback is None:
                continue
            try:
                callback(error, attempt, delay_ms)
            except Exception as failed:
                _log.warning(
                    "retry_callback_failed",
                    function=self._name,
                    callback=_name_of(callback),
                    error=repr(failed),
                )


def _outcome(state: tenacity.RetryCallState) -> tenacity.Future:
    # tenacity sets the outcome before it calls retry, wait, stop or before_sleep.
    return cast("tenacity.Future", state.outcome)


def _describe(outcome: tenacity.Future) -> str:
    error = outcome.exception()
    if error is not None:
        return repr(error)
    return f"retry_on_result rejected {outcome.result()!r}"


def _annotate(error: BaseException, attempts: int, why: str) -> None:
    """Tell the caller how many attempts were made: an attribute, and a note (3.11+)."""
    error.retry_attempts = attempts  # type: ignore[attr-defined]
    if sys.version_info >= (3, 11):  # pragma: no branch
        error.add_note(f"hystrixpy.retry: {why}")


def _sleep(seconds: float) -> None:
    """Sleep on the installed clock (looked up now: :func:`clock.set_clock` rebinds it)."""
    if seconds > 0:
        clock.sleep(seconds)


def _name_of(fn: object) -> str:
    while isinstance(fn, functools.partial):
        fn = fn.func
    name = getattr(fn, "__qualname__", None)
    return name if isinstance(name, str) else repr(fn)
