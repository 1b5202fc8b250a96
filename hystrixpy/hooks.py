"""Execution hooks: be told what every command does, as it happens.

Register an object with any of :class:`ExecutionHook`'s methods (subclass
it, or write the ones you need), or a plain callable that takes a
:class:`HookEvent`::

    class Timing(hystrixpy.ExecutionHook):
        def on_error(self, command, failure_type, error):
            statsd.incr(f"{command.command_key}.{failure_type.name}")

    hystrixpy.register_hook(Timing())
    hystrixpy.register_hook(lambda event: print(event.kind, event.command_key))

Hooks run on the thread where the step happens (the caller's, a pool worker's
or a deadline worker's), always in the command's context (its ``contextvars``). A hook
that raises an ``Exception`` is logged (``hook_failed``) and never breaks the
command; ``KeyboardInterrupt`` and ``SystemExit`` still propagate. With no hook
registered, executions pay one attribute read.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hystrixpy import _log
from hystrixpy.circuit_breaker import CircuitState
from hystrixpy.events import EventType, FailureType

if TYPE_CHECKING:
    from hystrixpy.command import Command

__all__ = ["HOOK_METHODS", "ExecutionHook", "HookEvent", "HookRegistry"]

#: The notifications, by method name.
HOOK_METHODS = (
    "on_start",
    "on_success",
    "on_error",
    "on_fallback_start",
    "on_fallback_success",
    "on_fallback_error",
    "on_circuit_state_change",
    "on_event",
)


class ExecutionHook:
    """A hook's notifications; each does nothing until overridden."""

    def on_start(self, command: Command[Any]) -> None:
        """An execution began (before the circuit breaker is asked)."""

    def on_success(self, command: Command[Any]) -> None:
        """run() returned a value in time."""

    def on_error(
        self, command: Command[Any], failure_type: FailureType, error: BaseException
    ) -> None:
        """run() gave no value: it raised, timed out, was rejected or short-circuited."""

    def on_fallback_start(self, command: Command[Any]) -> None:
        """get_fallback() is about to be called."""

    def on_fallback_success(self, command: Command[Any]) -> None:
        """get_fallback() returned a value."""

    def on_fallback_error(self, command: Command[Any], error: BaseException) -> None:
        """get_fallback() raised."""

    def on_circuit_state_change(
        self, command_key: str, old: CircuitState, new: CircuitState
    ) -> None:
        """A circuit breaker moved from ``old`` to ``new``."""

    def on_event(self, command: Command[Any], event: EventType) -> None:
        """An event was recorded for ``command`` (each of its execution events, in order)."""


@dataclass(frozen=True, slots=True)
class HookEvent:
    """One notification, as a plain callable hook receives it.

    ``kind`` is the method name (``"on_error"``, ...); the other fields are set
    where they apply.
    """

    kind: str
    command_key: str
    command: Command[Any] | None = None
    failure_type: FailureType | None = None
    error: BaseException | None = None
    event: EventType | None = None
    old_state: CircuitState | None = None
    new_state: CircuitState | None = None


class _CallableHook(ExecutionHook):
    """Adapts a plain callable to the hook methods."""

    def __init__(self, function: Callable[[HookEvent], object]) -> None:
        self.function = function

    def __repr__(self) -> str:
        return f"<hook {self.function!r}>"

    def on_start(self, command: Command[Any]) -> None:
        self.function(HookEvent("on_start", command.command_key, command))

    def on_success(self, command: Command[Any]) -> None:
        self.function(HookEvent("on_success", command.command_key, command))

    def on_error(
        self, command: Command[Any], failure_type: FailureType, error: BaseException
    ) -> None:
        self.function(HookEvent("on_error", command.command_key, command, failure_type, error))

    def on_fallback_start(self, command: Command[Any]) -> None:
        self.function(HookEvent("on_fallback_start", command.command_key, command))

    def on_fallback_success(self, command: Command[Any]) -> None:
        self.function(HookEvent("on_fallback_success", command.command_key, command))

    def on_fallback_error(self, command: Command[Any], error: BaseException) -> None:
        self.function(HookEvent("on_fallback_error", command.command_key, command, error=error))

    def on_circuit_state_change(
        self, command_key: str, old: CircuitState, new: CircuitState
    ) -> None:
        self.function(
            HookEvent("on_circuit_state_change", command_key, old_state=old, new_state=new)
        )

    def on_event(self, command: Command[Any], event: EventType) -> None:
        self.function(HookEvent("on_event", command.command_key, command, event=event))


class HookRegistry:
    """The registered hooks; ``active`` is false when there are none (the fast path)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._hooks: tuple[tuple[object, object], ...] = ()
        self.active = False

    def register(self, hook: object) -> object:
        """Add ``hook`` (an object with hook methods, or a callable); return it for unregister."""
        if not any(callable(getattr(hook, name, None)) for name in HOOK_METHODS):
            if not callable(hook):
                raise TypeError(
                    f"a hook must be callable or have one of {', '.join(HOOK_METHODS)}; "
                    f"got {hook!r}"
                )
            target: object = _CallableHook(hook)
        else:
            target = hook
        with self._lock:
            self._hooks = (*self._hooks, (hook, target))
            self.active = True
        return hook

    def unregister(self, hook: object) -> None:
        """Remove ``hook``; ``ValueError`` if it was not registered."""
        with self._lock:
            # By equality: unregister_hook(obj.method) undoes register_hook(obj.method).
            remaining = tuple(pair for pair in self._hooks if pair[0] != hook)
            if len(remaining) == len(self._hooks):
                raise ValueError(f"{hook!r} is not a registered hook")
            self._hooks = remaining
            self.active = bool(remaining)

    def clear(self) -> None:
        """Remove every hook."""
        with self._lock:
            self._hooks = ()
            self.active = False

    def notify(self, method: str, *args: Any) -> None:
        """Call ``method`` on every hook that has it; a hook's ``Exception`` is logged."""
        for hook, target in self._hooks:
            function = getattr(target, method, None)
            if function is None:
                continue
            try:
                function(*args)
            except Exception as error:
                _log.error("hook_failed", hook=repr(hook), notification=method, error=repr(error))
