"""Tests for hystrixpy.clock and the fake clock of hystrixpy.testing."""

from __future__ import annotations

import datetime
import threading
import time

import pytest
from freezegun import freeze_time

import hystrixpy
from hystrixpy import clock
from hystrixpy.clock import SystemClock
from hystrixpy.testing import FakeClock, isolated, use_clock

FROZEN_AT = datetime.datetime(2024, 3, 1, 12, 0, 0, tzinfo=datetime.timezone.utc)


class _Noted(hystrixpy.Command[int]):
    """A small semaphore-isolated command, to give the registry something to remember."""

    group_key = "ClockTests"
    properties = hystrixpy.CommandProperties(
        execution_isolation_strategy=hystrixpy.IsolationStrategy.SEMAPHORE
    )

    def run(self) -> int:
        return 1


def _start(target: object) -> threading.Thread:
    thread = threading.Thread(target=target, daemon=True)  # type: ignore[arg-type]
    thread.start()
    return thread


class TestSystemClock:
    def test_wall_time_follows_freezegun(self) -> None:
        """wall_time() reads the frozen epoch time when freezegun is active."""
        with freeze_time(FROZEN_AT):
            assert SystemClock().wall_time() == FROZEN_AT.timestamp()

    def test_readings_move_with_freezegun_tick(self) -> None:
        """Both readings advance by exactly the ticked amount and not otherwise."""
        system = SystemClock()
        with freeze_time(FROZEN_AT) as frozen:
            mono_before = system.monotonic()
            wall_before = system.wall_time()
            assert system.monotonic() == mono_before

            frozen.tick(2.5)

            assert system.monotonic() - mono_before == pytest.approx(2.5)
            assert system.wall_time() - wall_before == pytest.approx(2.5)

    def test_tick_with_a_timedelta(self) -> None:
        """A freezegun tick given as a timedelta moves the monotonic reading too."""
        system = SystemClock()
        with freeze_time(FROZEN_AT) as frozen:
            before = system.monotonic()
            frozen.tick(datetime.timedelta(milliseconds=250))

            assert system.monotonic() - before == pytest.approx(0.25)

    @pytest.mark.parametrize(
        "clocks_before",
        [[None], [FakeClock(), None]],
        ids=["system clock", "a fake clock, then the system clock"],
    )
    def test_module_readings_follow_freezegun_through_the_system_clock(
        self, clocks_before: list[FakeClock | None]
    ) -> None:
        """Module readings see freezegun through the system clock, whatever was installed before."""
        for installed in clocks_before:
            clock.set_clock(installed)
        with freeze_time(FROZEN_AT) as frozen:
            before = clock.monotonic()
            frozen.tick(10)

            assert clock.monotonic() - before == pytest.approx(10.0)
            assert clock.wall_time() == pytest.approx(FROZEN_AT.timestamp() + 10)

    def test_system_clock_installed_while_frozen_reads_real_time_afterwards(self) -> None:
        """Restoring the system clock inside a freeze leaves no frozen reading behind."""
        with freeze_time(FROZEN_AT):
            clock.set_clock(FakeClock())
            clock.set_clock(None)  # as isolated() does when it ends inside a freeze
            assert clock.wall_time() == FROZEN_AT.timestamp()

        assert abs(clock.wall_time() - time.time()) < 5.0
        assert abs(clock.monotonic() - time.monotonic()) < 5.0

    def test_readings_are_real_outside_freezegun(self) -> None:
        """Without freezegun the system clock reads the real time."""
        system = SystemClock()

        assert abs(system.wall_time() - time.time()) < 5.0
        assert abs(system.monotonic() - time.monotonic()) < 5.0

    def test_wait_acquires_a_free_lock_at_once(self) -> None:
        """wait() on a free lock takes it and returns True."""
        lock = threading.Lock()

        assert SystemClock().wait(lock, 5.0) is True
        assert lock.locked()

    def test_wait_gives_up_on_a_held_lock_after_the_timeout(self) -> None:
        """wait() with no time left on a held lock returns False."""
        lock = threading.Lock()
        lock.acquire()

        assert SystemClock().wait(lock, 0.0) is False

    def test_wait_treats_a_negative_timeout_as_none_left(self) -> None:
        """A deadline already passed gives a negative timeout, which means: do not wait."""
        lock = threading.Lock()
        lock.acquire()

        assert SystemClock().wait(lock, -3.0) is False

    def test_wait_returns_when_another_thread_releases_the_lock(self) -> None:
        """wait() wakes with True as soon as another thread releases the lock."""
        lock = threading.Lock()
        lock.acquire()
        releaser = _start(lock.release)

        assert SystemClock().wait(lock, 5.0) is True
        releaser.join(5)
        assert not releaser.is_alive()

    def test_sleep_blocks_for_real_time(self) -> None:
        """sleep() on the system clock lets that much real time pass."""
        started = time.perf_counter()

        SystemClock().sleep(0.005)

        assert time.perf_counter() - started >= 0.004

    def test_repr(self) -> None:
        """The system clock shows itself plainly."""
        assert repr(SystemClock()) == "SystemClock()"


class TestClockModule:
    def test_system_clock_is_installed_by_default(self) -> None:
        """Without any change, hystrixpy uses the system clock."""
        assert isinstance(clock.get_clock(), SystemClock)

    def test_set_clock_returns_the_previous_clock(self) -> None:
        """set_clock installs a clock and hands back the one it replaced."""
        first = FakeClock()
        second = FakeClock()

        original = clock.set_clock(first)
        replaced = clock.set_clock(second)

        assert isinstance(original, SystemClock)
        assert replaced is first
        assert clock.get_clock() is second

    def test_set_clock_none_restores_a_system_clock(self) -> None:
        """set_clock(None) puts a system clock back and returns the clock it replaced."""
        fake = FakeClock()
        clock.set_clock(fake)

        previous = clock.set_clock(None)

        assert previous is fake
        assert isinstance(clock.get_clock(), SystemClock)

    def test_module_functions_use_the_installed_clock(self) -> None:
        """monotonic(), wall_time() and wait() read whichever clock is installed."""
        fake = FakeClock(start=50.0, wall_start=1_000.0)
        clock.set_clock(fake)
        lock = threading.Lock()
        lock.acquire()

        assert clock.monotonic() == 50.0
        assert clock.wall_time() == 1_000.0
        fake.advance(2.0)
        assert clock.monotonic() == 52.0
        assert clock.wall_time() == 1_002.0
        assert clock.wait(lock, 0.0) is False

    def test_module_sleep_uses_the_installed_clock(self, fake_clock: FakeClock) -> None:
        """clock.sleep() blocks on the installed fake clock until its time is advanced."""
        woke = threading.Event()

        def sleeper() -> None:
            clock.sleep(3.0)
            woke.set()

        thread = _start(sleeper)
        try:
            assert not woke.wait(0.05)
            fake_clock.advance(3.0)
            assert woke.wait(5)
        finally:
            fake_clock.advance(100.0)
            thread.join(5)
        assert not thread.is_alive()


class TestFakeClock:
    def test_starts_at_the_given_times(self) -> None:
        """A fake clock starts at the monotonic and wall times it was given."""
        fake = FakeClock(start=10.0, wall_start=2_000_000_000.0)

        assert fake.monotonic() == 10.0
        assert fake.wall_time() == 2_000_000_000.0

    def test_default_start(self) -> None:
        """A default fake clock starts at 1000 s monotonic and a 2023 wall time."""
        fake = FakeClock()

        assert fake.monotonic() == 1000.0
        assert fake.wall_time() == 1_700_000_000.0

    def test_time_stands_still_until_advanced(self) -> None:
        """Reading a fake clock does not move it."""
        fake = FakeClock()

        assert fake.monotonic() == fake.monotonic()

    def test_advance_moves_both_readings(self) -> None:
        """advance(seconds) moves monotonic and wall time together."""
        fake = FakeClock(start=0.0, wall_start=100.0)

        fake.advance(1.5)
        fake.advance(0.0)

        assert fake.monotonic() == 1.5
        assert fake.wall_time() == 101.5

    def test_advance_ms_moves_by_milliseconds(self) -> None:
        """advance_ms(milliseconds) moves the clock by that many thousandths of a second."""
        fake = FakeClock(start=0.0)

        fake.advance_ms(250)
        fake.advance_ms(1500)

        assert fake.monotonic() == pytest.approx(1.75)

    def test_advance_refuses_to_go_back(self) -> None:
        """A negative advance raises ValueError naming the amount, and leaves time alone."""
        fake = FakeClock(start=5.0)

        with pytest.raises(ValueError, match=r"-0\.5"):
            fake.advance(-0.5)
        with pytest.raises(ValueError, match=r"-0\.001"):
            fake.advance_ms(-1)
        assert fake.monotonic() == 5.0

    def test_wait_acquires_a_free_lock_at_once(self) -> None:
        """wait() on a free lock returns True without any fake time passing."""
        fake = FakeClock()
        lock = threading.Lock()

        assert fake.wait(lock, 10.0) is True
        assert lock.locked()
        assert fake.monotonic() == 1000.0

    def test_wait_with_no_time_left_gives_up(self) -> None:
        """wait() with a zero or negative timeout on a held lock returns False."""
        fake = FakeClock()
        lock = threading.Lock()
        lock.acquire()

        assert fake.wait(lock, 0.0) is False
        assert fake.wait(lock, -1.0) is False

    def test_wait_wakes_when_another_thread_advances_past_the_deadline(self) -> None:
        """A waiter on a held lock gives up once another thread moves fake time to its deadline."""
        fake = FakeClock()
        lock = threading.Lock()
        lock.acquire()
        outcome: list[tuple[bool, float]] = []
        returned = threading.Event()

        def waiter() -> None:
            result = fake.wait(lock, 5.0)
            outcome.append((result, fake.monotonic()))
            returned.set()

        thread = _start(waiter)
        try:
            fake.advance(4.0)
            assert not returned.wait(0.05)

            fake.advance(1.0)

            assert returned.wait(5)
        finally:
            fake.advance(100.0)
            thread.join(5)
        assert not thread.is_alive()
        assert outcome == [(False, 1005.0)]

    def test_wait_returns_true_when_the_lock_is_released_before_the_deadline(self) -> None:
        """A waiter takes the lock if it is released before fake time reaches the deadline."""
        fake = FakeClock()
        lock = threading.Lock()
        lock.acquire()
        results: list[bool] = []
        returned = threading.Event()

        def waiter() -> None:
            results.append(fake.wait(lock, 5.0))
            returned.set()

        thread = _start(waiter)
        try:
            fake.advance(4.9)
            lock.release()
            assert returned.wait(5)
        finally:
            fake.advance(100.0)
            thread.join(5)
        assert results == [True]

    def test_wait_is_not_ended_by_real_time(self) -> None:
        """A waiter with a tiny fake timeout keeps waiting while fake time does not move."""
        fake = FakeClock()
        lock = threading.Lock()
        lock.acquire()
        returned = threading.Event()

        def waiter() -> None:
            fake.wait(lock, 0.001)
            returned.set()

        thread = _start(waiter)
        try:
            assert not returned.wait(0.05)
        finally:
            fake.advance_ms(1)
            thread.join(5)
        assert returned.is_set()

    def test_sleep_blocks_until_fake_time_passes(self) -> None:
        """sleep(seconds) returns only once another thread has advanced the clock that far."""
        fake = FakeClock()
        woke_at: list[float] = []
        woke = threading.Event()

        def sleeper() -> None:
            fake.sleep(2.0)
            woke_at.append(fake.monotonic())
            woke.set()

        thread = _start(sleeper)
        try:
            fake.advance(1.0)
            assert not woke.wait(0.05)

            fake.advance(1.0)

            assert woke.wait(5)
        finally:
            fake.advance(100.0)
            thread.join(5)
        assert woke_at == [1002.0]

    def test_advances_from_several_threads_all_count(self) -> None:
        """Concurrent advances from many threads add up without losing any."""
        fake = FakeClock(start=0.0)
        barrier = threading.Barrier(8)

        def advancer() -> None:
            barrier.wait(5)
            for _ in range(1000):
                fake.advance_ms(1)

        threads = [_start(advancer) for _ in range(8)]
        for thread in threads:
            thread.join(5)

        assert not any(thread.is_alive() for thread in threads)
        assert fake.monotonic() == pytest.approx(8.0)

    def test_repr_shows_the_time(self) -> None:
        """The fake clock's repr shows its monotonic time."""
        assert repr(FakeClock(start=12.5)) == "FakeClock(monotonic=12.5)"


class TestUseClock:
    def test_installs_the_clock_inside_the_block(self) -> None:
        """use_clock makes hystrixpy read the given clock within the block."""
        fake = FakeClock(start=7.0)

        with use_clock(fake) as installed:
            assert installed is fake
            assert clock.get_clock() is fake
            assert clock.monotonic() == 7.0

    def test_restores_the_previous_clock_afterwards(self) -> None:
        """After the block, the clock in use before is back."""
        outer = FakeClock()
        clock.set_clock(outer)

        with use_clock(FakeClock()):
            pass

        assert clock.get_clock() is outer

    def test_restores_the_previous_clock_after_an_error(self) -> None:
        """An exception in the block still puts the previous clock back."""
        before = clock.get_clock()

        with pytest.raises(RuntimeError), use_clock(FakeClock()):
            raise RuntimeError("boom")

        assert clock.get_clock() is before

    def test_blocks_nest(self) -> None:
        """Nested use_clock blocks each restore the clock of the level outside them."""
        outer, inner = FakeClock(), FakeClock()

        with use_clock(outer):
            with use_clock(inner):
                assert clock.get_clock() is inner
            assert clock.get_clock() is outer


class TestIsolated:
    def test_installs_a_fresh_fake_clock(self) -> None:
        """isolated() installs a new fake clock and yields it."""
        with isolated() as fake:
            assert isinstance(fake, FakeClock)
            assert clock.get_clock() is fake

        assert isinstance(clock.get_clock(), SystemClock)

    def test_uses_a_given_fake_clock(self) -> None:
        """isolated(fake) installs the fake clock it is given."""
        mine = FakeClock(start=3.0)

        with isolated(mine) as fake:
            assert fake is mine
            assert clock.monotonic() == 3.0

    def test_starts_with_a_clean_registry(self) -> None:
        """Metrics and configuration from before the block are gone inside it."""
        hystrixpy.configure({"command.default.execution_timeout_ms": 250})
        _Noted().execute()
        assert (
            hystrixpy.command_metrics("_Noted").cumulative_count(hystrixpy.EventType.SUCCESS) == 1
        )

        with isolated():
            assert _noted_successes() == 0
            seen: list[float | None] = []

            class Probe(hystrixpy.Command[None]):
                group_key = "ClockTests"
                properties = hystrixpy.CommandProperties(
                    execution_isolation_strategy=hystrixpy.IsolationStrategy.SEMAPHORE
                )

                def run(self) -> None:
                    seen.append(self.remaining_time())

            Probe().execute()
            assert seen == [1.0]

    def test_forgets_what_happened_inside_the_block(self) -> None:
        """Metrics and configuration made inside the block do not outlive it."""
        with isolated():
            hystrixpy.configure({"command.default.execution_timeout_ms": 250})
            _Noted().execute()

        assert _noted_successes() == 0
        assert hystrixpy.registry.configuration().overrides() == []

    def test_cleans_up_after_an_error(self) -> None:
        """An exception in the block still restores the clock and resets the registry."""
        before = clock.get_clock()

        with pytest.raises(RuntimeError), isolated():
            _Noted().execute()
            raise RuntimeError("boom")

        assert clock.get_clock() is before
        assert _noted_successes() == 0


def _noted_successes() -> int:
    return hystrixpy.command_metrics("_Noted").cumulative_count(hystrixpy.EventType.SUCCESS)
