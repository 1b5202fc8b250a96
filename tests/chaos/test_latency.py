"""Injected latency: the caller still gets an answer at its deadline."""

from __future__ import annotations

import hystrixpy
from hystrixpy import Command, CommandProperties, EventType, chaos
from hystrixpy.testing import FakeClock
from tests.chaos.support import wait_until
from tests.gates import Caller


class GetPayment(Command[str]):
    """THREAD isolation, 200 ms timeout: run() goes to a pool worker."""

    group_key = "Payments"
    properties = CommandProperties(execution_timeout_ms=200)

    def run(self) -> str:
        return "paid"

    def get_fallback(self) -> str:
        return "pending"


def test_five_seconds_of_latency_answer_at_the_200_ms_deadline(fake_clock: FakeClock) -> None:
    """The worker sleeps 5 s of injected latency; the caller has the fallback at 200 ms."""
    hystrixpy.configure({"chaos.command.GetPayment.latency_ms": 5000})
    chaos.enable()
    command = GetPayment()
    caller = Caller(command.execute)
    wait_until(lambda: fake_clock.sleeps == [5.0])  # the worker is in the injected latency

    fake_clock.advance(0.2)

    assert caller.outcome() == "pending"
    assert command.execution_events == [EventType.TIMEOUT, EventType.FALLBACK_SUCCESS]
    assert command.is_response_timed_out
    fake_clock.advance(5.0)  # let the worker finish its latency and drop its late result
    metrics = hystrixpy.command_metrics("GetPayment")
    wait_until(lambda: metrics.current_concurrent_execution_count == 0)
