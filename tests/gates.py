"""A gate that holds a run() or a get_fallback() on its thread until the test opens it."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

Behaviour = Callable[[Any], str]


def _value(command: Any) -> str:
    return "value"


class Gate:
    """Holds a run() or a get_fallback() until the test opens it."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.opened = threading.Event()

    def hold(self, then: Behaviour = _value) -> Behaviour:
        """A behaviour that signals ``entered``, waits for :meth:`open`, then does ``then``."""

        def behaviour(command: Any) -> str:
            self.entered.set()
            if not self.opened.wait(5):
                raise RuntimeError("the test never opened the gate")
            return then(command)

        return behaviour

    def open(self) -> None:
        self.opened.set()
