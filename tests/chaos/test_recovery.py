"""A dependency that recovers closes its breaker again."""

from __future__ import annotations

import hystrixpy
from hystrixpy import CircuitState, Command, CommandProperties, EventType, IsolationStrategy, chaos
from hystrixpy.testing import FakeClock


class GetUser(Command[str]):
    group_key = "Users"
    properties = CommandProperties(
        execution_isolation_strategy=IsolationStrategy.SEMAPHORE,
        circuit_breaker_request_volume_threshold=10,
        circuit_breaker_sleep_window_ms=5000,
    )
    calls = 0

    def run(self) -> str:
        type(self).calls += 1
        return "alice"

    def get_fallback(self) -> str:
        return "guest"


def test_recovery_closes_the_breaker(fake_clock: FakeClock) -> None:
    """Injected failures open the circuit; after recovery and the sleep window a trial closes it."""
    GetUser.calls = 0
    hystrixpy.configure({"chaos.command.GetUser.exception_rate": 1})
    chaos.enable()
    breaker = hystrixpy.circuit_breaker("GetUser")
    for _ in range(10):
        assert GetUser().execute() == "guest"
    assert breaker.state is CircuitState.OPEN
    assert GetUser().execute() == "guest"  # short-circuited: not even chaos is asked
    assert chaos.injected("GetUser")["exception"] == 10

    chaos.disable()  # the dependency recovers
    assert GetUser().execute() == "guest"  # still open: the sleep window has not passed
    fake_clock.advance(5.0)
    trial = GetUser()

    assert trial.execute() == "alice"
    assert trial.execution_events == [EventType.SUCCESS]
    assert breaker.state is CircuitState.CLOSED
    assert GetUser.calls == 1
    assert GetUser().execute() == "alice"
