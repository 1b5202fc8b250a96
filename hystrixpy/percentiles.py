"""Rolling latency percentiles in bounded memory.

A :class:`RollingPercentile` keeps, for each bucket of its window, a
histogram of integer-millisecond latencies. Recording finds the sample's bin
(O(1)) and adds one; memory depends on the bin count, never on the request
rate. Percentiles are read by summing the buckets' histograms.

Each bin is as wide as it can be while its midpoint stays within 1 ms, or
within 2% of its smallest value (whichever is larger), of every value in it:
three values wide below 100 ms, then about 4% wider per bin, up to ten minutes
(longer samples share the last bin; the exact maximum is kept apart). So a
percentile read from the histogram is within 1 ms or 2% (whichever is larger)
of the exact nearest-rank percentile of the same samples, for samples up to
ten minutes.

Recording touches only the current bucket's histogram, an ``array('H')``
(2 bytes a bin, widened to ``array('I')`` only if a bin passes 65,535). When
time moves past that bucket, its histogram is added to a running histogram of
the whole window and kept in sparse form (only the bins it used) until it
leaves the window and is subtracted again. Reading adds the current bucket to
the window's histogram. Like :mod:`hystrixpy.rolling`, this module reads no
clock and is not thread-safe by itself.
"""

from __future__ import annotations

import math
from array import array
from bisect import bisect_left, bisect_right
from itertools import accumulate
from operator import add

from hystrixpy.rolling import BucketRing

__all__ = ["BIN_COUNT", "RollingPercentile", "bin_bounds", "bin_of"]

_CAP_MS = 600_000
_MAX_UINT32 = 0xFFFFFFFF


def _bin_lows() -> list[int]:
    """Each bin's smallest value: a bin spans at most twice the error its midpoint may have."""
    lows = []
    low = 0
    while low <= _CAP_MS:
        lows.append(low)
        allowed_error = max(1, (2 * low) // 100)
        low += 2 * allowed_error + 1
    return lows


_LOWS = _bin_lows()
#: How many bins a histogram has.
BIN_COUNT = len(_LOWS)
_LAST_BIN = BIN_COUNT - 1
_HIGHS = [*(low - 1 for low in _LOWS[1:]), _CAP_MS]
_MIDDLES = [low + (high - low) // 2 for low, high in zip(_LOWS, _HIGHS, strict=True)]


# The bins of the commonest latencies, looked up directly rather than searched for.
_DIRECT = 4096
_DIRECT_BINS = [bisect_right(_LOWS, value) - 1 for value in range(_DIRECT)]


def bin_of(value_ms: int) -> int:
    """The bin that holds a latency of ``value_ms`` milliseconds (negative counts as 0)."""
    if value_ms <= 0:
        return 0
    if value_ms < _DIRECT:
        return _DIRECT_BINS[value_ms]
    return bisect_right(_LOWS, value_ms) - 1


def bin_bounds(index: int) -> tuple[int, int]:
    """The smallest and largest value (ms) bin ``index`` holds (the last bin: up to the cap)."""
    return _LOWS[index], _HIGHS[index]


class RollingPercentile:
    """Latency percentiles over a rolling window of ``num_buckets`` buckets."""

    __slots__ = (
        "_finished",
        "_finished_counts",
        "_finished_maxima",
        "_finished_numbers",
        "_finished_sums",
        "_ring",
        "_window",
        "current",
        "current_count",
        "current_max",
        "current_sum",
    )

    def __init__(self, window_ms: int, num_buckets: int) -> None:
        self._ring = BucketRing(window_ms, num_buckets)
        #: The current bucket's histogram, and its sample count, sum and maximum.
        self.current = _empty_histogram()
        self.current_count = 0
        self.current_sum = 0
        self.current_max = 0
        # Finished buckets in the window, by slot: their used bins and counts (sparse),
        # numbers, sample counts, sums and maxima; and the sum of their histograms.
        self._finished: list[tuple[array[int], array[int]] | None] = [None] * num_buckets
        self._finished_numbers = [0] * num_buckets
        self._finished_counts = [0] * num_buckets
        self._finished_sums = [0] * num_buckets
        self._finished_maxima = [0] * num_buckets
        self._window = array("I", [0]) * BIN_COUNT

    def roll(self, now: float) -> None:
        """Move the window to ``now``, if ``now`` is past the current bucket."""
        ring = self._ring
        if now < ring.end:
            return
        finished_number = ring.current
        ring.advance(now)
        oldest = ring.oldest
        if self.current_count:
            if finished_number >= oldest:
                self._keep_finished(finished_number % ring.num_buckets, finished_number)
            self.current = _empty_histogram()
            self.current_count = self.current_sum = self.current_max = 0
        numbers = self._finished_numbers
        for slot, kept in enumerate(self._finished):
            if kept is not None and numbers[slot] < oldest:
                self._expire(slot)

    def _keep_finished(self, slot: int, number: int) -> None:
        self._expire(slot)
        used = [index for index, count in enumerate(self.current) if count]
        counts = array("I", [self.current[index] for index in used])
        window = self._window
        for index, count in zip(used, counts, strict=True):
            total = window[index] + count
            if total > _MAX_UINT32 and window.typecode == "I":  # pragma: no cover - 4e9 samples
                window = self._window = array("Q", window)
            window[index] = total
        self._finished[slot] = (array("H", used), counts)
        self._finished_numbers[slot] = number
        self._finished_counts[slot] = self.current_count
        self._finished_sums[slot] = self.current_sum
        self._finished_maxima[slot] = self.current_max

    def _expire(self, slot: int) -> None:
        kept = self._finished[slot]
        if kept is None:
            return
        window = self._window
        for index, count in zip(*kept, strict=True):
            window[index] -= count
        self._finished[slot] = None
        self._finished_counts[slot] = self._finished_sums[slot] = self._finished_maxima[slot] = 0

    def record(self, value_ms: int, now: float) -> None:
        """Add one sample of ``value_ms`` milliseconds at time ``now``."""
        if now >= self._ring.end:
            self.roll(now)
        value = value_ms if value_ms > 0 else 0
        index = _DIRECT_BINS[value] if value < _DIRECT else bisect_right(_LOWS, value) - 1
        try:
            self.current[index] += 1
        except OverflowError:
            self.current = array("I", self.current)
            self.current[index] += 1
        self.current_count += 1
        self.current_sum += value
        if value > self.current_max:
            self.current_max = value

    def count(self, now: float) -> int:
        """How many samples the window holds."""
        self.roll(now)
        return self.current_count + sum(self._finished_counts)

    def mean(self, now: float) -> int:
        """The mean of the window's samples, rounded to whole ms (0 without samples)."""
        count = self.count(now)
        total = self.current_sum + sum(self._finished_sums)
        return round(total / count) if count else 0

    def percentile(self, percent: float, now: float) -> int:
        """The ``percent`` percentile of the window's samples (0 without samples)."""
        return self.percentiles([percent], now)[0]

    def percentiles(self, percents: list[float], now: float) -> list[int]:
        """Several percentiles at once (one pass over the window's histogram).

        The 100th percentile is the exact maximum; the others come from the
        histogram (the 0th is the midpoint of the lowest bin in use).
        """
        for percent in percents:
            if not 0 <= percent <= 100:
                raise ValueError(f"a percentile must be within 0..100, got {percent!r}")
        count = self.count(now)
        if count == 0:
            return [0 for _ in percents]
        largest = max(self.current_max, *self._finished_maxima)
        running = list(accumulate(map(add, self._window, self.current)))
        answers = []
        for percent in percents:
            if percent == 100:
                answers.append(largest)
            else:
                rank = max(math.ceil(percent / 100.0 * count), 1)
                answers.append(min(_MIDDLES[bisect_left(running, rank)], largest))
        return answers


def _empty_histogram() -> array[int]:
    return array("H", bytes(2 * BIN_COUNT))
