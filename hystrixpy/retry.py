"""Call a function again when it fails with an error that is likely to pass.

::

    from hystrixpy.retry import retry

    user = retry(lambda: client.get_user(7))                   # 3 attempts, 100 ms, x2, jitter
    user = retry(lambda: client.get_user(7), max_attempts=5)

    @retry.on(max_attempts=3)
    def get_user(user_id: int) -> dict: ...

The loop is tenacity's (:class:`tenacity.Retrying`, a fresh one per call),
driven by hystrixpy's own stop, wait, retry and sleep callables: sleeps go
through hystrixpy's clock (so a fake clock or freezegun controls them) and
never run past the current deadline (:mod:`hystrixpy.deadline`). The first
attempt is made directly; only when it fails with a retryable error, or
returns a result ``retry_on_result`` rejects, does tenacity take over, with
that first outcome replayed as its attempt 1. A call that succeeds at once
costs one ``try``.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import random as _random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypedDict, TypeVar

import wrapt

from hystrixpy._retry_classify import is_transient
from hystrixpy._retry_loop import _Call

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = [
    "RetryListener",
    "RetryOptions",
    "RetryOutcome",
    "RetryPolicy",
    "is_transient",
    "make_retryable",
    "retry",
    "retry_with_result",
]

T = TypeVar("T")
P = ParamSpec("P")
R = TypeVar("R")

#: Called before each sleep with the error, the attempt that failed (1-based) and the
#: delay before the next attempt in milliseconds (``on_retry``, and the engine's listener).
RetryListener = Callable[[Exception, int, float], object]


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """How to retry: how many attempts, how long to wait between them, and what to retry.

    The delay after failed attempt *n* (1-based) is
    ``d = min(initial_delay_ms * backoff_multiplier ** (n - 1), max_delay_ms)``.
    With ``jitter`` ("equal jitter") it is ``d / 2 + d / 2 * random()``, uniform in
    ``[d / 2, d]``: never more than the delay without jitter, nor than
    ``max_delay_ms``. A ``max_delay_ms`` below ``initial_delay_ms`` makes every
    delay ``max_delay_ms``. A 429 or 503 error with ``Retry-After`` waits at least
    what it asks, up to ``max_delay_ms``.

    ``max_attempts`` counts every attempt, the first included (1: no retry).
    ``is_retryable(error)`` decides for each :class:`Exception` (default
    :func:`is_transient`); other ``BaseException`` s are never retried.
    ``on_retry(error, attempt, delay_ms)`` is called before each sleep; what it
    raises is logged (``retry_callback_failed``) and the retry goes on.
    ``retry_on_result(value)`` retries while it is true of a returned value; when
    the attempts run out that way, :class:`~hystrixpy.exceptions.RetryError` is
    raised. ``random`` returns floats in ``[0, 1)`` for the jitter.

    A wrong value raises :class:`ValueError` (a wrong type :class:`TypeError`)
    naming the option, when the policy is built. Change one with
    :func:`dataclasses.replace`.
    """

    max_attempts: int = 3
    initial_delay_ms: float = 100.0
    backoff_multiplier: float = 2.0
    max_delay_ms: float = 30_000.0
    jitter: bool = True
    is_retryable: Callable[[Exception], bool] = is_transient
    on_retry: RetryListener | None = None
    retry_on_result: Callable[[Any], bool] | None = None
    random: Callable[[], float] = _random.random

    def __post_init__(self) -> None:
        attempts = self.max_attempts
        if isinstance(attempts, bool) or not isinstance(attempts, int):
            raise TypeError(f"RetryPolicy max_attempts must be an int, got {attempts!r}")
        if attempts < 1:
            raise ValueError(f"RetryPolicy max_attempts must be >= 1, got {attempts!r}")
        _check_number("initial_delay_ms", self.initial_delay_ms, 0.0, finite=True)
        _check_number("backoff_multiplier", self.backoff_multiplier, 1.0, finite=True)
        _check_number("max_delay_ms", self.max_delay_ms, 0.0, finite=False)
        if not isinstance(self.jitter, bool):
            raise TypeError(f"RetryPolicy jitter must be a bool, got {self.jitter!r}")
        for name in ("is_retryable", "on_retry", "retry_on_result", "random"):
            value = getattr(self, name)
            optional = name in ("on_retry", "retry_on_result")
            if not callable(value) and not (optional and value is None):
                kind = "a callable or None" if optional else "a callable"
                raise TypeError(f"RetryPolicy {name} must be {kind}, got {value!r}")

    def delay_ms(
        self, attempt: int, random_value: float | None = None, retry_after_ms: float | None = None
    ) -> float:
        """The wait after failed attempt ``attempt`` (1-based) before the next one, in ms.

        Pure when ``random_value`` (in ``[0, 1]``) is given; otherwise, with jitter,
        it is drawn from :attr:`random`. ``retry_after_ms`` is what a server asked
        for (``Retry-After``): the delay is at least that, up to ``max_delay_ms``.
        """
        if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 1:
            raise ValueError(f"attempt must be an int >= 1, got {attempt!r}")
        cap = self.max_delay_ms
        try:
            grown = self.initial_delay_ms * self.backoff_multiplier ** (attempt - 1)
        except OverflowError:
            grown = math.inf if self.initial_delay_ms > 0 else 0.0
        delay = float(grown if grown < cap else cap)
        if self.jitter:
            drawn = self.random() if random_value is None else random_value
            if not 0.0 <= drawn <= 1.0:
                raise ValueError(f"random_value must be in [0, 1], got {drawn!r}")
            half = delay / 2.0
            delay = half + half * drawn
        if retry_after_ms is not None:
            floor = retry_after_ms if retry_after_ms < cap else cap
            if delay < floor:
                delay = float(floor)
        return delay

    def run(self, fn: Callable[[], T], listener: RetryListener | None = None) -> T:
        """Call ``fn()`` until it succeeds or retrying stops; return its value.

        Retrying stops at a failure that is not retryable, when the attempts run
        out, or when the next delay would reach the current deadline
        (:func:`hystrixpy.deadline.remaining`). The last error is then raised as
        it is, with ``retry_attempts`` set on it (and a note); a result that
        ``retry_on_result`` still rejects raises :class:`RetryError`.
        ``listener(error, attempt, delay_ms)`` is called before each sleep, after
        ``on_retry`` (the command engine counts retries with it).
        """
        try:
            value = fn()
        except Exception as caught:
            if not self.is_retryable(caught):
                raise
            failure = caught
        else:
            check = self.retry_on_result
            if check is None or not check(value):
                return value
            return _Call(self, fn, listener, None, value).resume()
        # Handed over outside the except block, so later errors are not chained to this one.
        return _Call(self, fn, listener, failure, None).resume()


def _check_number(name: str, value: object, minimum: float, *, finite: bool) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"RetryPolicy {name} must be a number, got {value!r}")
    if not value >= minimum:  # also refuses NaN
        raise ValueError(f"RetryPolicy {name} must be >= {minimum:g}, got {value!r}")
    if finite and not math.isfinite(value):
        raise ValueError(f"RetryPolicy {name} must be finite, got {value!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryOutcome(Generic[T]):
    """What :func:`retry_with_result` found, instead of raising.

    ``success`` tells whether a call succeeded; ``value`` is its value (``None``
    otherwise); ``error`` the error that ended the retries, or the
    :class:`RetryError` of a result still rejected (``None`` on success);
    ``attempts`` how many attempts were made.
    """

    success: bool
    value: T | None
    error: Exception | None
    attempts: int


class RetryOptions(TypedDict, total=False):
    """The keyword options of :data:`retry`, :func:`retry_with_result` and :func:`make_retryable`.

    Each is the :class:`RetryPolicy` field of the same name; those given replace
    the fields of ``policy=`` (or of the defaults).
    """

    max_attempts: int
    initial_delay_ms: float
    backoff_multiplier: float
    max_delay_ms: float
    jitter: bool
    is_retryable: Callable[[Exception], bool]
    on_retry: RetryListener | None
    retry_on_result: Callable[[Any], bool] | None
    random: Callable[[], float]


_DEFAULT_POLICY = RetryPolicy()
_OPTION_NAMES = frozenset(RetryOptions.__annotations__)


def _policy_for(policy: RetryPolicy | None, options: Mapping[str, Any]) -> RetryPolicy:
    """``policy`` (or the defaults) with ``options`` applied, validated now."""
    if policy is None:
        policy = _DEFAULT_POLICY
    elif not isinstance(policy, RetryPolicy):
        raise TypeError(f"policy must be a RetryPolicy, got {policy!r}")
    if not options:
        return policy
    unknown = options.keys() - _OPTION_NAMES
    if unknown:
        raise TypeError(
            f"unknown retry option(s) {', '.join(sorted(unknown))}; "
            f"the options are {', '.join(sorted(_OPTION_NAMES))}"
        )
    return dataclasses.replace(policy, **options)


class _Retry:
    """The type of :data:`retry`: call it to retry a call now; ``retry.on(...)`` decorates."""

    __slots__ = ()

    def __call__(
        self,
        fn: Callable[[], T],
        /,
        *,
        policy: RetryPolicy | None = None,
        **options: Unpack[RetryOptions],
    ) -> T:
        """Call ``fn()`` and retry its failures; return its value or raise the last error.

        ``fn`` takes no arguments (use a lambda or :func:`functools.partial`). The
        options (see :class:`RetryPolicy`) build a policy, or replace fields of
        ``policy``. See :meth:`RetryPolicy.run`.
        """
        return _policy_for(policy, options).run(fn)

    def on(
        self,
        misuse: None = None,
        /,
        *,
        policy: RetryPolicy | None = None,
        **options: Unpack[RetryOptions],
    ) -> Callable[[Callable[P, R]], Callable[P, R]]:
        """The decorator: ``@retry.on(max_attempts=3)`` retries each call of a function or method.

        The options are checked when the decorator is made. The decorated function
        keeps its name, docstring, signature and type (:func:`make_retryable`).
        """
        if misuse is not None:
            raise TypeError(
                "retry.on takes options, not the function: "
                "write @retry.on() or @retry.on(max_attempts=3)"
            )
        chosen = _policy_for(policy, options)

        def decorate(fn: Callable[P, R]) -> Callable[P, R]:
            return _decorate(fn, chosen)

        return decorate

    def __repr__(self) -> str:
        return "hystrixpy.retry.retry"


#: Retry a call: ``retry(fn, **options)``; decorate: ``@retry.on(**options)``.
retry = _Retry()


def retry_with_result(
    fn: Callable[[], T], /, *, policy: RetryPolicy | None = None, **options: Unpack[RetryOptions]
) -> RetryOutcome[T]:
    """Like :data:`retry`, but report the outcome instead of raising.

    The error that ended the retries (or a :class:`RetryError`) is in the
    outcome. Invalid options still raise, before ``fn`` is called, and so do
    ``BaseException`` s that are not :class:`Exception` s (``KeyboardInterrupt``).
    """
    chosen = _policy_for(policy, options)
    retried = 0

    def count(error: Exception, attempt: int, delay_ms: float) -> None:
        nonlocal retried
        retried = attempt

    try:
        value = chosen.run(fn, count)
    except Exception as error:
        return RetryOutcome(success=False, value=None, error=error, attempts=retried + 1)
    return RetryOutcome(success=True, value=value, error=None, attempts=retried + 1)


def make_retryable(
    fn: Callable[P, R], /, *, policy: RetryPolicy | None = None, **options: Unpack[RetryOptions]
) -> Callable[P, R]:
    """Return ``fn`` with each call retried: the function form of ``@retry.on(...)``.

    Built with :mod:`wrapt`, so the result keeps ``fn``'s name, docstring,
    signature (:func:`inspect.signature`) and type, and works on methods. The
    options are checked now.
    """
    return _decorate(fn, _policy_for(policy, options))


def _decorate(fn: Callable[P, R], policy: RetryPolicy) -> Callable[P, R]:
    if not callable(fn):
        raise TypeError(f"only a function or method can be made retryable, got {fn!r}")
    run = policy.run

    def call_with_retries(
        wrapped: Callable[P, R], instance: object, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> R:
        return run(functools.partial(wrapped, *args, **kwargs))

    return wrapt.FunctionWrapper(fn, call_with_retries)
