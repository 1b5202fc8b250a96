"""Tests for the memory one command key costs: bounded, and under 16 KB with everything in use.

Memory is measured with tracemalloc: what is allocated while a key is created
and used, and still alive afterwards, is that key's whole state (its registry
entry and properties, event counters, latency histograms in every bucket,
circuit breaker and semaphores). One-off process-wide allocations are made
beforehand by warming up with another key.
"""

from __future__ import annotations

import gc
import random
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

import hystrixpy
from hystrixpy import Command, CommandProperties, EventType, IsolationStrategy, registry
from hystrixpy.testing import FakeClock

KB = 1024
LIMIT_PER_KEY = 16 * KB
EXECUTIONS = 10_000
# The default percentile window (60 s in 6 buckets of 10 s), and how much of it the runs fill.
PERCENTILE_WINDOW_MS = 60_000
SPREAD_MS = 59_500


class Measured(Command[str]):
    """Takes ``run_ms`` of fake time; fails into a fallback when told to."""

    group_key = "MemoryTests"
    properties = CommandProperties(execution_isolation_strategy=IsolationStrategy.SEMAPHORE)

    def __init__(
        self,
        clock: FakeClock,
        run_ms: float = 0.0,
        *,
        fail: bool = False,
        command_key: str | None = None,
    ) -> None:
        super().__init__(command_key=command_key)
        self.clock = clock
        self.run_ms = run_ms
        self.fail = fail

    def run(self) -> str:
        self.clock.advance_ms(self.run_ms)
        if self.fail:
            raise RuntimeError("dependency failed")
        return "value"

    def get_fallback(self) -> str:
        return "fallback"


@contextmanager
def traced() -> Iterator[Callable[[], int]]:
    """Trace allocations in the block; the callable reads the bytes traced and still alive.

    Only what is allocated inside the block is seen, so compare two readings
    taken inside it, or one reading against the start (zero).
    """
    baseline = [0]

    def alive() -> int:
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - baseline[0]

    gc.collect()
    tracemalloc.start()
    baseline[0] = tracemalloc.get_traced_memory()[0]
    try:
        yield alive
    finally:
        tracemalloc.stop()


def retained_bytes(action: Callable[[], object]) -> int:
    """Bytes allocated by ``action`` and still alive once it has returned (garbage collected)."""
    with traced() as alive:
        action()
        return alive()


def varied_latencies(count: int, seed: int) -> list[float]:
    """Mostly a few ms, now and then hundreds (within the 1 s timeout); fractions of a ms too."""
    rng = random.Random(seed)
    latencies = []
    for _ in range(count):
        if rng.random() < 0.002:
            latencies.append(rng.uniform(100.0, 900.0))
        else:
            latencies.append(rng.uniform(0.0, 3.0) * rng.choice([1, 1, 1, 2]))
    return latencies


def spread_over_the_window(
    clock: FakeClock, command_key: str, latencies: list[float]
) -> Iterator[None]:
    """Execute once per latency, evenly spread over SPREAD_MS of fake time; 3% fail."""
    idle_ms = (SPREAD_MS - sum(latencies)) / len(latencies)
    assert idle_ms > 0
    for index, run_ms in enumerate(latencies):
        Measured(clock, run_ms, fail=index % 33 == 0, command_key=command_key).execute()
        clock.advance_ms(idle_ms)
        yield


def warm_up(clock: FakeClock) -> None:
    """Use another key the same way first, so one-off allocations are not charged to the key.

    As many executions per second as the measured keys see, for two windows, take every path
    they take (successes counted in batches, buckets leaving the window), so that no code runs
    for the first time, and no tracer such as coverage's grows its tables, while a key is
    measured.
    """
    for seed in (1, 2):
        for _ in spread_over_the_window(clock, "WarmUp", varied_latencies(2_000, seed=seed)):
            pass
    for _ in range(3):
        Measured(clock, 1.0, command_key="WarmUpToo").execute()


class TestMemoryPerCommandKey:
    def test_one_key_after_ten_thousand_executions_stays_under_16_kb(
        self, fake_clock: FakeClock
    ) -> None:
        """10,000 executions over the whole 60 s percentile window leave the key under 16 KB."""
        warm_up(fake_clock)
        latencies = varied_latencies(EXECUTIONS, seed=7)

        def use_the_key() -> None:
            for _ in spread_over_the_window(fake_clock, "Measured", latencies):
                pass

        used = retained_bytes(use_the_key)

        metrics = hystrixpy.command_metrics("Measured")
        assert (
            metrics.cumulative_count(EventType.SUCCESS)
            + metrics.cumulative_count(EventType.FAILURE)
            == EXECUTIONS
        )
        # Every bucket of both latency histograms holds samples: the most the key can cost
        # (the current bucket's histogram, and each finished one's, kept sparse).
        series = metrics._latencies
        assert series is not None
        assert all(series.current_sums)
        finished = [kept for kept in series._finished if kept is not None]
        assert len(finished) == len(series._finished) - 1
        assert metrics.execution_time_percentile(100) == round(max(latencies))
        assert used < LIMIT_PER_KEY, f"one key costs {used} bytes"

    def test_widely_spread_latencies_stay_under_16_kb(self, fake_clock: FakeClock) -> None:
        """Latencies spread over most histogram bins (median ~55 ms, up to the timeout) fit too."""
        warm_up(fake_clock)
        rng = random.Random(3)
        latencies = [min(rng.lognormvariate(4.0, 1.0), 900.0) for _ in range(500)]

        def use_the_key() -> None:
            for _ in spread_over_the_window(fake_clock, "Spread", latencies):
                pass

        used = retained_bytes(use_the_key)

        series = hystrixpy.command_metrics("Spread")._latencies
        assert series is not None
        assert sum(kept is not None for kept in series._finished) == len(series._finished) - 1
        assert used < LIMIT_PER_KEY, f"one key costs {used} bytes"

    def test_memory_does_not_grow_with_more_executions(self, fake_clock: FakeClock) -> None:
        """Another 10,000 executions in the next window leave the key's memory where it was."""
        warm_up(fake_clock)
        latencies = varied_latencies(EXECUTIONS, seed=11)

        with traced() as alive:
            for _ in spread_over_the_window(fake_clock, "Measured", latencies):
                pass
            after_first_window = alive()
            for _ in spread_over_the_window(fake_clock, "Measured", latencies):
                pass
            after_second_window = alive()

        metrics = hystrixpy.command_metrics("Measured")
        total = metrics.cumulative_count(EventType.SUCCESS)
        total += metrics.cumulative_count(EventType.FAILURE)
        assert total == 2 * EXECUTIONS
        grown = after_second_window - after_first_window
        assert grown < 512, f"the key grew by {grown} bytes"

    def test_two_thousand_keys_average_under_16_kb_each(self, fake_clock: FakeClock) -> None:
        """2,000 distinct command keys, each executed three times, cost under 16 KB each."""
        warm_up(fake_clock)
        keys = [f"tenant-{number}" for number in range(2000)]

        def use_every_key() -> None:
            for number, key in enumerate(keys):
                for attempt in range(3):
                    Measured(fake_clock, (number + attempt) % 40, command_key=key).execute()
                fake_clock.advance_ms(5)

        used = retained_bytes(use_every_key)

        assert len(registry.known_command_keys()) == len(keys) + 2  # and the two warm-up keys
        assert hystrixpy.command_metrics("tenant-1999").cumulative_count(EventType.SUCCESS) == 3
        per_key = used / len(keys)
        assert per_key < LIMIT_PER_KEY, f"{per_key:.0f} bytes per key"

    @pytest.mark.parametrize("enabled", [True, False])
    def test_evicted_keys_give_their_memory_back(
        self, fake_clock: FakeClock, enabled: bool
    ) -> None:
        """After 500 keys are used and evicted, almost none of their memory is still held."""
        hystrixpy.configure({"command.default.metrics_rolling_percentile_enabled": enabled})
        warm_up(fake_clock)
        hystrixpy.evict_idle(0)

        def use_and_evict() -> None:
            for number in range(500):
                Measured(fake_clock, number % 7, command_key=f"short-lived-{number}").execute()
            fake_clock.advance(60)
            assert len(hystrixpy.evict_idle(60)) == 500

        left = retained_bytes(use_and_evict)

        assert left < 500 * 64, f"{left} bytes left after eviction"
