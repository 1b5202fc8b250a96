"""One call of a standalone breaker with a request timeout: the task its pool runs.

The caller hands a :class:`TimedCall` to the breaker's
:class:`~hystrixpy.bulkhead.ThreadPoolBulkhead` and waits on :attr:`TimedCall.done`
with hystrixpy's clock until the deadline. Exactly one of the worker and the
deadline settles the call: each tries to take the single claim token, and the
loser stands aside. A worker that loses (it finished after the deadline)
drops its result.
"""

from __future__ import annotations

import contextvars
import math
import threading
from collections.abc import Callable
from typing import Any

from hystrixpy import _log, clock
from hystrixpy.deadline import CURRENT as _CURRENT_DEADLINE
from hystrixpy.exceptions import RejectedError
from hystrixpy.metrics import CommandMetrics

__all__ = ["PoolShutDownError", "TimedCall"]


class PoolShutDownError(RejectedError):
    """The breaker's timeout pool was shut down before it could start the call."""


class TimedCall:
    """A call run on a worker, in a copy of the caller's context, by a deadline.

    The copied context carries the deadline as :mod:`hystrixpy.deadline`'s
    current one (or an enclosing deadline, if nearer), so what the call does,
    a retry say, can see how long it has.
    """

    __slots__ = (
        "_claim",
        "args",
        "breaker_name",
        "concurrency",
        "context",
        "done",
        "execution_ms",
        "fn",
        "kwargs",
        "metrics",
        "outcome",
    )

    def __init__(
        self,
        breaker_name: str,
        metrics: CommandMetrics,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        deadline: float,
    ) -> None:
        self.breaker_name = breaker_name
        self.metrics = metrics
        self.fn = fn
        self.args = args
        self.kwargs = kwargs
        self.context = contextvars.copy_context()
        enclosing = _CURRENT_DEADLINE.get()
        if enclosing is None or deadline < enclosing:
            self.context.run(_CURRENT_DEADLINE.set, deadline)
        #: Released once the outcome is ready for the caller.
        self.done = threading.Lock()
        self.done.acquire()
        self._claim: list[None] = [None]
        #: What the call returned or raised: (value, None) or (None, error).
        self.outcome: tuple[Any, BaseException | None] = (None, None)
        #: How many calls of the breaker ran at once with this one (0 until it starts).
        self.concurrency = 0
        #: The call's own time on the worker, in whole ms (-1 until it finishes).
        self.execution_ms = -1

    def claim(self) -> bool:
        """Take the right to settle this call; only the first to ask gets it."""
        try:
            self._claim.pop()
        except IndexError:
            return False
        return True

    def __call__(self) -> None:
        """Run the call on a worker thread and hand its outcome over, unless the deadline won."""
        if not self._claim:
            return  # settled before it started
        metrics = self.metrics
        start = clock.monotonic()
        self.concurrency = metrics.run_started(start)
        error: BaseException | None = None
        value: Any = None
        try:
            value = self.context.run(self.fn, *self.args, **self.kwargs)
        except BaseException as raised:  # handed to the caller below
            error = raised
        end = clock.monotonic()
        metrics.run_finished()
        if not self.claim():
            _log.debug("late_result_dropped", breaker=self.breaker_name)
            return
        self.execution_ms = math.floor((end - start) * 1000.0 + 0.5)
        self.outcome = (value, error)
        self.done.release()

    def cancel(self) -> None:
        """The pool was shut down before the call started: the caller gets a rejection."""
        if self.claim():
            message = f"breaker {self.breaker_name!r}: its timeout pool was shut down"
            self.outcome = (None, PoolShutDownError(message))
            self.done.release()
