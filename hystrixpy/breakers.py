"""Circuit breakers without commands: guard any call, and the registry that names them.

::

    from hystrixpy import breakers
    from hystrixpy.exceptions import CircuitBreakerError

    breaker = breakers.get_or_create("external-api", failure_threshold=5)
    value = breaker.call(fetch, url)      # CircuitBreakerError while the circuit is open

    @breakers.protect("external-api", failure_threshold=5)
    def fetch(url: str) -> bytes: ...

A :class:`Breaker` is made of the command engine's own parts: a
:class:`~hystrixpy.metrics.CommandMetrics` (rolling counts, health, latency
percentiles), the shared :class:`~hystrixpy.circuit_breaker.CircuitBreaker`
state machine, and the :class:`~hystrixpy.properties.CommandProperties` its
options stand for. So it shows in the metrics stream and in Prometheus as a
command of the group ``breakers`` (or its ``group`` option).

This module is the registry of breakers by name: :func:`get_or_create`,
:func:`get`, :func:`all_stats`, :func:`reset_all`, and :func:`clear`, which
:func:`hystrixpy.reset` calls. See ``docs/breakers.md``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, Protocol, TypeVar, overload

from hystrixpy._breaker_config import BreakerConfig, BreakerOptions
from hystrixpy._breaker_core import Breaker
from hystrixpy._breaker_view import BreakerStats, BreakerView, Monitored
from hystrixpy.circuit_breaker import CircuitState

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = [
    "Breaker",
    "BreakerConfig",
    "BreakerOptions",
    "BreakerStats",
    "BreakerView",
    "CircuitState",
    "Monitored",
    "ProtectedFunction",
    "all_stats",
    "clear",
    "get",
    "get_or_create",
    "monitored",
    "protect",
    "registered",
    "reset_all",
]

P = ParamSpec("P")
Q = ParamSpec("Q")
R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)
S = TypeVar("S")


class ProtectedFunction(Protocol[P, R_co]):
    """What :func:`protect` makes of a function: call it through its breaker."""

    @property
    def breaker(self) -> Breaker:
        """The breaker guarding the function."""

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R_co:
        """Call the function through the breaker."""

    @overload
    def __get__(self, instance: None, owner: type[Any]) -> ProtectedFunction[P, R_co]: ...

    @overload
    def __get__(
        self: ProtectedFunction[Concatenate[S, Q], R_co], instance: S, owner: type[Any]
    ) -> ProtectedFunction[Q, R_co]: ...

    def __get__(self, instance: Any, owner: type[Any]) -> Any:
        """Bind to an instance, as a method does."""


# -- the registry -------------------------------------------------------------

_lock = threading.Lock()
_breakers: dict[str, Breaker] = {}


def get_or_create(name: str, **options: Unpack[BreakerOptions]) -> Breaker:
    """The breaker named ``name``, made with ``options`` if there is none yet.

    Asking again with the same options returns the same breaker; with other
    options it raises ``ValueError`` naming the first that differs. An unknown
    option raises ``TypeError``, a bad value ``ValueError``.
    """
    return _registered(name, BreakerConfig.of(**options))


def _registered(name: str, config: BreakerConfig) -> Breaker:
    found = _breakers.get(name)
    if found is None:
        made = Breaker(name, config)
        with _lock:
            found = _breakers.setdefault(name, made)
        if found is made:
            return made
    differing = config.difference(found.config)
    if differing is not None:
        raise ValueError(
            f"circuit breaker {name!r} already exists with {differing}="
            f"{getattr(found.config, differing)!r}; asked for {differing}="
            f"{getattr(config, differing)!r} (one name, one set of options)"
        )
    return found


def get(name: str) -> Breaker:
    """The registered breaker named ``name``; ``KeyError`` naming it if there is none."""
    found = _breakers.get(name)
    if found is None:
        raise KeyError(
            f"no circuit breaker named {name!r}; make it with "
            f"hystrixpy.breakers.get_or_create({name!r}, ...)"
        )
    return found


def registered() -> list[Breaker]:
    """Every registered breaker, in the order they were made."""
    return list(_breakers.values())


def monitored() -> list[BreakerView]:
    """Every registered breaker as monitoring sees it (for the stream and Prometheus)."""
    return [breaker.view for breaker in list(_breakers.values())]


def all_stats() -> dict[str, BreakerStats]:
    """:meth:`Breaker.stats` of every registered breaker, by name."""
    return {breaker.name: breaker.stats() for breaker in registered()}


def reset_all() -> None:
    """:meth:`Breaker.reset` every registered breaker."""
    for breaker in registered():
        breaker.reset()


def clear() -> None:
    """Forget every registered breaker, shutting their timeout pools down.

    :func:`hystrixpy.reset` calls it. A function decorated with :func:`protect`
    makes its breaker again at its next call.
    """
    with _lock:
        forgotten = list(_breakers.values())
        _breakers.clear()
    for breaker in forgotten:
        breaker.shutdown()


def protect(
    name: str, **options: Unpack[BreakerOptions]
) -> Callable[[Callable[P, R]], ProtectedFunction[P, R]]:
    """Decorate a function (or method) so every call goes through the breaker ``name``.

    The breaker is made (or found, with the same options) when the decorator
    is applied, so a bad option fails then. The wrapper keeps the function's
    name, docstring and signature, and exposes the breaker as ``.breaker``.
    """
    config = BreakerConfig.of(**options)
    _registered(name, config)
    from hystrixpy._breaker_decorator import protected  # noqa: PLC0415 - wrapt costs ~50 ms

    def decorate(function: Callable[P, R]) -> ProtectedFunction[P, R]:
        wrapper: ProtectedFunction[P, R] = protected(
            function, name, config, _breakers.get, _registered
        )
        return wrapper

    return decorate


def _after_fork_in_child() -> None:
    """A new registry lock in the child (a parent's thread may have held it at the fork).

    The breakers stay registered (the application holds them); each renews its
    own locks (see ``hystrixpy._breaker_core``).
    """
    global _lock
    _lock = threading.Lock()


if hasattr(os, "register_at_fork"):  # pragma: no branch - every POSIX Python has it
    os.register_at_fork(after_in_child=_after_fork_in_child)
