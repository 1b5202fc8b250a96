"""An injected hang: the caller returns at its deadline, no thread is left behind."""

from __future__ import annotations

import threading

import hystrixpy
from hystrixpy import Command, CommandProperties, EventType, chaos
from hystrixpy.testing import FakeClock
from tests.chaos.support import wait_until
from tests.gates import Caller


class GetInventory(Command[int]):
    """THREAD isolation, 100 ms timeout."""

    group_key = "Inventory"
    properties = CommandProperties(execution_timeout_ms=100)

    def run(self) -> int:
        return 7

    def get_fallback(self) -> int:
        return -1


def test_a_hang_times_out_and_leaks_no_thread(fake_clock: FakeClock) -> None:
    """Every attempt hangs: each caller returns at 100 ms and its worker is free again."""
    hystrixpy.configure({"chaos.command.GetInventory.hang_rate": 1})
    chaos.enable()
    metrics = hystrixpy.command_metrics("GetInventory")
    threads_before = threading.active_count()
    for hung in range(1, 4):
        command = GetInventory()
        caller = Caller(command.execute)
        wait_until(lambda: chaos.injected("GetInventory")["hang"] == hung)  # noqa: B023

        fake_clock.advance(0.1)

        assert caller.outcome() == -1  # the caller's thread has finished
        assert command.execution_events == [EventType.TIMEOUT, EventType.FALLBACK_SUCCESS]
        wait_until(lambda: metrics.current_concurrent_execution_count == 0)  # the worker too
    # One pool worker was started, and reused: no thread was left hanging.
    assert threading.active_count() <= threads_before + 1
    assert hystrixpy.thread_pool_metrics("Inventory").current_active_count == 0
