"""Helpers for tests with threads: a gate that holds a run() until the test opens it, and a
caller on a thread of its own."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

Behaviour = Callable[[Any], str]
T = TypeVar("T")


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


class Caller(Generic[T]):
    """Calls ``call`` on a thread of its own and keeps what it returned or raised."""

    def __init__(self, call: Callable[[], T]) -> None:
        self._call = call
        self._value: T | None = None
        self._error: BaseException | None = None
        self.thread = threading.Thread(target=self._main, daemon=True)
        self.thread.start()

    def _main(self) -> None:
        try:
            self._value = self._call()
        except BaseException as error:  # handed to the test by outcome()
            self._error = error

    def outcome(self) -> T:
        """Wait (at most 5 s) for the call and return its value or raise its error."""
        self.thread.join(5)
        assert not self.thread.is_alive(), "the caller is still blocked"
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]
