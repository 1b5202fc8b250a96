"""How a standalone breaker is read: its stats, and its view for monitoring.

:class:`BreakerView` shows a :class:`~hystrixpy.breakers.Breaker` to the
metrics stream and the Prometheus collector as a command key; both read it
through the :class:`Monitored` protocol, which a command key's state follows too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from hystrixpy.circuit_breaker import CircuitBreaker, CircuitState

if TYPE_CHECKING:
    from hystrixpy._breaker_core import Breaker
    from hystrixpy.circuit_breaker import NoOpCircuitBreaker
    from hystrixpy.metrics import CommandMetrics
    from hystrixpy.properties import CommandProperties

__all__ = ["BreakerStats", "BreakerView", "Monitored"]


class Monitored(Protocol):
    """What the metrics stream and the Prometheus collector read of one key.

    A command key's :class:`~hystrixpy.registry.CommandKeyState` is one, and so
    is a standalone breaker's :class:`BreakerView`.
    """

    @property
    def command_key(self) -> str:
        """The name shown."""

    @property
    def group_key(self) -> str:
        """The group shown."""

    @property
    def thread_pool_key(self) -> str:
        """The pool shown."""

    @property
    def properties(self) -> CommandProperties:
        """The properties shown."""

    @property
    def metrics(self) -> CommandMetrics:
        """Its counts, health and latencies."""

    @property
    def circuit_breaker(self) -> CircuitBreaker | NoOpCircuitBreaker:
        """Its circuit breaker."""

    @property
    def config_version(self) -> int:
        """Changes whenever the properties do (for the stream's cached templates)."""

    @property
    def timeout_ms(self) -> int:
        """The timeout in force, in ms (an adaptive timeout's current value)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class BreakerStats:
    """One reading of a standalone breaker (see :meth:`Breaker.stats`).

    Counts without ``total_`` are over the rolling window; ``total_`` ones since
    the breaker was made or reset. ``failures`` are the calls that counted as
    failures (errors, timeouts, pool rejections); ``ignored_errors`` the errors
    that did not (``exclude``, ``include``, ``is_failure``, ``BadRequestError``);
    ``rejections`` the calls refused because the circuit was open. Times are
    wall-clock seconds since the epoch.
    """

    name: str
    state: CircuitState
    mode: str
    successes: int
    failures: int
    timeouts: int
    ignored_errors: int
    rejections: int
    total_successes: int
    total_failures: int
    total_ignored_errors: int
    total_rejections: int
    consecutive_failures: int
    error_percentage: int
    last_failure: str | None
    last_failure_at: float | None
    opened_at: float | None
    next_attempt_at: float | None
    half_open_calls: int


class BreakerView:
    """A breaker as monitoring sees it: a command key named after it (a :class:`Monitored`)."""

    __slots__ = ("__weakref__", "_breaker")
    config_version = 0  # a breaker's options never change

    def __init__(self, breaker: Breaker) -> None:
        self._breaker = breaker

    @property
    def command_key(self) -> str:
        """The breaker's name."""
        return self._breaker.name

    @property
    def group_key(self) -> str:
        """The breaker's ``group`` option."""
        return self._breaker.config.group

    @property
    def thread_pool_key(self) -> str:
        """The breaker's name (its timeout pool, if it has one)."""
        return self._breaker.name

    @property
    def properties(self) -> CommandProperties:
        """The properties the breaker's options stand for."""
        return self._breaker.properties

    @property
    def metrics(self) -> CommandMetrics:
        """The breaker's metrics."""
        return self._breaker.metrics

    @property
    def circuit_breaker(self) -> CircuitBreaker:
        """The breaker's state machine."""
        return self._breaker.circuit_breaker

    @property
    def timeout_ms(self) -> int:
        """The request timeout the breaker's properties stand for."""
        return self._breaker.properties.execution_timeout_ms

    def __repr__(self) -> str:
        return f"BreakerView({self._breaker.name!r})"
