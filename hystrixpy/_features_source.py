"""The machinery of :class:`hystrixpy.features.FeatureSwitches`: a source call, checks, reports."""

from __future__ import annotations

import contextvars
import math
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING

from hystrixpy import _log
from hystrixpy.deadline import CURRENT as _CURRENT_DEADLINE
from hystrixpy.exceptions import RejectedError

if TYPE_CHECKING:
    from hystrixpy.features import FeatureSwitches

__all__ = [
    "Report",
    "SourceCall",
    "check_answer",
    "check_number",
    "check_workers",
    "checked_defaults",
    "quiet",
]


class SourceCall:
    """Asking the source about one feature: a task for the pool, and what came of it.

    ``done`` is released once the call is over, whether or not its answer was
    used; ``settled`` tells whether ``value`` is decided (by the answer, or by
    the caller giving up at ``deadline``). The source runs in a copy of the
    asking caller's context, with ``deadline`` as hystrixpy's current deadline.
    """

    __slots__ = ("context", "deadline", "done", "name", "settled", "switches", "value")

    def __init__(self, switches: FeatureSwitches, name: str, deadline: float) -> None:
        self.switches = switches
        self.name = name
        self.deadline = deadline
        self.done = threading.Lock()
        self.done.acquire()
        self.settled = False
        self.value = False
        self.context = contextvars.copy_context()
        self.context.run(_CURRENT_DEADLINE.set, deadline)

    def __call__(self) -> None:
        """Run on a worker of the switches' pool."""
        self.switches._call_source(self)

    def cancel(self) -> None:
        """The pool was shut down before the call started."""
        self.switches._finish(
            self, None, RejectedError("the feature source pool was shut down before the call")
        )


def check_answer(name: str, answer: object) -> TypeError | None:
    """The error of an answer that is not ``True``, ``False`` or ``None``, if it is not."""
    if answer is None or answer is True or answer is False:
        return None
    return TypeError(
        f"the feature source answered {answer!r} for {name!r}: expected True, False or None"
    )


class Report:
    """A log event to emit once the switches' lock is released."""

    __slots__ = ("event", "fields")

    def __init__(self, event: str, **fields: object) -> None:
        self.event = event
        self.fields = fields

    def __call__(self) -> None:
        """Emit it: an outage starting is a WARNING, anything else INFO."""
        if self.event == "feature_source_failed":
            _log.warning(self.event, **self.fields)
        else:
            _log.info(self.event, **self.fields)


def quiet() -> None:
    """Nothing to report."""


def checked_defaults(safe_defaults: Mapping[str, bool] | None) -> dict[str, bool]:
    """A copy of ``safe_defaults``, each key a str and each value a bool."""
    if safe_defaults is None:
        return {}
    if not isinstance(safe_defaults, Mapping):
        raise TypeError(f"FeatureSwitches safe_defaults must be a mapping, got {safe_defaults!r}")
    for name, value in safe_defaults.items():
        if not isinstance(name, str):
            raise TypeError(f"FeatureSwitches safe_defaults keys must be str, got {name!r}")
        if not isinstance(value, bool):
            raise TypeError(
                f"FeatureSwitches safe_defaults[{name!r}] must be True or False, got {value!r}"
            )
    return dict(safe_defaults)


def check_number(option: str, value: object, *, strictly_positive: bool) -> None:
    """Refuse a ``value`` for ``option`` that is not a finite number >= 0 (> 0 if strictly)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"FeatureSwitches {option} must be a number, got {value!r}")
    if not math.isfinite(value) or value < 0 or (strictly_positive and value == 0):
        bound = "> 0" if strictly_positive else ">= 0"
        raise ValueError(f"FeatureSwitches {option} must be finite and {bound}, got {value!r}")


def check_workers(value: object) -> None:
    """Refuse a ``source_workers`` that is not an int >= 1."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"FeatureSwitches source_workers must be an int, got {value!r}")
    if value < 1:
        raise ValueError(f"FeatureSwitches source_workers must be >= 1, got {value!r}")
