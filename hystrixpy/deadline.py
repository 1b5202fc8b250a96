"""The deadline of the command whose ``run()`` is executing, for the code it calls.

The engine sets it in the context ``run()`` executes in (on a pool worker or
on the caller's thread), so anything called from ``run()`` can ask how long
is left, and give up in time::

    from hystrixpy import deadline

    left = deadline.remaining()  # seconds, or None outside a command with a timeout

:func:`hystrixpy.retry` reads it, so a retry inside ``run()`` never sleeps
past the command's deadline. :func:`within` sets one for a block of code
outside any command (the nearer of it and an enclosing deadline applies).
Times are on hystrixpy's clock (:mod:`hystrixpy.clock`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from hystrixpy import clock

__all__ = ["current", "remaining", "within"]

#: The monotonic time (hystrixpy's clock) by which the current work must be done, if any.
#: The engine sets it in the copied context that run() executes in.
CURRENT: ContextVar[float | None] = ContextVar("hystrixpy_deadline", default=None)


def current() -> float | None:
    """The current deadline in monotonic seconds, or ``None`` when there is none."""
    return CURRENT.get()


def remaining() -> float | None:
    """Seconds left before the current deadline (0.0 once passed), ``None`` without one."""
    found = CURRENT.get()
    if found is None:
        return None
    left = found - clock.monotonic()
    return left if left > 0.0 else 0.0


@contextmanager
def within(seconds: float) -> Iterator[float]:
    """Give the block a deadline ``seconds`` from now (or the enclosing one, if nearer).

    Yields the deadline in force, in monotonic seconds.
    """
    if seconds < 0:
        raise ValueError(f"seconds must be >= 0, got {seconds!r}")
    chosen = clock.monotonic() + seconds
    enclosing = CURRENT.get()
    if enclosing is not None and enclosing < chosen:
        chosen = enclosing
    token = CURRENT.set(chosen)
    try:
        yield chosen
    finally:
        CURRENT.reset(token)
