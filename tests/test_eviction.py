"""Tests for hystrixpy.evict_idle: forgetting command keys (and their pools) nobody uses any more.

Idleness is measured on the fake clock, so "unused for a minute" takes no
real time.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future

import pytest

import hystrixpy
from hystrixpy import (
    CircuitState,
    Command,
    CommandProperties,
    EventType,
    IsolationStrategy,
    registry,
)
from hystrixpy.bulkhead import ThreadPoolBulkhead
from hystrixpy.registry import CommandKeyState
from hystrixpy.testing import FakeClock

SEMAPHORE = IsolationStrategy.SEMAPHORE


class Answers(Command[str]):
    """A semaphore-isolated command; the key may be given per instance."""

    group_key = "EvictionTests"
    properties = CommandProperties(execution_isolation_strategy=SEMAPHORE)

    def __init__(self, *, command_key: str | None = None, fail: bool = False) -> None:
        super().__init__(command_key=command_key)
        self.fail = fail

    def run(self) -> str:
        if self.fail:
            raise RuntimeError("dependency failed")
        return "answer"

    def get_fallback(self) -> str:
        return "fallback"


class Fragile(Answers):
    """Trips its breaker after two failures in a row."""

    properties = CommandProperties(
        execution_isolation_strategy=SEMAPHORE,
        circuit_breaker_request_volume_threshold=2,
        circuit_breaker_error_threshold_percentage=50,
    )


class Pooled(Command[str]):
    """A thread-isolated command on the pool "EvictionPool"."""

    group_key = "EvictionPool"
    properties = CommandProperties(execution_timeout_enabled=False)

    def run(self) -> str:
        return "pooled"


class PooledToo(Pooled):
    """A second command key on the same pool."""


class Held(Command[str]):
    """Waits inside run() until released."""

    group_key = "EvictionHeld"
    properties = CommandProperties(execution_timeout_enabled=False)

    def __init__(self, inside: threading.Event, release: threading.Event) -> None:
        super().__init__()
        self.inside = inside
        self.release = release

    def run(self) -> str:
        self.inside.set()
        assert self.release.wait(5)
        return "held"


class HeldOnCaller(Held):
    properties = CommandProperties(
        execution_isolation_strategy=SEMAPHORE, execution_timeout_enabled=False
    )


def state_of(command: Command[str]) -> CommandKeyState:
    """The registry state of ``command``'s key (created if need be)."""
    command.metrics  # noqa: B018 - makes sure the state exists
    return next(s for s in registry.command_states() if s.command_key == command.command_key)


def pool_of(command: Command[str], pool_key: str | None = None) -> ThreadPoolBulkhead:
    """The pool ``command``'s key would run on, created as an execution would create it."""
    return state_of(command).pool(pool_key or command.thread_pool_key)


class TestEvictingKeys:
    def test_a_key_unused_for_that_long_is_forgotten(self, fake_clock: FakeClock) -> None:
        """A key last used 61 s ago is evicted by evict_idle(60): its metrics and breaker go."""
        assert Answers().execute() == "answer"
        fake_clock.advance(61)

        assert hystrixpy.evict_idle(60) == ["Answers"]

        assert "Answers" not in registry.known_command_keys()
        # A declared key reads back as fresh state, like declared_states() shows it.
        assert hystrixpy.command_metrics("Answers").cumulative_count(EventType.SUCCESS) == 0

    def test_recently_used_keys_are_kept(self, fake_clock: FakeClock) -> None:
        """Only the key idle for longer than the limit goes; one used 40 s ago keeps its counts."""
        Answers(command_key="Old").execute()
        fake_clock.advance(30)
        Answers(command_key="Recent").execute()
        Answers(command_key="Recent").execute()
        fake_clock.advance(40)

        assert hystrixpy.evict_idle(60) == ["Old"]

        assert hystrixpy.command_metrics("Recent").cumulative_count(EventType.SUCCESS) == 2
        assert registry.known_command_keys() == ["Recent"]

    def test_idleness_is_counted_from_the_last_use(self, fake_clock: FakeClock) -> None:
        """A key used at 0 s and again at 50 s is not idle for 60 s until 110 s."""
        Answers().execute()
        fake_clock.advance(50)
        Answers().execute()

        fake_clock.advance(59.5)
        assert hystrixpy.evict_idle(60) == []
        fake_clock.advance(0.5)
        assert hystrixpy.evict_idle(60) == ["Answers"]

    def test_a_key_only_looked_at_is_idle_from_its_creation(self, fake_clock: FakeClock) -> None:
        """A key whose metrics were read but which never ran is evicted once idle that long."""
        Answers(command_key="NeverRun").metrics  # noqa: B018 - creates the key's state
        fake_clock.advance(10)

        assert hystrixpy.evict_idle(11) == []
        assert hystrixpy.evict_idle(10) == ["NeverRun"]

    def test_zero_evicts_every_key_not_running(self, fake_clock: FakeClock) -> None:
        """evict_idle(0) forgets every key, however recently used, that has no run() going."""
        for key in ("A", "B", "C"):
            Answers(command_key=key).execute()

        assert sorted(hystrixpy.evict_idle(0)) == ["A", "B", "C"]
        assert registry.known_command_keys() == []

    def test_the_return_value_lists_exactly_the_evicted_keys(self, fake_clock: FakeClock) -> None:
        """Of 50 dynamic keys, the 30 idle ones are returned and the 20 recent ones stay."""
        idle = [f"tenant-{n}" for n in range(30)]
        recent = [f"tenant-{n}" for n in range(30, 50)]
        for key in idle:
            Answers(command_key=key).execute()
        fake_clock.advance(120)
        for key in recent:
            Answers(command_key=key).execute()

        evicted = hystrixpy.evict_idle(60)

        assert sorted(evicted) == sorted(idle)
        assert len(evicted) == len(set(evicted))
        assert sorted(registry.known_command_keys()) == sorted(recent)

    def test_nothing_to_evict_returns_an_empty_list(self, fake_clock: FakeClock) -> None:
        """With no keys at all, or none idle long enough, evict_idle returns []."""
        assert hystrixpy.evict_idle(0) == []
        Answers().execute()
        assert hystrixpy.evict_idle(1) == []

    @pytest.mark.parametrize("seconds", [-1, -0.001])
    def test_a_negative_idle_time_is_refused(self, fake_clock: FakeClock, seconds: float) -> None:
        """A negative idle time raises ValueError naming the value, and evicts nothing."""
        Answers().execute()
        fake_clock.advance(100)

        with pytest.raises(ValueError, match="idle_seconds"):
            hystrixpy.evict_idle(seconds)

        assert registry.known_command_keys() == ["Answers"]


class TestEvictedKeysStartAfresh:
    def test_metrics_start_empty_when_the_key_is_used_again(self, fake_clock: FakeClock) -> None:
        """After eviction, the key's next use has new metrics: counts and latencies from zero."""
        for _ in range(3):
            Answers().execute()
        Answers(fail=True).execute()
        old = hystrixpy.command_metrics("Answers")
        fake_clock.advance(61)
        hystrixpy.evict_idle(60)

        assert Answers().execute() == "answer"

        metrics = hystrixpy.command_metrics("Answers")
        assert metrics is not old
        assert metrics.cumulative_count(EventType.SUCCESS) == 1
        assert metrics.cumulative_count(EventType.FAILURE) == 0
        assert metrics.health_counts().total_requests == 1
        assert old.cumulative_count(EventType.SUCCESS) == 3

    def test_an_open_breaker_is_closed_when_the_key_is_used_again(
        self, fake_clock: FakeClock
    ) -> None:
        """A key whose circuit was open gets a closed breaker after eviction: run() is called."""
        Fragile(fail=True).execute()
        Fragile(fail=True).execute()
        assert hystrixpy.circuit_breaker("Fragile").state is CircuitState.OPEN
        short = Fragile()
        assert short.execute() == "fallback"
        assert short.is_response_short_circuited

        fake_clock.advance(61)
        assert hystrixpy.evict_idle(60) == ["Fragile"]

        again = Fragile()
        assert again.execute() == "answer"
        assert again.is_successful_execution
        assert hystrixpy.circuit_breaker("Fragile").state is CircuitState.CLOSED

    def test_configuration_outlives_eviction(self, fake_clock: FakeClock) -> None:
        """An override configured for a key still applies when the evicted key comes back."""
        hystrixpy.configure({"command.Answers.circuit_breaker_force_open": True})
        assert Answers().execute() == "fallback"
        hystrixpy.evict_idle(0)

        command = Answers()
        assert command.execute() == "fallback"
        assert command.is_response_short_circuited


class TestKeysInUseAreKept:
    @pytest.mark.parametrize("held", [HeldOnCaller, Held])
    def test_a_key_with_a_run_in_progress_is_kept(
        self, fake_clock: FakeClock, held: type[Held]
    ) -> None:
        """A key whose run() started 2 minutes ago and is still going survives evict_idle(60)."""
        inside, release = threading.Event(), threading.Event()
        results: list[str] = []
        thread = threading.Thread(
            target=lambda: results.append(held(inside, release).execute()), daemon=True
        )
        try:
            thread.start()
            assert inside.wait(5)
            fake_clock.advance(120)

            assert hystrixpy.evict_idle(60) == []
            assert hystrixpy.command_metrics(held.__name__).current_concurrent_execution_count == 1
        finally:
            release.set()
            thread.join(5)
        assert not thread.is_alive()
        assert results == ["held"]

        assert hystrixpy.evict_idle(60) == [held.__name__]


class TestEvictingPools:
    def test_a_pool_no_remaining_key_uses_is_dropped_and_shut_down(
        self, fake_clock: FakeClock
    ) -> None:
        """When its only key is evicted, the pool is forgotten and refuses new work."""
        pool = pool_of(Pooled())
        assert hystrixpy.thread_pool_metrics("EvictionPool") is pool.metrics
        fake_clock.advance(61)

        assert hystrixpy.evict_idle(60) == ["Pooled"]

        with pytest.raises(KeyError):
            hystrixpy.thread_pool_metrics("EvictionPool")
        with pytest.raises(RuntimeError, match="shut down"):
            pool.submit(lambda: None)

    def test_the_key_gets_a_new_pool_when_used_again(self, fake_clock: FakeClock) -> None:
        """An evicted key's next execution runs on a new pool whose counts start at zero."""
        old_pool = pool_of(Pooled())
        fake_clock.advance(61)
        hystrixpy.evict_idle(60)

        assert Pooled().execute() == "pooled"

        new_pool = hystrixpy.thread_pool("EvictionPool")
        assert new_pool is not old_pool
        new_pool.shutdown(wait=True)
        assert hystrixpy.thread_pool_metrics("EvictionPool").cumulative_count_threads_executed == 1

    def test_a_pool_a_remaining_key_uses_is_kept(self, fake_clock: FakeClock) -> None:
        """Evicting one of two keys sharing a pool keeps the pool working for the other."""
        pool = pool_of(Pooled())
        fake_clock.advance(61)
        assert pool_of(PooledToo()) is pool
        assert PooledToo().execute() == "pooled"

        assert hystrixpy.evict_idle(60) == ["Pooled"]

        assert hystrixpy.thread_pool_metrics("EvictionPool") is pool.metrics
        assert pool.submit(lambda: "still open").result(5) == "still open"

    def test_a_pool_with_work_admitted_is_kept(self, fake_clock: FakeClock) -> None:
        """A pool whose keys are gone but which still has a task running is not dropped."""
        started, release = threading.Event(), threading.Event()

        def task() -> str:
            started.set()
            assert release.wait(5)
            return "finished"

        pool = pool_of(Pooled())
        busy: Future[str] | None = None
        try:
            busy = pool.submit(task)
            assert started.wait(5)
            fake_clock.advance(61)

            assert hystrixpy.evict_idle(60) == ["Pooled"]

            assert hystrixpy.thread_pool_metrics("EvictionPool") is pool.metrics
        finally:
            release.set()
        assert busy.result(5) == "finished"

    def test_a_pool_a_remaining_key_picked_per_instance_is_kept(
        self, fake_clock: FakeClock
    ) -> None:
        """A pool chosen per instance by a key still in use keeps its metrics through eviction."""
        assert Pooled().execute() == "pooled"  # the key is in use, on its class's pool
        pool = pool_of(Pooled(thread_pool_key="EvictionTenantPool"))  # as executing it would

        assert hystrixpy.evict_idle(3600) == []

        assert hystrixpy.thread_pool_metrics("EvictionTenantPool") is pool.metrics
        assert pool.submit(lambda: "open").result(5) == "open"
