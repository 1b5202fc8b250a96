"""The circuit breaker state machine, shared by commands and standalone breakers.

For a command it follows Hystrix's (1.5.12+) algorithm, and that is what its
options default to:

* CLOSED: requests pass. In the **rolling** mode (a command's) the breaker
  trips to OPEN when, over the rolling window, at least
  ``circuit_breaker_request_volume_threshold`` requests were seen and at
  least ``circuit_breaker_error_threshold_percentage`` percent of them failed.
  It checks after every failure, and otherwise at least every
  ``metrics_health_snapshot_interval_ms`` (errors can grow as a window's
  successes age out of it). In the **consecutive** mode (``failure_threshold``
  given) it trips after that many failures in a row, optionally only when
  they all fell within ``monitoring_period_ms``; any success breaks the run.
* OPEN: every request is short-circuited. Once the sleep window has passed,
  the first execution to ask becomes a trial (HALF_OPEN).
* HALF_OPEN: at most ``half_open_max_calls`` trials (1 for a command) run at
  once; every other request is short-circuited at once. ``success_threshold``
  trial successes (1 for a command) close the circuit and start the counts
  afresh; any trial that does not succeed re-opens it for a new sleep window.

Only a trial's outcome moves a half-open circuit: an execution that began
before the circuit opened and ends while it is half-open counts as an
ordinary outcome. Each ``TRIAL`` answer of :meth:`CircuitBreaker.attempt_execution`
holds a trial permit until its outcome is reported (:meth:`~CircuitBreaker.on_result`
with ``trial=True``) or it is given back without one
(:meth:`~CircuitBreaker.release_trial`).

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
from collections import deque
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

#: What :meth:`CircuitBreaker.attempt_execution` answers: run, short-circuit, or run as a trial.
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
_NEVER = float("-inf")


def _check_at_least(name: str, value: int | None, minimum: int, *, optional: bool) -> None:
    if value is None and optional:
        return
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")


class CircuitBreaker:
    """The breaker of one command key (or standalone breaker), fed by its :class:`CommandMetrics`.

    The keyword options extend Hystrix's algorithm; their defaults are Hystrix's
    behaviour. ``failure_threshold`` selects the consecutive mode (with
    ``monitoring_period_ms``, the failures must fall within that many
    milliseconds, newest to oldest); ``success_threshold`` is how many trial
    successes close a half-open circuit, and ``half_open_max_calls`` how many
    trials may run at once. A bad value raises ``ValueError``.
    """

    def __init__(
        self,
        command_key: str,
        metrics: CommandMetrics,
        properties: CommandProperties,
        listener: TransitionListener | None = None,
        *,
        failure_threshold: int | None = None,
        monitoring_period_ms: int | None = None,
        success_threshold: int = 1,
        half_open_max_calls: int = 1,
    ) -> None:
        _check_at_least("failure_threshold", failure_threshold, 1, optional=True)
        _check_at_least("monitoring_period_ms", monitoring_period_ms, 1, optional=True)
        _check_at_least("success_threshold", success_threshold, 1, optional=False)
        _check_at_least("half_open_max_calls", half_open_max_calls, 1, optional=False)
        if monitoring_period_ms is not None and failure_threshold is None:
            raise ValueError(
                f"monitoring_period_ms={monitoring_period_ms!r} needs failure_threshold "
                "(it applies to the consecutive-failures mode only)"
            )
        self.command_key = command_key
        self._metrics = metrics
        self._listener = listener
        self._lock = threading.Lock()
        self._state = _CLOSED
        self._opened_at = 0.0
        self._next_health_check = 0.0
        #: An execution starting before this time is ALLOWED without asking (the closed
        #: breaker's fast path): the next health check while closed (forever in the
        #: consecutive mode, where only a failure trips), -inf while not closed.
        self.allow_until = _NEVER
        #: An execution starting before this time is DENIED without asking (the open
        #: breaker's fast path): the end of the sleep window while open, -inf when it
        #: must ask, and forever while forced open or half-open with every trial out.
        self.deny_until = _NEVER
        #: Failures reported since the last reported success (or since the circuit
        #: closed). The command engine reports successes only of trials, so for a
        #: command this counts failures since its circuit last closed. A hot path may
        #: read it to skip reporting a success when it is 0.
        self.consecutive_failures = 0
        self._failure_threshold = failure_threshold
        # The consecutive mode: the times of the current run of failures, at most
        # failure_threshold of them (None in the rolling mode).
        self._recent: deque[float] | None = (
            None if failure_threshold is None else deque(maxlen=failure_threshold)
        )
        self._period = None if monitoring_period_ms is None else monitoring_period_ms / 1000.0
        self._success_threshold = success_threshold
        self._max_trials = half_open_max_calls
        self._trials_out = 0  # TRIAL answers whose outcome has not been reported yet
        self._trial_successes = 0  # in the current half-open spell
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
            self.allow_until = _NEVER  # ask attempt_execution() from now on
        self.deny_until = _FOREVER if self._mode == _FORCED_OPEN else _NEVER

    # -- the execution path --------------------------------------------------

    def attempt_execution(self, now: float) -> int:
        """Decide for one execution: ``ALLOWED``, ``DENIED`` (short-circuit) or ``TRIAL``.

        A ``TRIAL`` holds a trial permit until its outcome is reported.
        """
        if self._mode == _NORMAL:
            if self._state is _CLOSED and (
                now < self._next_health_check or not self._trip_if_due(now)
            ):
                return ALLOWED
            return self._attempt_while_open(now)
        return DENIED if self._mode == _FORCED_OPEN else ALLOWED

    def _attempt_while_open(self, now: float) -> int:
        state = self._state
        if state is _OPEN and now - self._opened_at < self._sleep_window:
            return DENIED
        with self._lock:
            state = self._state
            if state is _OPEN and now - self._opened_at >= self._sleep_window:
                self._state = _HALF_OPEN
                self._trial_successes = 0
                moved = True
            elif state is _HALF_OPEN:
                moved = False
            else:  # still sleeping, or closed meanwhile by another thread: safe to deny
                return DENIED
            self.allow_until = _NEVER
            if self._trials_out < self._max_trials:
                self._trials_out += 1
                decision = TRIAL
            else:  # every permit is held (by trials of an earlier half-open spell, too)
                decision = DENIED
            # Until a permit comes back, deny without asking.
            self.deny_until = _FOREVER if self._trials_out >= self._max_trials else _NEVER
        if moved:
            self._notify(_OPEN, _HALF_OPEN)
        return decision

    def on_result(self, succeeded: bool, health_error: bool, trial: bool, now: float) -> None:
        """Learn one execution's outcome: trials close or re-open; errors may trip.

        ``trial`` is whether :meth:`attempt_execution` answered ``TRIAL`` for it.
        A trial that ends after its half-open spell is over counts as an ordinary
        outcome.
        """
        if health_error:
            self.consecutive_failures += 1
        elif succeeded and self.consecutive_failures:
            self.note_success()
        if trial and self._trial_finished(succeeded, now):
            return
        if health_error and self._state is _CLOSED and self._mode == _NORMAL:
            if self._recent is None:
                self._trip_if_due(now)
            else:
                self._count_failure(now)

    def note_success(self) -> None:
        """A success broke the run of failures (what ``on_result`` does for a plain success)."""
        self.consecutive_failures = 0
        recent = self._recent
        if recent:
            recent.clear()

    def release_trial(self) -> None:
        """Give a trial permit back without an outcome (the trial was interrupted).

        The circuit stays as it is; another execution may take the trial.
        """
        with self._lock:
            if self._trials_out:
                self._trials_out -= 1
            if self._state is _HALF_OPEN:
                self.deny_until = _NEVER

    def _trial_finished(self, succeeded: bool, now: float) -> bool:
        """Count a trial's outcome; ``False`` if its half-open spell is already over."""
        with self._lock:
            if self._trials_out:
                self._trials_out -= 1
            if self._state is not _HALF_OPEN:
                return False
            if not succeeded:
                close = False
            else:
                self._trial_successes += 1
                close = self._trial_successes >= self._success_threshold
                if not close:
                    self.deny_until = _NEVER  # a permit is free again
        if not succeeded:
            self._move(_HALF_OPEN, _OPEN, now)
        elif close:
            self._metrics.reset_health()
            self._move(_HALF_OPEN, _CLOSED, now)
        return True

    def _count_failure(self, now: float) -> None:
        """The consecutive mode: one more failure in the run; trip when the run is long enough."""
        recent = self._recent
        assert recent is not None
        with self._lock:
            recent.append(now)
            due = len(recent) == self._failure_threshold and (
                self._period is None or recent[-1] - recent[0] <= self._period
            )
        if due:
            self._move(_CLOSED, _OPEN, now)

    def _trip_if_due(self, now: float, health: HealthCounts | None = None) -> bool:
        """Open the circuit if the health counts call for it; return whether it is now open.

        The counts are read now unless ``health`` holds them. In the consecutive
        mode only a failure trips the circuit, so there is nothing to check.
        """
        if self._recent is not None:
            next_check = self._next_health_check = _FOREVER
        else:
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
                self.deny_until = _NEVER
                # Closed again: the next execution asks, and checks the counts at once.
                self._next_health_check = 0.0
                self.consecutive_failures = 0
                if self._recent is not None:
                    self._recent.clear()
            self.allow_until = _NEVER
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

    @property
    def opened_at(self) -> float | None:
        """When (monotonic seconds) the circuit last opened, while open or half-open; else None."""
        if self.state is _CLOSED:
            return None
        return self._opened_at

    @property
    def reopens_at(self) -> float | None:
        """When (monotonic seconds) an open circuit lets a trial through; ``None`` unless OPEN."""
        if self.state is not _OPEN or self._mode == _FORCED_OPEN:
            return None
        return self._opened_at + self._sleep_window

    @property
    def trials_in_flight(self) -> int:
        """Trial executions that hold a permit now (their outcome is not known yet)."""
        return self._trials_out

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
        """Whether a request made now would be let through (without taking a trial)."""
        state = self.state
        if state is _CLOSED:
            return True
        if self._mode == _FORCED_OPEN:
            return False
        if state is _HALF_OPEN:
            return self._trials_out < self._max_trials
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
