"""Where hystrixpy's log events go.

hystrixpy never configures structlog or :mod:`logging`. Each event is sent:

* through structlog's own pipeline, as a structured event, when the
  application has configured structlog (``structlog.is_configured()``);
* otherwise to the standard :mod:`logging` logger ``hystrixpy``, as a
  ``key=value`` message with the fields also in the record's ``extra``. An
  application that configured no logging at all sees only warnings and
  errors, on stderr, through Python's last-resort handler; routine events
  (timeouts, rejections) are logged at INFO and stay silent.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

__all__ = [
    "LOGGER_NAME",
    "debug",
    "debug_enabled",
    "error",
    "forget_cached_levels",
    "info",
    "warning",
]

LOGGER_NAME = "hystrixpy"
_stdlib_logger = logging.getLogger(LOGGER_NAME)
_METHOD_NAMES = {
    logging.DEBUG: "debug",
    logging.INFO: "info",
    logging.WARNING: "warning",
    logging.ERROR: "error",
}


def _render(event: str, fields: dict[str, Any]) -> str:
    parts = [event]
    parts.extend(f"{key}={value}" for key, value in fields.items())
    return " ".join(parts)


def _structlog() -> Any:
    """structlog, if the application uses it (imported it); else ``None``.

    hystrixpy imports structlog only when an event is logged, and an application
    that never imported structlog cannot have configured it.
    """
    return sys.modules.get("structlog")


def _emit(level: int, event: str, fields: dict[str, Any]) -> None:
    structlog = _structlog()
    if structlog is not None and structlog.is_configured():
        method = getattr(structlog.get_logger(LOGGER_NAME), _METHOD_NAMES[level])
        method(event, **fields)
        return
    if _stdlib_logger.isEnabledFor(level):
        _stdlib_logger.log(
            level,
            _render(event, fields),
            extra={"hystrixpy_event": event, "hystrixpy": fields},
        )


def debug(event: str, /, **fields: Any) -> None:
    """Log a DEBUG event."""
    _emit(logging.DEBUG, event, fields)


def info(event: str, /, **fields: Any) -> None:
    """Log an INFO event (routine: timeouts, rejections, ignored settings)."""
    _emit(logging.INFO, event, fields)


def warning(event: str, /, **fields: Any) -> None:
    """Log a WARNING event (a circuit opened, a fallback failed)."""
    _emit(logging.WARNING, event, fields)


def error(event: str, /, **fields: Any) -> None:
    """Log an ERROR event."""
    _emit(logging.ERROR, event, fields)


class _DebugSwitch:
    """Whether DEBUG events would be seen, re-checked at most once a second of clock time.

    Lets the per-execution debug event cost one comparison when debug logging is off.
    """

    __slots__ = ("checked_at", "enabled", "recheck_at")

    def __init__(self) -> None:
        self.enabled = False
        #: The answer holds for times from ``checked_at`` until ``recheck_at``.
        self.checked_at = float("-inf")
        self.recheck_at = float("-inf")


#: The cached answer of :func:`debug_enabled`; hot paths may read it to skip the call.
debug_switch = _DebugSwitch()
_RECHECK_SECONDS = 1.0


def debug_enabled(now: float) -> bool:
    """Whether hystrixpy's DEBUG events are wanted (as of at most a second ago)."""
    switch = debug_switch
    if switch.checked_at <= now < switch.recheck_at:
        return switch.enabled
    switch.enabled = _debug_wanted()
    switch.checked_at = now
    switch.recheck_at = now + _RECHECK_SECONDS
    return switch.enabled


def forget_cached_levels() -> None:
    """Check the log level afresh at the next :func:`debug_enabled` call."""
    debug_switch.checked_at = debug_switch.recheck_at = float("-inf")


def _debug_wanted() -> bool:
    structlog = _structlog()
    if structlog is None or not structlog.is_configured():
        return _stdlib_logger.isEnabledFor(logging.DEBUG)
    logger = structlog.get_logger(LOGGER_NAME).bind()
    for name in ("is_enabled_for", "isEnabledFor"):
        check = getattr(logger, name, None)
        if callable(check):
            return bool(check(logging.DEBUG))
    return True  # a logger that cannot say: let it decide per event
