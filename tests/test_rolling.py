"""Tests for hystrixpy.rolling: bucketed rolling counters and their peaks."""

from __future__ import annotations

import tracemalloc

import pytest

from hystrixpy.rolling import RollingCounter

# A window of one second in ten buckets of 100 ms; times below are in seconds.
WINDOW_MS = 1000
BUCKETS = 10


def _traced_bytes_in_rolling(snapshot: tracemalloc.Snapshot) -> int:
    """Bytes still allocated by code in hystrixpy/rolling.py."""
    only_rolling = snapshot.filter_traces([tracemalloc.Filter(True, "*hystrixpy/rolling.py")])
    return sum(stat.size for stat in only_rolling.statistics("filename"))


class TestRollingCounter:
    def test_starts_empty(self) -> None:
        """A new counter reports zero for every kind."""
        counter = RollingCounter(3, WINDOW_MS, BUCKETS)

        assert counter.totals(5.0) == [0, 0, 0]
        assert counter.total(1, 5.0) == 0
        assert counter.bucket_values(2, 5.0) == [0] * BUCKETS

    def test_exposes_window_and_bucket_count(self) -> None:
        """The counter reports the window length and bucket count it was built with."""
        counter = RollingCounter(2, 10_000, 20)

        assert counter.window_ms == 10_000
        assert counter.num_buckets == 20
        assert counter.kinds == 2

    def test_counts_each_kind_separately(self) -> None:
        """Adding to one kind leaves the other kinds' counts alone."""
        counter = RollingCounter(3, WINDOW_MS, BUCKETS)

        counter.add(0, 5.05)
        counter.add(2, 5.05, amount=4)
        counter.add(2, 5.15)

        assert counter.totals(5.2) == [1, 0, 5]
        assert counter.total(0, 5.2) == 1
        assert counter.total(1, 5.2) == 0
        assert counter.total(2, 5.2) == 5

    def test_window_total_sums_every_bucket_in_the_window(self) -> None:
        """Counts recorded in different buckets of one window add up."""
        counter = RollingCounter(1, WINDOW_MS, BUCKETS)

        for step in range(BUCKETS):
            counter.add(0, 3.05 + step * 0.1, amount=step + 1)

        assert counter.total(0, 3.95) == sum(range(1, BUCKETS + 1))

    def test_bucket_values_are_oldest_first(self) -> None:
        """bucket_values lists the per-bucket counts from the oldest bucket to the current one."""
        counter = RollingCounter(1, 500, 5)

        counter.add(0, 0.05)
        counter.add(0, 0.15, amount=2)
        counter.add(0, 0.35, amount=3)

        assert counter.bucket_values(0, 0.45) == [1, 2, 0, 3, 0]

    def test_bucket_values_shift_as_time_moves_on(self) -> None:
        """Moving into a new bucket drops the oldest bucket from the front and adds an empty one."""
        counter = RollingCounter(1, 500, 5)
        counter.add(0, 0.05)
        counter.add(0, 0.15, amount=2)
        counter.add(0, 0.35, amount=3)

        assert counter.bucket_values(0, 0.55) == [2, 0, 3, 0, 0]
        assert counter.bucket_values(0, 0.75) == [3, 0, 0, 0, 0]

    def test_oldest_bucket_leaves_the_window_when_time_rolls_past_it(self) -> None:
        """A count stops being reported exactly when its bucket falls out of the window."""
        counter = RollingCounter(1, WINDOW_MS, BUCKETS)
        counter.add(0, 1.0)
        counter.add(0, 1.5, amount=10)

        assert counter.total(0, 1.95) == 11
        assert counter.total(0, 2.0) == 10
        assert counter.total(0, 2.45) == 10
        assert counter.total(0, 2.5) == 0

    def test_rolling_through_several_buckets_at_once_clears_each_of_them(self) -> None:
        """Jumping over several buckets (but less than a window) expires every bucket passed."""
        counter = RollingCounter(1, WINDOW_MS, BUCKETS)
        for step in range(BUCKETS):
            counter.add(0, 4.05 + step * 0.1)

        # 0.35 s later: the buckets of 4.0-4.3 are out, the last six remain.
        assert counter.total(0, 5.35) == 6
        assert counter.bucket_values(0, 5.35) == [1, 1, 1, 1, 1, 1, 0, 0, 0, 0]

    def test_idle_longer_than_the_window_forgets_everything(self) -> None:
        """After more idle time than the window, every count is gone, not just some."""
        counter = RollingCounter(2, WINDOW_MS, BUCKETS)
        for step in range(BUCKETS):
            counter.add(step % 2, 7.05 + step * 0.1, amount=3)

        assert counter.totals(50.0) == [0, 0]
        assert counter.bucket_values(0, 50.0) == [0] * BUCKETS

    def test_counting_resumes_after_a_long_idle(self) -> None:
        """A counter that went idle counts new events from zero when they arrive."""
        counter = RollingCounter(1, WINDOW_MS, BUCKETS)
        counter.add(0, 1.05, amount=5)

        counter.add(0, 100.05)

        assert counter.total(0, 100.05) == 1
        assert counter.bucket_values(0, 100.05) == [0] * (BUCKETS - 1) + [1]

    def test_idle_of_exactly_one_window_expires_everything(self) -> None:
        """A gap of exactly the window length leaves nothing from before it."""
        counter = RollingCounter(1, WINDOW_MS, BUCKETS)
        counter.add(0, 2.0, amount=3)

        assert counter.total(0, 3.0) == 0

    def test_a_clock_stepping_back_counts_into_the_latest_bucket(self) -> None:
        """An earlier time than the last one seen adds to the current bucket and loses nothing."""
        counter = RollingCounter(1, WINDOW_MS, BUCKETS)
        counter.add(0, 10.55)

        counter.add(0, 10.05, amount=2)

        assert counter.total(0, 10.05) == 3
        assert counter.bucket_values(0, 10.55) == [0] * (BUCKETS - 1) + [3]

    def test_a_clock_stepping_back_does_not_expire_counts(self) -> None:
        """Reading at an earlier time, even a whole window earlier, keeps the counts."""
        counter = RollingCounter(1, WINDOW_MS, BUCKETS)
        counter.add(0, 20.05, amount=4)

        assert counter.total(0, 5.0) == 4
        assert counter.total(0, 20.05) == 4

    def test_time_moving_forward_again_after_a_step_back_rolls_normally(self) -> None:
        """Once time passes the latest bucket again, buckets roll as before the step back."""
        counter = RollingCounter(1, WINDOW_MS, BUCKETS)
        counter.add(0, 10.55)
        counter.add(0, 10.05)

        counter.add(0, 10.65)

        assert counter.bucket_values(0, 10.65) == [0] * (BUCKETS - 2) + [2, 1]
        assert counter.total(0, 11.55) == 1
        assert counter.total(0, 11.65) == 0

    def test_reset_forgets_every_count(self) -> None:
        """reset() zeroes the window totals and every bucket."""
        counter = RollingCounter(2, WINDOW_MS, BUCKETS)
        counter.add(0, 1.05, amount=3)
        counter.add(1, 1.45, amount=2)

        counter.reset()

        assert counter.totals(1.45) == [0, 0]
        assert counter.bucket_values(0, 1.45) == [0] * BUCKETS
        assert counter.bucket_values(1, 1.45) == [0] * BUCKETS

    def test_counting_after_reset_starts_from_zero(self) -> None:
        """Counts added after reset() are reported alone, and expire as usual."""
        counter = RollingCounter(1, WINDOW_MS, BUCKETS)
        counter.add(0, 1.05, amount=3)
        counter.reset()

        counter.add(0, 1.25)

        assert counter.total(0, 1.25) == 1
        assert counter.total(0, 2.25) == 0

    def test_expiry_after_reset_does_not_go_negative(self) -> None:
        """Buckets emptied by reset() that later expire leave the totals at zero, not below."""
        counter = RollingCounter(1, WINDOW_MS, BUCKETS)
        counter.add(0, 1.05, amount=3)
        counter.reset()

        assert counter.total(0, 1.55) == 0
        assert counter.total(0, 9.0) == 0

    def test_peak_is_the_largest_value_raised_in_the_window(self) -> None:
        """peak() is the largest value noted by raise_peak() in the window."""
        counter = RollingCounter(2, WINDOW_MS, BUCKETS)

        counter.raise_peak(3, 1.05)
        counter.raise_peak(2, 1.05)
        counter.raise_peak(7, 1.25)
        counter.raise_peak(4, 1.45)
        counter.add(1, 1.45)

        assert counter.peak(1.5) == 7
        assert counter.totals(1.5) == [0, 1]

    def test_a_lower_value_does_not_lower_the_peak(self) -> None:
        """Noting a smaller value in the same bucket keeps the bucket's larger peak."""
        counter = RollingCounter(1, WINDOW_MS, BUCKETS)
        counter.raise_peak(5, 2.05)

        counter.raise_peak(1, 2.05)
        counter.add(0, 2.05)

        assert counter.peak(2.05) == 5
        assert not counter.would_raise_peak(5, 2.05)
        assert counter.would_raise_peak(6, 2.05)

    def test_peak_leaves_with_its_bucket(self) -> None:
        """When the bucket holding the peak leaves the window, the next largest shows."""
        counter = RollingCounter(1, WINDOW_MS, BUCKETS)
        counter.raise_peak(9, 1.05)
        counter.raise_peak(4, 1.55)

        assert counter.peak(1.95) == 9
        assert counter.peak(2.05) == 4
        assert counter.peak(2.55) == 0

    def test_would_raise_peak_compares_with_the_newest_bucket(self) -> None:
        """would_raise_peak() compares with the newest bucket's peak, not older buckets'."""
        counter = RollingCounter(1, WINDOW_MS, BUCKETS)
        counter.raise_peak(6, 1.05)

        counter.raise_peak(2, 1.25)

        assert counter.would_raise_peak(3, 1.25)
        assert not counter.would_raise_peak(2, 1.25)
        assert counter.peak(1.25) == 6

    def test_would_raise_peak_in_a_new_bucket(self) -> None:
        """Once time has moved to a newer bucket, any value would be noted there."""
        counter = RollingCounter(1, WINDOW_MS, BUCKETS)
        counter.raise_peak(6, 1.05)

        assert counter.would_raise_peak(1, 30.0)

    def test_cumulative_keeps_counts_that_left_the_window(self) -> None:
        """cumulative() counts everything ever added, in the window or not."""
        counter = RollingCounter(2, WINDOW_MS, BUCKETS)
        counter.add(0, 1.05, amount=3)
        counter.add(0, 1.55)
        counter.add(1, 1.55, amount=2)

        assert counter.total(0, 2.25) == 1
        assert counter.cumulative(0) == 4
        assert counter.total(0, 60.0) == 0
        assert counter.cumulative(0) == 4
        assert counter.cumulative(1) == 2

    def test_carry_cumulative_starts_from_the_old_counters_totals(self) -> None:
        """A replacement counter continues the cumulative counts of the one it replaces."""
        old = RollingCounter(2, WINDOW_MS, BUCKETS)
        old.add(0, 1.05, amount=3)
        old.total(0, 5.0)
        old.add(0, 5.05)
        old.add(1, 5.05, amount=2)

        new = RollingCounter(2, 2000, 4)
        new.carry_cumulative(old)
        new.add(0, 5.05)

        assert new.cumulative(0) == 5
        assert new.cumulative(1) == 2
        assert new.total(0, 5.05) == 1

    def test_carry_cumulative_between_different_numbers_of_kinds(self) -> None:
        """Carrying between counters of different widths carries the kinds both have."""
        wide = RollingCounter(3, WINDOW_MS, BUCKETS)
        wide.add(2, 1.05, amount=5)
        wide.add(0, 1.05)
        narrow = RollingCounter(2, WINDOW_MS, BUCKETS)

        narrow.carry_cumulative(wide)

        assert [narrow.cumulative(kind) for kind in range(2)] == [1, 0]

    def test_reset_of_some_kinds_leaves_the_others(self) -> None:
        """reset(kinds) clears only the kinds named, keeping other counts and the peaks."""
        counter = RollingCounter(3, WINDOW_MS, BUCKETS)
        for now in (1.05, 1.25):
            for kind in range(3):
                counter.add(kind, now)
        counter.raise_peak(4, 1.05)

        counter.reset((1, 2))

        assert counter.totals(1.25) == [2, 0, 0]
        assert counter.bucket_values(1, 1.25) == [0] * BUCKETS
        assert counter.peak(1.25) == 4

    def test_reset_clears_the_peaks(self) -> None:
        """reset() with no kinds clears the peaks as well as the counts."""
        counter = RollingCounter(1, WINDOW_MS, BUCKETS)
        counter.add(0, 1.05)
        counter.raise_peak(8, 1.05)

        counter.reset()

        assert counter.peak(1.05) == 0
        assert counter.would_raise_peak(1, 1.05)

    def test_reset_drops_the_window_from_the_cumulative_counts(self) -> None:
        """Counts cleared by reset() leave the cumulative count; expired ones stay in it."""
        counter = RollingCounter(1, WINDOW_MS, BUCKETS)
        counter.add(0, 1.05, amount=2)
        counter.add(0, 3.05, amount=3)

        counter.reset()

        assert counter.cumulative(0) == 2

    @pytest.mark.parametrize(
        ("window_ms", "num_buckets"),
        [
            (1000, 0),
            (1000, -2),
            (1000, 3),
            (5, 10),
            (0, 1),
            (-100, 10),
        ],
    )
    def test_rejects_windows_that_cannot_be_split_evenly(
        self, window_ms: int, num_buckets: int
    ) -> None:
        """A window that cannot be cut into equal whole-millisecond buckets is refused."""
        with pytest.raises(ValueError, match=rf"{window_ms}.*{num_buckets}"):
            RollingCounter(1, window_ms, num_buckets)

    def test_accepts_one_millisecond_buckets(self) -> None:
        """A window split into buckets of one millisecond each is allowed."""
        counter = RollingCounter(1, 10, 10)
        counter.add(0, 1.0005)

        assert counter.total(0, 1.0095) == 1
        assert counter.total(0, 1.0105) == 0

    def test_memory_does_not_grow_with_the_number_of_records(self) -> None:
        """Recording many events over a long time keeps the counter's memory fixed."""
        counter = RollingCounter(19, 10_000, 10)
        tracemalloc.start()
        try:
            # Warm up: every bucket and every kind holds a count.
            for step in range(200):
                counter.add(step % 19, 100.0 + step * 0.05, amount=1000)
            before = _traced_bytes_in_rolling(tracemalloc.take_snapshot())
            for step in range(50_000):
                counter.add(step % 19, 110.0 + step * 0.003)
                counter.add((step * 7) % 19, 110.0 + step * 0.003)
            after = _traced_bytes_in_rolling(tracemalloc.take_snapshot())
        finally:
            tracemalloc.stop()

        assert after - before < 1024
        assert sum(counter.totals(110.0 + 50_000 * 0.003)) > 0
