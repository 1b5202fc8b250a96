"""Which errors are worth retrying, and what a server's ``Retry-After`` asks for.

The machinery behind :func:`hystrixpy.retry.is_transient`. HTTP client
libraries are looked up in :data:`sys.modules` and never imported: an
application that has not imported ``requests`` cannot be raising its errors.
"""

from __future__ import annotations

import datetime
import email.utils
import math
import sys

from hystrixpy import _log, clock
from hystrixpy.events import FailureType
from hystrixpy.exceptions import BadRequestError, HystrixRuntimeError, ShortCircuitedError

__all__ = ["RETRYABLE_STATUSES", "is_transient", "retry_after_ms", "status_of"]

#: HTTP statuses worth another attempt: timeout, too many requests, and the server-side
#: failures that usually pass (internal error, bad gateway, unavailable, gateway timeout).
RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
#: Statuses whose ``Retry-After`` header is honoured.
_RETRY_AFTER_STATUSES = frozenset({429, 503})
_RETRYABLE_FAILURES = frozenset(
    {
        FailureType.TIMEOUT,
        FailureType.REJECTED_THREAD_EXECUTION,
        FailureType.REJECTED_SEMAPHORE_EXECUTION,
    }
)
# How deep to follow HystrixRuntimeError causes (nested commands) before giving up.
_MAX_CAUSE_DEPTH = 8

# (module, names of its transient error classes), for libraries the application imported.
_LIBRARY_ERRORS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("requests.exceptions", ("ConnectionError", "Timeout")),
    ("httpx", ("TimeoutException", "NetworkError")),
    ("urllib3.exceptions", ("TimeoutError", "NewConnectionError", "ProtocolError")),
)
# Connection errors that will not heal by themselves: a certificate that does not verify.
_LIBRARY_PERMANENT: tuple[tuple[str, str], ...] = (("requests.exceptions", "SSLError"),)


def is_transient(error: BaseException) -> bool:
    """Whether ``error`` is likely to pass if the call is made again (the default test).

    Retried: :class:`ConnectionError` and :class:`TimeoutError` (including
    ``socket.timeout`` and hystrixpy's :class:`~hystrixpy.CommandTimeoutError`);
    the connection and timeout errors of ``requests``, ``httpx`` and ``urllib3``;
    errors carrying an HTTP status (``status``, ``status_code`` or
    ``response.status_code``) of 408, 429, 500, 502, 503 or 504; a
    :class:`~hystrixpy.HystrixRuntimeError` that timed out or was rejected by a
    bulkhead (for a ``COMMAND_EXCEPTION``, its ``__cause__`` decides).

    Never retried: anything that is not an :class:`Exception` (``KeyboardInterrupt``,
    ``SystemExit``), :class:`~hystrixpy.BadRequestError`, an open circuit
    (:class:`~hystrixpy.ShortCircuitedError`, a ``SHORTCIRCUIT`` failure), any
    other HTTP status, and every other error.
    """
    return _classify(error, 0)


def _classify(error: BaseException, depth: int) -> bool:
    if not isinstance(error, Exception):
        return False
    if isinstance(error, (ShortCircuitedError, BadRequestError)):
        return False
    if isinstance(error, HystrixRuntimeError):
        if error.failure_type in _RETRYABLE_FAILURES:
            return True
        cause = error.__cause__
        if error.failure_type is FailureType.COMMAND_EXCEPTION and cause is not None:
            return depth < _MAX_CAUSE_DEPTH and _classify(cause, depth + 1)
        return False
    status = status_of(error)
    if status is not None:
        return status in RETRYABLE_STATUSES
    if isinstance(error, (ConnectionError, TimeoutError)):
        return True
    return _is_library_transient(error)


def _is_library_transient(error: Exception) -> bool:
    modules = sys.modules
    for module_name, class_name in _LIBRARY_PERMANENT:
        if isinstance(error, _classes(modules.get(module_name), (class_name,))):
            return False
    for module_name, class_names in _LIBRARY_ERRORS:
        if isinstance(error, _classes(modules.get(module_name), class_names)):
            return True
    urllib_error = modules.get("urllib.error")
    if urllib_error is not None and isinstance(error, urllib_error.URLError):
        # urlopen() wraps the socket's error (refused, reset, timed out) as its reason.
        reason = error.reason
        return isinstance(reason, BaseException) and _classify(reason, _MAX_CAUSE_DEPTH)
    return False


def _classes(module: object, names: tuple[str, ...]) -> tuple[type, ...]:
    """The classes named ``names`` in ``module`` (none if it is not imported, or half-imported)."""
    found = (getattr(module, name, None) for name in names)
    return tuple(each for each in found if isinstance(each, type))


def status_of(error: BaseException) -> int | None:
    """The HTTP status ``error`` carries (``status``, ``status_code``, ``response.status_code``)."""
    for holder, name in ((error, "status"), (error, "status_code")):
        status = getattr(holder, name, None)
        if isinstance(status, int) and not isinstance(status, bool):
            return status
    response = getattr(error, "response", None)
    status = getattr(response, "status_code", None)
    if isinstance(status, int) and not isinstance(status, bool):
        return status
    return None


def retry_after_ms(error: BaseException) -> float | None:
    """How long a 429 or 503 ``error`` asks the caller to wait, in ms (``None``: not said).

    The ``Retry-After`` header is read from ``error.headers`` or
    ``error.response.headers``, as seconds or as an HTTP date (compared with
    hystrixpy's wall clock; a date already past means no wait).
    """
    if status_of(error) not in _RETRY_AFTER_STATUSES:
        return None
    value = _retry_after_header(error)
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    if not isinstance(value, str):
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        return _ms_until_date(text)
    if not math.isfinite(seconds) or seconds < 0:
        _log.debug("retry_after_unreadable", retry_after=text)
        return None
    return seconds * 1000.0


def _retry_after_header(error: BaseException) -> object:
    for holder in (error, getattr(error, "response", None)):
        get = getattr(getattr(holder, "headers", None), "get", None)
        if callable(get):
            found = get("Retry-After")
            if found is None:
                found = get("retry-after")
            if found is not None:
                return found
    return None


def _ms_until_date(text: str) -> float | None:
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError) as unreadable:
        _log.debug("retry_after_unreadable", retry_after=text, error=repr(unreadable))
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    left = when.timestamp() - clock.wall_time()
    return left * 1000.0 if left > 0 else 0.0
