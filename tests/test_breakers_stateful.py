"""A hypothesis state machine: the standalone Breaker against a small model of its states."""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from hystrixpy import clock
from hystrixpy.breakers import Breaker, BreakerConfig, CircuitState
from hystrixpy.exceptions import CircuitBreakerError
from hystrixpy.testing import FakeClock

CLOSED, OPEN, HALF_OPEN = CircuitState.CLOSED, CircuitState.OPEN, CircuitState.HALF_OPEN
# Waits in steps of 250 ms, often a whole recovery timeout or period. Binary floats hold
# them exactly, so the model's whole milliseconds and the breaker's float seconds agree
# even at the boundaries.
STEPS_MS = st.sampled_from([0, 250, 500, 1000])


class Down(Exception):
    """The dependency failed."""


@dataclass
class Model:
    """What the breaker should do: states, the run of failures, the trial successes."""

    failure_threshold: int
    success_threshold: int
    recovery_ms: int
    period_ms: int | None
    now_ms: int = 0
    state: CircuitState = CLOSED
    opened_ms: int = 0
    run: list[int] = field(default_factory=list)  # failure times while closed
    consecutive: int = 0
    trial_successes: int = 0

    def refuses(self) -> bool:
        """Whether a call made now is refused (CircuitBreakerError)."""
        return self.state is OPEN and self.now_ms - self.opened_ms < self.recovery_ms

    def admit(self) -> bool:
        """Let a call in; return whether it is a trial."""
        if self.state is OPEN:
            self.state = HALF_OPEN
            self.trial_successes = 0
        return self.state is HALF_OPEN

    def succeeded(self, trial: bool) -> None:
        self.consecutive = 0
        self.run.clear()
        if trial:
            self.trial_successes += 1
            if self.trial_successes >= self.success_threshold:
                self.close()

    def failed(self, trial: bool) -> None:
        self.consecutive += 1
        if trial:
            self.open()
            return
        self.run = [*self.run, self.now_ms][-self.failure_threshold :]
        if len(self.run) == self.failure_threshold and (
            self.period_ms is None or self.run[-1] - self.run[0] <= self.period_ms
        ):
            self.open()

    def open(self) -> None:
        self.state = OPEN
        self.opened_ms = self.now_ms

    def close(self) -> None:
        self.state = CLOSED
        self.run.clear()
        self.consecutive = 0


class BreakerMachine(RuleBasedStateMachine):
    """Random calls, failures, ignored errors, interrupts, waits and resets."""

    def __init__(self) -> None:
        super().__init__()
        self.fake = FakeClock()
        self.previous = clock.set_clock(self.fake)

    @initialize(
        failure_threshold=st.integers(1, 4),
        success_threshold=st.integers(1, 3),
        recovery_ms=st.sampled_from([0, 500, 1000, 2500]),
        period_ms=st.sampled_from([None, 500, 1000]),
    )
    def make(
        self,
        failure_threshold: int,
        success_threshold: int,
        recovery_ms: int,
        period_ms: int | None,
    ) -> None:
        self.model = Model(failure_threshold, success_threshold, recovery_ms, period_ms)
        self.breaker = Breaker(
            "modelled",
            BreakerConfig(
                failure_threshold=failure_threshold,
                success_threshold=success_threshold,
                recovery_timeout_ms=recovery_ms,
                monitoring_period_ms=period_ms,
                exclude=KeyError,
            ),
        )

    def _call(self, error: BaseException | None) -> bool | None:
        """Call through the breaker; ``None`` if refused, else whether it was a trial."""
        model = self.model
        refused = model.refuses()

        def behave() -> str:
            if error is not None:
                raise error
            return "ok"

        try:
            value = self.breaker.call(behave)
        except CircuitBreakerError:
            assert refused, "refused while the model lets the call in"
            return None
        except (Down, KeyError, KeyboardInterrupt) as raised:
            assert raised is error
        else:
            assert value == "ok"
        assert not refused, "let in while the model refuses it"
        return model.admit()

    @rule()
    def succeed(self) -> None:
        trial = self._call(None)
        if trial is not None:
            self.model.succeeded(trial)

    @rule()
    def fail(self) -> None:
        trial = self._call(Down("down"))
        if trial is not None:
            self.model.failed(trial)

    @rule()
    def raise_an_excluded_error(self) -> None:
        trial = self._call(KeyError("not a failure"))
        if trial is not None:
            self.model.succeeded(trial)

    @rule()
    def interrupt(self) -> None:
        self._call(KeyboardInterrupt())  # no outcome: a trial's permit is given back

    @rule(milliseconds=STEPS_MS)
    def wait(self, milliseconds: int) -> None:
        self.fake.advance_ms(milliseconds)
        self.model.now_ms += milliseconds

    @rule()
    def reset(self) -> None:
        self.breaker.reset()
        self.model.close()

    @invariant()
    def states_agree(self) -> None:
        if hasattr(self, "breaker"):
            assert self.breaker.state is self.model.state
            stats = self.breaker.stats()
            assert stats.consecutive_failures == self.model.consecutive
            assert stats.half_open_calls == 0

    def teardown(self) -> None:
        clock.set_clock(self.previous)


BreakerMachine.TestCase.settings = settings(
    max_examples=200, stateful_step_count=30, deadline=None, database=None
)
TestBreakerMachine = BreakerMachine.TestCase
