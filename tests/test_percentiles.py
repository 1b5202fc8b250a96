"""Rolling latency percentiles: accurate, bounded, and rolling with the clock."""

from __future__ import annotations

import math
import random

import pytest

from hystrixpy.percentiles import BIN_COUNT, RollingPercentile, bin_bounds, bin_of


def exact_percentile(samples: list[int], percent: float) -> int:
    ordered = sorted(samples)
    if percent == 0:
        return ordered[0]
    return ordered[max(math.ceil(percent / 100 * len(ordered)), 1) - 1]


PERCENTS = [0, 25, 50, 75, 90, 95, 99, 99.5, 100]


class TestBins:
    def test_bins_cover_every_value_without_gaps(self) -> None:
        """Consecutive bins meet exactly, so every latency falls in exactly one bin."""
        for index in range(BIN_COUNT - 1):
            assert bin_bounds(index)[1] + 1 == bin_bounds(index + 1)[0]
        assert bin_bounds(0)[0] == 0

    def test_every_value_lies_in_its_bin(self) -> None:
        """bin_of() puts each value in the bin whose bounds hold it."""
        for value in [*range(0, 2000), *range(2000, 600_001, 997)]:
            low, high = bin_bounds(bin_of(value))
            assert low <= value <= high

    def test_negative_values_count_as_zero(self) -> None:
        """A negative latency (a clock that stepped back) lands in the first bin."""
        assert bin_of(-5) == 0

    def test_values_beyond_ten_minutes_share_the_last_bin(self) -> None:
        """Very long latencies go to the last bin instead of growing the histogram."""
        assert bin_of(10_000_000) == BIN_COUNT - 1


class TestAccuracy:
    @pytest.mark.parametrize("seed", [1, 2, 3])
    def test_within_one_ms_or_two_percent_of_exact(self, seed: int) -> None:
        """Every reported percentile is within 1 ms or 2% of the exact one."""
        rng = random.Random(seed)
        samples = [int(rng.lognormvariate(4, 1.6)) for _ in range(20_000)]
        rolling = RollingPercentile(60_000, 6)
        for sample in samples:
            rolling.record(sample, 100.0)
        estimates = rolling.percentiles(PERCENTS, 100.0)
        for percent, estimate in zip(PERCENTS, estimates, strict=True):
            exact = exact_percentile(samples, percent)
            assert abs(estimate - exact) <= max(1, 0.02 * exact), (percent, exact, estimate)

    def test_single_sample(self) -> None:
        """With one sample every percentile is that sample."""
        rolling = RollingPercentile(10_000, 10)
        rolling.record(123, 5.0)
        assert rolling.percentiles(PERCENTS, 5.0) == [123] * len(PERCENTS)
        assert rolling.mean(5.0) == 123

    def test_mean_is_rounded_mean(self) -> None:
        """The mean is the rounded arithmetic mean of the samples."""
        rolling = RollingPercentile(10_000, 10)
        for sample in (1, 2, 4):
            rolling.record(sample, 0.0)
        assert rolling.mean(0.0) == 2
        assert rolling.count(0.0) == 3

    def test_empty_window_reads_zero(self) -> None:
        """With no samples, percentiles and mean are 0."""
        rolling = RollingPercentile(10_000, 10)
        assert rolling.percentile(99, 0.0) == 0
        assert rolling.mean(0.0) == 0

    def test_rejects_a_percentile_out_of_range(self) -> None:
        """Asking for the 101st percentile is a ValueError naming the value."""
        with pytest.raises(ValueError, match="101"):
            RollingPercentile(10_000, 10).percentile(101, 0.0)


class TestRolling:
    def test_samples_leave_with_their_bucket(self) -> None:
        """Samples older than the window no longer count."""
        rolling = RollingPercentile(6_000, 6)
        rolling.record(500, 0.0)
        rolling.record(10, 3.0)
        assert rolling.percentile(100, 3.0) == 500
        assert rolling.percentile(100, 6.5) == 10
        assert rolling.count(6.5) == 1
        assert rolling.count(20.0) == 0

    def test_many_samples_in_one_bin_do_not_overflow(self) -> None:
        """Over 65,535 samples of one value in one bucket are all counted."""
        rolling = RollingPercentile(10_000, 1)
        for _ in range(70_000):
            rolling.record(7, 0.0)
        rolling.record(9, 0.0)
        assert rolling.count(0.0) == 70_001
        assert rolling.percentile(50, 0.0) == 7
        assert rolling.percentile(100, 0.0) == 9

    def test_memory_does_not_grow_with_samples(self) -> None:
        """A bucket's histogram grows only to its highest bin in use, however many samples."""
        rolling = RollingPercentile(10_000, 1)
        rolling.record(5, 0.0)
        (small,) = rolling.current
        assert len(small) == bin_of(5) + 1
        for value in range(100_000):
            rolling.record(value % 5000, 0.0)
        (hist,) = rolling.current
        assert len(hist) == bin_of(4999) + 1
        rolling.record(10**9, 0.0)
        assert len(rolling.current[0]) == BIN_COUNT


def _two_series(samples: list[tuple[float, int, int]], shared: bool) -> RollingPercentile:
    """Two series fed ``samples`` (time, first, second), pairs of equal values shared or not."""
    rolling = RollingPercentile(6_000, 6, series=2)
    for now, first, second in samples:
        if shared and first == second:
            rolling.record_same(first, now)
        else:
            rolling.record_pair(first, second, now)
    return rolling


class TestSharedSamples:
    def test_a_shared_sample_counts_in_every_series(self) -> None:
        rolling = RollingPercentile(10_000, 10, series=2)
        rolling.record_same(40, 0.0)
        rolling.record(10, 0.0, 1)
        assert rolling.count(0.0, 0) == 1
        assert rolling.count(0.0, 1) == 2
        assert rolling.percentile(100, 0.0, 0) == 40
        assert rolling.percentile(0, 0.0, 1) == bin_bounds(bin_of(10))[0] + 1
        assert rolling.mean(0.0, 1) == 25

    def test_a_shared_sample_rolls_out_with_its_bucket_from_every_series(self) -> None:
        rolling = RollingPercentile(6_000, 6, series=2)
        rolling.record_same(500, 0.0)
        rolling.record_pair(10, 20, 3.0)
        assert rolling.percentile(100, 3.0, 0) == 500
        assert rolling.percentile(100, 3.0, 1) == 500
        assert rolling.percentile(100, 6.5, 0) == 10
        assert rolling.percentile(100, 6.5, 1) == 20
        assert rolling.count(6.5, 1) == 1

    @pytest.mark.parametrize("seed", range(5))
    def test_sharing_reads_the_same_as_recording_each_series(self, seed: int) -> None:
        """Across rolls and in the current bucket, sharing changes no reading."""
        rng = random.Random(seed)
        samples = []
        now = 0.0
        for _ in range(3_000):
            now += rng.expovariate(200.0)
            first = int(rng.lognormvariate(2.5, 1.5))
            second = first if rng.random() < 0.7 else first + rng.randrange(0, 50)
            samples.append((now, first, second))
        for cut in (len(samples) // 3, len(samples)):
            shared, separate = _two_series(samples[:cut], True), _two_series(samples[:cut], False)
            at = samples[cut - 1][0]
            for series in (0, 1):
                expected = separate.summary(PERCENTS, at, series)
                assert shared.summary(PERCENTS, at, series) == expected
                assert shared.count(at, series) == separate.count(at, series)

    def test_one_series_shares_with_itself(self) -> None:
        rolling = RollingPercentile(10_000, 10)
        rolling.record_same(7, 0.0)
        rolling.record(9, 0.0)
        assert rolling.count(0.0) == 2
        assert rolling.percentile(100, 0.0) == 9

    def test_a_bucket_past_the_window_when_it_finishes_is_dropped(self) -> None:
        rolling = RollingPercentile(6_000, 6, series=2)
        rolling.record_same(30, 0.0)
        rolling.record_pair(10, 20, 0.5)
        assert rolling.count(60.0, 0) == 0
        assert rolling.percentile(100, 60.0, 1) == 0

    def test_series_are_alike_while_every_sample_in_the_window_is_shared(self) -> None:
        rolling = RollingPercentile(6_000, 6, series=2)
        assert rolling.series_alike(0.0)
        rolling.record_same(30, 0.0)
        rolling.record_same(50, 2.5)
        assert rolling.series_alike(2.5)
        rolling.record(10, 3.0, 1)
        assert not rolling.series_alike(3.0)
        assert not rolling.series_alike(5.0)  # the own sample is in a finished bucket now
        rolling.record_same(40, 5.0)
        assert rolling.series_alike(9.5)  # and that bucket has left the window
        assert rolling.summary(PERCENTS, 9.5, 0) == rolling.summary(PERCENTS, 9.5, 1)
