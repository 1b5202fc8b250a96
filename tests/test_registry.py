"""Tests for hystrixpy.registry: per-key state, pools, configuration, reset() and fork."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from concurrent.futures import Future

import pytest

import hystrixpy
from hystrixpy import (
    CircuitState,
    Command,
    CommandProperties,
    EventType,
    IsolationStrategy,
    ThreadPoolProperties,
    registry,
)
from hystrixpy.testing import FakeClock

SEMAPHORE = IsolationStrategy.SEMAPHORE


def ok() -> str:
    return "ok"


def boom() -> str:
    raise RuntimeError("dependency down")


class Gate:
    """A run() behaviour that reports when it starts and waits to be released."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self) -> str:
        self.entered.set()
        self.release.wait(10)
        return "released"


class Recorder(Command[str]):
    """A thread-isolated command that runs a behaviour and records the worker's name."""

    group_key = "RegistryGroup"

    def __init__(self, behaviour: Callable[[], str] = ok, **keys: str) -> None:
        super().__init__(**keys)
        self.behaviour = behaviour
        self.ran_on: str | None = None

    def run(self) -> str:
        self.ran_on = threading.current_thread().name
        return self.behaviour()

    def get_fallback(self) -> str:
        return "fallback"


class SemaphoreRecorder(Recorder):
    properties = CommandProperties(execution_isolation_strategy=SEMAPHORE)


class ForcedOpenShared(Recorder):
    command_key = "Shared"
    properties = CommandProperties(
        execution_isolation_strategy=SEMAPHORE, circuit_breaker_force_open=True
    )


class PlainShared(Recorder):
    command_key = "Shared"
    properties = CommandProperties(execution_isolation_strategy=SEMAPHORE)


class OnePoolWorker(Recorder):
    thread_pool_key = "SharedPool"
    properties = CommandProperties(execution_timeout_enabled=False)
    thread_pool_properties = ThreadPoolProperties(core_size=1)


class ThreePoolWorkers(Recorder):
    thread_pool_key = "SharedPool"
    properties = CommandProperties(execution_timeout_enabled=False)
    thread_pool_properties = ThreadPoolProperties(core_size=3)


class Mover(Recorder):
    group_key = "MoverGroup"


class ForkPooled(Recorder):
    group_key = "ForkGroup"
    properties = CommandProperties(execution_timeout_enabled=False)
    thread_pool_properties = ThreadPoolProperties(core_size=1)


class ForkSingleSlot(Recorder):
    properties = CommandProperties(
        execution_isolation_strategy=SEMAPHORE,
        execution_isolation_semaphore_max_concurrent_requests=1,
        execution_timeout_enabled=False,
    )


class ForkConfigured(SemaphoreRecorder):
    pass


class WindowOfNineSeconds(SemaphoreRecorder):
    properties = CommandProperties(
        execution_isolation_strategy=SEMAPHORE, metrics_rolling_stats_time_ms=9000
    )


def configuration_snapshot() -> tuple[list[tuple[str, str, dict[str, object]]], int]:
    """The configuration's overrides and version, to check a refused change left them alone."""
    config = registry.configuration()
    return list(config.overrides()), config.version


class TestRegistry:
    def test_reset_forgets_breakers_and_metrics(self, fake_clock: FakeClock) -> None:
        """After reset() a command key starts again with a closed breaker and no counts."""
        for _ in range(20):
            SemaphoreRecorder(boom).execute()
        old_breaker = hystrixpy.circuit_breaker("SemaphoreRecorder")
        assert old_breaker.state is CircuitState.OPEN

        hystrixpy.reset()

        assert registry.known_command_keys() == []
        fresh_breaker = hystrixpy.circuit_breaker("SemaphoreRecorder")  # still declared
        assert fresh_breaker is not old_breaker
        assert fresh_breaker.state is CircuitState.CLOSED
        command = SemaphoreRecorder(ok)
        assert command.execute() == "ok"
        assert command.circuit_breaker is fresh_breaker
        assert command.metrics.cumulative_count(EventType.FAILURE) == 0

    def test_reset_shuts_pools_down_and_forgets_them(self) -> None:
        """After reset() the old pool refuses work and the key gets a new pool."""
        old_pool = hystrixpy.thread_pool("ResetPool")
        assert old_pool.submit(ok).result(5) == "ok"

        hystrixpy.reset()

        with pytest.raises(RuntimeError, match="shut down"):
            old_pool.submit(ok)
        new_pool = hystrixpy.thread_pool("ResetPool")
        assert new_pool is not old_pool
        assert new_pool.submit(ok).result(5) == "ok"

    def test_reset_forgets_configuration(self, fake_clock: FakeClock) -> None:
        """After reset() configured overrides no longer apply."""
        hystrixpy.configure({"command.SemaphoreRecorder.circuit_breaker_force_open": True})
        forced = SemaphoreRecorder(ok)
        assert forced.execute() == "fallback"
        assert forced.ran_on is None

        hystrixpy.reset()

        assert SemaphoreRecorder(ok).execute() == "ok"

    def test_reset_replaces_the_deadline_timer(self) -> None:
        """reset() stops the shared deadline timer; the next one is a new timer."""
        old_timer = registry.timer()
        assert registry.timer() is old_timer

        hystrixpy.reset()

        assert registry.timer() is not old_timer

    def test_instances_of_one_command_key_share_state(self, fake_clock: FakeClock) -> None:
        """Every instance of a command key shares one breaker and one set of metrics."""
        first, second = SemaphoreRecorder(ok), SemaphoreRecorder(boom)
        first.execute()
        second.execute()

        assert first.circuit_breaker is second.circuit_breaker
        assert first.circuit_breaker is hystrixpy.circuit_breaker("SemaphoreRecorder")
        assert first.metrics is hystrixpy.command_metrics("SemaphoreRecorder")
        assert first.metrics.cumulative_count(EventType.SUCCESS) == 1
        assert first.metrics.cumulative_count(EventType.FAILURE) == 1

    def test_command_key_given_per_instance_gets_its_own_state(self, fake_clock: FakeClock) -> None:
        """An instance given another command_key is counted under that key only."""
        SemaphoreRecorder(ok).execute()
        other = SemaphoreRecorder(ok, command_key="OtherKey")
        other.execute()

        assert other.circuit_breaker is not hystrixpy.circuit_breaker("SemaphoreRecorder")
        assert hystrixpy.command_metrics("OtherKey").cumulative_count(EventType.SUCCESS) == 1
        assert registry.known_command_keys() == ["SemaphoreRecorder", "OtherKey"]

    def test_thread_pool_key_given_per_instance_picks_the_pool(self, fake_clock: FakeClock) -> None:
        """Instances of one command key run on the pool each names, sharing one breaker."""
        first, again = Recorder(ok), Recorder(ok)
        first.execute()
        again.execute()
        elsewhere = Recorder(ok, thread_pool_key="InstancePool")
        elsewhere.execute()

        assert first.ran_on == again.ran_on == "hystrix-RegistryGroup-1"
        assert elsewhere.ran_on == "hystrix-InstancePool-1"
        assert elsewhere.circuit_breaker is first.circuit_breaker
        assert elsewhere.metrics.cumulative_count(EventType.SUCCESS) == 3

    def test_first_class_to_use_a_command_key_sets_its_properties(
        self, fake_clock: FakeClock
    ) -> None:
        """A second class sharing a command key gets the properties of the first one used."""
        assert ForcedOpenShared(ok).execute() == "fallback"

        plain = PlainShared(ok)
        assert plain.execute() == "fallback"
        assert plain.ran_on is None
        assert plain.is_response_short_circuited

    def test_first_class_wins_in_the_other_order_too(self, fake_clock: FakeClock) -> None:
        """When the unforced class is used first, the forced-open class is not short-circuited."""
        assert PlainShared(ok).execute() == "ok"

        forced = ForcedOpenShared(ok)
        assert forced.execute() == "ok"
        assert forced.ran_on is not None

    def test_first_command_to_use_a_pool_key_sets_the_pools_properties(
        self, fake_clock: FakeClock
    ) -> None:
        """A pool keeps the properties of its first command; pool configuration overrides them."""
        gate = Gate()
        busy = OnePoolWorker(gate).queue()
        try:
            assert gate.entered.wait(5)
            pool = hystrixpy.thread_pool("SharedPool")
            assert pool.properties.core_size == 1
            second = ThreePoolWorkers(ok)
            assert second.execute() == "fallback"
            assert second.is_response_thread_pool_rejected

            hystrixpy.configure({"hystrix.threadpool.SharedPool.coreSize": "2"})

            assert hystrixpy.thread_pool("SharedPool") is pool
            assert pool.properties.core_size == 2
            third = ThreePoolWorkers(ok)
            assert third.execute() == "ok"
            assert third.ran_on is not None
            assert third.ran_on.startswith("hystrix-SharedPool-")
        finally:
            gate.release.set()
        assert busy.result(5) == "released"

    def test_pool_configuration_before_first_use_applies(self) -> None:
        """A pool created after pool-key configuration gets the configured values."""
        hystrixpy.configure(
            {
                "threadpool.default.max_queue_size": 7,
                "threadpool.ConfiguredPool.core_size": 4,
            }
        )

        pool = hystrixpy.thread_pool("ConfiguredPool", ThreadPoolProperties(core_size=2))

        assert pool.properties.core_size == 4
        assert pool.properties.max_queue_size == 7
        assert hystrixpy.thread_pool("UnconfiguredPool").properties.core_size == 10

    def test_thread_pool_key_override_moves_a_command_to_another_pool(
        self, fake_clock: FakeClock
    ) -> None:
        """Configuring thread_pool_key_override runs the command on the named pool's workers."""
        before = Mover(ok)
        before.execute()
        assert before.ran_on == "hystrix-MoverGroup-1"

        hystrixpy.configure({"command.Mover.thread_pool_key_override": "ElsewherePool"})

        after = Mover(ok)
        assert after.execute() == "ok"
        assert after.ran_on == "hystrix-ElsewherePool-1"

    def test_configuration_clashing_with_a_known_command_is_refused(
        self, fake_clock: FakeClock
    ) -> None:
        """A setting impossible with a used command's own properties raises and changes nothing."""
        WindowOfNineSeconds(ok).execute()

        with pytest.raises(ValueError, match="metrics_rolling_stats_num_buckets"):
            hystrixpy.configure(
                {"command.WindowOfNineSeconds.metrics_rolling_stats_num_buckets": 16}
            )

        assert WindowOfNineSeconds(ok).execute() == "ok"
        assert hystrixpy.command_metrics("WindowOfNineSeconds").rolling_window_ms == 9000

    def test_configuration_clashing_with_a_known_pool_is_refused(self) -> None:
        """A pool setting impossible with the pool's first properties raises ValueError."""
        hystrixpy.thread_pool(
            "NineSecondPool", ThreadPoolProperties(metrics_rolling_stats_time_ms=9000)
        )

        with pytest.raises(ValueError, match="metrics_rolling_stats_num_buckets"):
            hystrixpy.configure({"threadpool.NineSecondPool.metrics_rolling_stats_num_buckets": 16})

    def test_class_whose_pool_clashes_with_the_configuration_fails_when_defined(self) -> None:
        """A class's pool properties that the pool's configuration makes invalid fail at once."""
        hystrixpy.configure({"threadpool.Clash.metrics_rolling_stats_num_buckets": 16})

        with pytest.raises(ValueError) as raised:

            class Clashing(Recorder):
                group_key = "Clash"
                thread_pool_properties = ThreadPoolProperties(metrics_rolling_stats_time_ms=1500)

        message = str(raised.value)
        assert "'Clash'" in message
        assert "metrics_rolling_stats_num_buckets=16" in message
        assert "metrics_rolling_stats_time_ms=1500" in message
        with pytest.raises(KeyError):
            hystrixpy.command_metrics("Clashing")  # a refused class is not declared

    def test_class_sent_by_configuration_to_a_clashing_pool_fails_when_defined(self) -> None:
        """The pool checked is the one a configured thread_pool_key_override names."""
        hystrixpy.configure(
            {
                "command.Redirected.thread_pool_key_override": "Elsewhere",
                "threadpool.Elsewhere.metrics_rolling_stats_num_buckets": 16,
            }
        )

        with pytest.raises(ValueError, match=r"'Elsewhere'.*num_buckets=16.*time_ms=1500"):

            class Redirected(Recorder):
                thread_pool_properties = ThreadPoolProperties(metrics_rolling_stats_time_ms=1500)

    def test_pool_configuration_clashing_with_an_unused_class_is_refused(self) -> None:
        """configure() refuses a pool setting a defined but unused class cannot run with."""

        class NotYetRun(Recorder):
            group_key = "Clash"
            thread_pool_properties = ThreadPoolProperties(metrics_rolling_stats_time_ms=1500)

        hystrixpy.configure({"threadpool.default.core_size": 4})
        before, version = configuration_snapshot()

        with pytest.raises(ValueError) as raised:
            hystrixpy.configure(
                {
                    "threadpool.default.core_size": 6,
                    "hystrix.threadpool.Clash.metrics.rollingStats.numBuckets": "16",
                }
            )

        message = str(raised.value)
        assert "'Clash'" in message
        assert "metrics_rolling_stats_num_buckets=16" in message
        assert "'NotYetRun'" in message
        assert configuration_snapshot() == (before, version)
        assert NotYetRun(ok).execute() == "ok"
        pool = hystrixpy.thread_pool("Clash")
        assert pool.properties.metrics_rolling_stats_time_ms == 1500
        assert pool.properties.core_size == 4

    def test_pool_key_override_to_a_clashing_pool_is_refused(self) -> None:
        """Moving a defined class onto a pool whose configuration clashes with it is refused."""

        class Movable(Recorder):
            thread_pool_properties = ThreadPoolProperties(metrics_rolling_stats_time_ms=1500)

        hystrixpy.configure({"threadpool.Elsewhere.metrics_rolling_stats_num_buckets": 16})
        before, version = configuration_snapshot()

        with pytest.raises(ValueError, match=r"'Elsewhere'.*num_buckets=16.*time_ms=1500"):
            hystrixpy.configure({"command.Movable.thread_pool_key_override": "Elsewhere"})

        assert configuration_snapshot() == (before, version)
        command = Movable(ok)
        assert command.execute() == "ok"
        assert command.ran_on == "hystrix-RegistryGroup-1"

    def test_declared_but_unused_key_has_metrics_and_a_breaker(self) -> None:
        """A defined class's key answers command_metrics() and circuit_breaker() before any run."""

        class DefinedOnly(Recorder):
            properties = CommandProperties(circuit_breaker_sleep_window_ms=1234)

        metrics = hystrixpy.command_metrics("DefinedOnly")
        breaker = hystrixpy.circuit_breaker("DefinedOnly")

        assert metrics.cumulative_count(EventType.SUCCESS) == 0
        assert breaker.state is CircuitState.CLOSED
        assert registry.known_command_keys() == ["DefinedOnly"]
        states = {state.command_key: state for state in registry.declared_states()}
        assert states["DefinedOnly"].metrics is metrics
        assert states["DefinedOnly"].properties.circuit_breaker_sleep_window_ms == 1234
        command = DefinedOnly(ok)
        assert command.execute() == "ok"
        assert command.metrics is metrics
        assert command.circuit_breaker is breaker
        assert metrics.cumulative_count(EventType.SUCCESS) == 1

    def test_key_never_declared_or_used_raises_key_error(self) -> None:
        """command_metrics() and circuit_breaker() still refuse a key nothing knows."""
        with pytest.raises(KeyError, match="NoSuchCommand"):
            hystrixpy.command_metrics("NoSuchCommand")
        with pytest.raises(KeyError, match="NoSuchCommand"):
            hystrixpy.circuit_breaker("NoSuchCommand")
        assert "NoSuchCommand" not in registry.known_command_keys()

    @pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork()")
    @pytest.mark.filterwarnings("ignore:.*fork.*:DeprecationWarning")
    def test_child_process_after_fork_starts_clean(self) -> None:
        """A forked child gets new pools and semaphores but keeps the configuration."""
        hystrixpy.configure({"command.ForkConfigured.circuit_breaker_force_open": True})
        pooled_gate, held_gate = Gate(), Gate()
        pooled: Future[str] = ForkPooled(pooled_gate).queue()
        holder = threading.Thread(target=ForkSingleSlot(held_gate).execute)
        holder.start()
        try:
            assert pooled_gate.entered.wait(5)
            assert held_gate.entered.wait(5)
            parent_pool = hystrixpy.thread_pool("ForkGroup")
            assert parent_pool.pool_size == 1
            assert ForkSingleSlot(ok).execute() == "fallback"  # every permit is held

            reader, writer = os.pipe()
            pid = os.fork()
            if pid == 0:  # the child reports through the pipe and never returns
                status = 1
                try:
                    os.close(reader)
                    child_pool = hystrixpy.thread_pool("ForkGroup")
                    report = {
                        "new_pool": child_pool is not parent_pool,
                        "pool_size": child_pool.pool_size,
                        "semaphore_value": ForkSingleSlot(ok).execute(),
                        "configured_value": ForkConfigured(ok).execute(),
                        "pooled_thread": _ran_on(ForkPooled(ok)),
                    }
                    os.write(writer, json.dumps(report).encode())
                    status = 0
                finally:
                    os._exit(status)
            os.close(writer)
            with os.fdopen(reader, "rb") as pipe:
                raw = pipe.read()
            _, wait_status = os.waitpid(pid, 0)
        finally:
            pooled_gate.release.set()
            held_gate.release.set()
            holder.join(5)

        assert os.waitstatus_to_exitcode(wait_status) == 0
        assert json.loads(raw) == {
            "new_pool": True,
            "pool_size": 0,
            "semaphore_value": "ok",
            "configured_value": "fallback",
            "pooled_thread": "hystrix-ForkGroup-1",
        }
        assert pooled.result(5) == "released"
        assert not holder.is_alive()


def _ran_on(command: Recorder) -> str | None:
    command.execute()
    return command.ran_on
