"""The circuit breaker, one per command key, in Hystrix's (1.5.12+) algorithm.

* CLOSED: requests pass. The breaker trips to OPEN when, over the rolling
  window, at least ``circuit_breaker_request_volume_threshold`` requests were
  seen and at least ``circuit_breaker_error_threshold_percentage`` percent of
  them failed. It checks after every failure, and otherwise at least every
  ``metrics_health_snapshot_interval_ms`` (errors can grow as a window's
  successes age out of it).
* OPEN: every request is short-circuited. Once the sleep window has passed,
  the first execution to ask becomes the single trial (HALF_OPEN).
* HALF_OPEN: every other request is short-circuited while the trial runs.
  Its success closes the circuit and starts the health counts afresh; any
  other outcome re-opens it for a new sleep window.

``circuit_breaker_force_open`` short-circuits everything and wins over
``circuit_breaker_force_closed``, which never opens. With
``circuit_breaker_enabled`` off, a :class:`NoOpCircuitBreaker` stands in.

Reading :meth:`CircuitBreaker.is_open`, :meth:`~CircuitBreaker.allow_request`
or :attr:`~CircuitBreaker.state` applies a trip that is already due, but only
an execution moves OPEN to HALF_OPEN.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Callable

from hystrixpy import clock
from hystrixpy.metrics import CommandMetrics, HealthCounts
from hystrixpy.properties import CommandProperties

__all__ = [
    "ALLOWED",
    "DENIED",
    "TRIAL",
    "CircuitBreaker",
    "CircuitState",
    "NoOpCircuitBreaker",
]

#: What :meth:`CircuitBreaker.attempt_execution` answers: run, short-circuit, or run as the trial.
ALLOWED, DENIED, TRIAL = 0, 1, 2

_NORMAL, _FORCED_OPEN, _FORCED_CLOSED = 0, 1, 2


class CircuitState(enum.Enum):
    """The breaker's state."""

    CLOSED = "CLOSED"
    OPEN = "OPEN"
    HALF_OPEN = "HALF_OPEN"


TransitionListener = Callable[[str, CircuitState, CircuitState], None]
_CLOSED, _OPEN, _HALF_OPEN = CircuitState.CLOSED, CircuitState.OPEN, CircuitState.HALF_OPEN
_FOREVER = float("inf")


class CircuitBreaker:
    """The breaker of one command key, fed by that key's :class:`CommandMetrics`."""

    def __init__(
        self,
        command_key: str,
        metrics: CommandMetrics,
        properties: CommandProperties,
        listener: TransitionListener | None = None,
    ) -> None:
        self.command_key = command_key
        self._metrics = metrics
        self._listener = listener
        self._lock = threading.Lock()
        self._state = _CLOSED
        self._opened_at = 0.0
        self._next_health_check = 0.0
        #: An execution starting before this time is ALLOWED without asking (the closed
        #: breaker's fast path): the next health check while closed, -inf while not.
        self.allow_until = 0.0
        #: An execution starting before this time is DENIED without asking (the open
        #: breaker's fast path): the end of the sleep window while open, -inf when it
        #: must ask, and forever while forced open or half-open with its trial out.
        self.deny_until = float("-inf")
        self._mode = _NORMAL
        self._sleep_window = 0.0
        self._volume_threshold = 0
        self._error_threshold = 0
        self._health_interval = 0.0
        self.reconfigure(properties)

    def reconfigure(self, properties: CommandProperties) -> None:
        """Adopt changed properties; they apply from the next execution."""
        if properties.circuit_breaker_force_open:
            self._mode = _FORCED_OPEN
        elif properties.circuit_breaker_force_closed:
            self._mode = _FORCED_CLOSED
        else:
            self._mode = _NORMAL
        self._sleep_window = properties.circuit_breaker_sleep_window_ms / 1000.0
        self._volume_threshold = properties.circuit_breaker_request_volume_threshold
        self._error_threshold = properties.circuit_breaker_error_threshold_percentage
        self._health_interval = properties.metrics_health_snapshot_interval_ms / 1000.0
        self._next_health_check = 0.0
        if self._mode == _FORCED_CLOSED:
            self.allow_until = _FOREVER
        else:
            self.allow_until = float("-inf")  # ask attempt_execution() from now on
        self.deny_until = _FOREVER if self._mode == _FORCED_OPEN else float("-inf")

    # -- the execution path --------------------------------------------------

    def attempt_execution(self, now: float) -> int:
        """Decide for one execution: ``ALLOWED``, ``DENIED`` (short-circuit) or ``TRIAL``."""
        if self._mode == _NORMAL:
            if self._state is _CLOSED and (
                now < self._next_health_check or not self._trip_if_due(now)
            ):
                return ALLOWED
            return self._attempt_while_open(now)
        return DENIED if self._mode == _FORCED_OPEN else ALLOWED

    def _attempt_while_open(self, now: float) -> int:
        if self._state is _OPEN and now - self._opened_at >= self._sleep_window:
            with self._lock:
                if self._state is _OPEN and now - self._opened_at >= self._sleep_window:
                    self._state = _HALF_OPEN
                    self.allow_until = float("-inf")
                    self.deny_until = _FOREVER  # until the trial's outcome
                    won = True
                else:
                    won = False
            if won:
                self._notify(_OPEN, _HALF_OPEN)
                return TRIAL
        return DENIED

    def on_result(self, succeeded: bool, health_error: bool, trial: bool, now: float) -> None:
        """Learn one execution's outcome: a trial closes or re-opens; an error may trip."""
        if trial:
            if succeeded:
                self._metrics.reset_health()
                self._move(_HALF_OPEN, _CLOSED, now)
            else:
                self._move(_HALF_OPEN, _OPEN, now)
        elif health_error and self._state is _CLOSED and self._mode == _NORMAL:
            self._trip_if_due(now)

    def _trip_if_due(self, now: float, health: HealthCounts | None = None) -> bool:
        """Open the circuit if the health counts call for it; return whether it is now open.

        The counts are read now unless ``health`` holds them.
        """
        next_check = self._next_health_check = now + self._health_interval
        if health is None:
            health = self._metrics.health_counts(now)
        if (
            health.total_requests >= self._volume_threshold
            and health.error_percentage >= self._error_threshold
        ):
            self._move(_CLOSED, _OPEN, now)
        if self._state is not _CLOSED:
            return True
        if self._mode == _NORMAL:
            with self._lock:  # so a trip by another thread cannot be overwritten
                if self._state is _CLOSED:
                    self.allow_until = next_check
        return False

    def _move(self, old: CircuitState, new: CircuitState, now: float) -> None:
        with self._lock:
            if self._state is not old:
                return
            self._state = new
            if new is _OPEN:
                self._opened_at = now
                self.deny_until = now + self._sleep_window
            else:
                self.deny_until = float("-inf")
            # Closed again: the next execution asks (and checks the health counts).
            self.allow_until = float("-inf")
        self._notify(old, new)

    def _notify(self, old: CircuitState, new: CircuitState) -> None:
        if self._listener is not None:
            self._listener(self.command_key, old, new)

    # -- reading -------------------------------------------------------------

    @property
    def state(self) -> CircuitState:
        """The state now (a forced-open breaker reads OPEN, a forced-closed one CLOSED)."""
        if self._mode == _FORCED_OPEN:
            return _OPEN
        if self._mode == _FORCED_CLOSED:
            return _CLOSED
        if self._state is _CLOSED:
            self._trip_if_due(clock.monotonic())
        return self._state

    def is_open(self) -> bool:
        """Whether requests are being short-circuited (OPEN or HALF_OPEN)."""
        return self.state is not _CLOSED

    def is_open_given(self, health: HealthCounts) -> bool:
        """:meth:`is_open`, judging a due trip by ``health``.

        ``health`` is this key's health counts, just read (as a metrics snapshot
        holds them), so that they are not read twice.
        """
        if self._mode == _FORCED_OPEN:
            return True
        if self._mode == _FORCED_CLOSED:
            return False
        if self._state is _CLOSED:
            return self._trip_if_due(clock.monotonic(), health)
        return True

    def allow_request(self) -> bool:
        """Whether a request made now would be let through (without taking the trial)."""
        state = self.state
        if state is _CLOSED:
            return True
        if state is _HALF_OPEN or self._mode == _FORCED_OPEN:
            return False
        return clock.monotonic() - self._opened_at >= self._sleep_window

    def __repr__(self) -> str:
        return f"CircuitBreaker({self.command_key!r}, {self._state.name})"


class NoOpCircuitBreaker:
    """Stands in when ``circuit_breaker_enabled`` is off: always closed, lets everything through."""

    state = CircuitState.CLOSED
    #: Every execution is allowed without asking.
    allow_until = float("inf")
    #: No execution is denied.
    deny_until = float("-inf")

    def __init__(self, command_key: str) -> None:
        self.command_key = command_key

    def reconfigure(self, properties: CommandProperties) -> None:
        """Nothing to adopt."""

    def attempt_execution(self, now: float) -> int:
        """Always ``ALLOWED``."""
        return ALLOWED

    def on_result(self, succeeded: bool, health_error: bool, trial: bool, now: float) -> None:
        """Ignore outcomes."""

    def is_open(self) -> bool:
        """Never open."""
        return False

    def is_open_given(self, health: HealthCounts) -> bool:
        """Never open."""
        return False

    def allow_request(self) -> bool:
        """Always allows."""
        return True

    def __repr__(self) -> str:
        return f"NoOpCircuitBreaker({self.command_key!r})"
