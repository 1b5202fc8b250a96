"""A retry storm does not get past an open breaker."""

from __future__ import annotations

import threading

import hystrixpy
from hystrixpy import (
    CircuitState,
    Command,
    CommandProperties,
    EventType,
    HystrixRuntimeError,
    IsolationStrategy,
    chaos,
    retry,
)
from hystrixpy.testing import FakeClock

CALLERS = 8
CALLS_EACH = 10


class ReserveStock(Command[str]):
    """No fallback: callers see the failure, and retry it."""

    group_key = "Inventory"
    properties = CommandProperties(
        execution_isolation_strategy=IsolationStrategy.SEMAPHORE,
        execution_isolation_semaphore_max_concurrent_requests=CALLERS,
        circuit_breaker_request_volume_threshold=20,
        circuit_breaker_sleep_window_ms=60_000,
    )

    def run(self) -> str:
        raise AssertionError("the dependency is down: chaos answers for it")


class _OpenWatch:
    """A hook noting how many attempts had reached the dependency when the circuit opened."""

    def __init__(self) -> None:
        self.reached_when_open: list[int] = []

    def on_circuit_state_change(self, key: str, old: CircuitState, new: CircuitState) -> None:
        if new is CircuitState.OPEN:
            self.reached_when_open.append(chaos.injected(key)["exception"])


def _storm() -> int:
    """8 callers, each retrying 10 calls up to 5 attempts at once; returns the calls that failed."""
    start = threading.Barrier(CALLERS)
    failures: list[BaseException] = []

    def caller() -> None:
        start.wait()
        for _ in range(CALLS_EACH):
            try:
                retry(lambda: ReserveStock().execute(), max_attempts=5, initial_delay_ms=0)
            except HystrixRuntimeError as error:
                failures.append(error)

    threads = [threading.Thread(target=caller) for _ in range(CALLERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert not any(thread.is_alive() for thread in threads)
    return len(failures)


def test_retrying_callers_stop_at_the_open_breaker(fake_clock: FakeClock) -> None:
    """Once the circuit opens, two storms of retried calls never reach the dependency again."""
    hystrixpy.configure({"chaos.command.ReserveStock.exception_rate": 1})
    chaos.enable(seed=1)
    watch = _OpenWatch()
    hystrixpy.register_hook(watch)

    assert _storm() == CALLERS * CALLS_EACH  # every call failed, none hung
    reached = chaos.injected("ReserveStock")["exception"]  # attempts that reached the dependency
    assert hystrixpy.circuit_breaker("ReserveStock").state is CircuitState.OPEN
    (when_open,) = watch.reached_when_open
    assert 20 <= when_open <= reached < when_open + CALLERS  # only attempts already under way
    assert reached < CALLERS * CALLS_EACH  # far fewer than the calls, let alone their retries

    assert _storm() == CALLERS * CALLS_EACH
    assert chaos.injected("ReserveStock")["exception"] == reached  # not one more attempt
    metrics = hystrixpy.command_metrics("ReserveStock")
    assert metrics.cumulative_count(EventType.SHORT_CIRCUITED) >= 2 * CALLERS * CALLS_EACH - reached
