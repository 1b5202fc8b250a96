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
from typing import Any

import structlog

__all__ = ["LOGGER_NAME", "debug", "error", "info", "warning"]

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


def _emit(level: int, event: str, fields: dict[str, Any]) -> None:
    if structlog.is_configured():
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
