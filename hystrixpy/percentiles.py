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

Counts live in ``array('H')`` (2 bytes a bin), widened to ``array('I')`` only
if a bin passes 65,535. Like :mod:`hystrixpy.rolling`, this
module reads no clock and is not thread-safe by itself.
"""

from __future__ import annotations

import math
from array import array
from bisect import bisect_left, bisect_right
from itertools import accumulate

from hystrixpy.rolling import _Ring

__all__ = ["BIN_COUNT", "RollingPercentile", "bin_bounds", "bin_of"]

_CAP_MS = 600_000


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


def bin_of(value_ms: int) -> int:
    """The bin that holds a latency of ``value_ms`` milliseconds (negative counts as 0)."""
    if value_ms <= 0:
        return 0
    return bisect_right(_LOWS, value_ms) - 1


def bin_bounds(index: int) -> tuple[int, int]:
    """The smallest and largest value (ms) bin ``index`` holds (the last bin: up to the cap)."""
    return _LOWS[index], _HIGHS[index]


class RollingPercentile:
    """Latency percentiles over a rolling window of ``num_buckets`` buckets.

    Besides each bucket's histogram it keeps their sum for the whole window,
    updated as samples arrive and as buckets expire, so reading percentiles
    scans one histogram however many buckets there are.
    """

    __slots__ = ("_counts", "_hists", "_maxima", "_ring", "_slot", "_sums", "_window")

    def __init__(self, window_ms: int, num_buckets: int) -> None:
        self._ring = _Ring(window_ms, num_buckets)
        self._hists: list[array[int] | None] = [None] * num_buckets
        self._window = array("H", [0]) * BIN_COUNT
        self._counts = [0] * num_buckets
        self._sums = [0] * num_buckets
        self._maxima = [0] * num_buckets
        self._slot = 0

    def _roll(self, now: float) -> int:
        ring = self._ring
        bucket = int(now * 1000.0) // ring.bucket_ms
        if bucket != ring.latest:
            for index in ring.advance(bucket):
                self._expire(index)
            self._slot = ring.slot()
        return self._slot

    def _expire(self, index: int) -> None:
        hist = self._hists[index]
        if hist is not None:
            window = self._window
            for position, count in enumerate(hist):
                if count:
                    window[position] -= count
        self._hists[index] = None
        self._counts[index] = self._sums[index] = self._maxima[index] = 0

    def record(self, value_ms: int, now: float) -> None:
        """Add one sample of ``value_ms`` milliseconds at time ``now``."""
        value = value_ms if value_ms > 0 else 0
        ring = self._ring
        slot = self._slot if int(now * 1000.0) // ring.bucket_ms == ring.latest else self._roll(now)
        hist = self._hists[slot]
        if hist is None:
            hist = self._hists[slot] = array("H", [0]) * BIN_COUNT
        index = bisect_right(_LOWS, value) - 1
        try:
            hist[index] += 1
        except OverflowError:
            hist = self._hists[slot] = array("I", hist)
            hist[index] += 1
        try:
            self._window[index] += 1
        except OverflowError:
            self._window = array("I", self._window)
            self._window[index] += 1
        self._counts[slot] += 1
        self._sums[slot] += value
        if value > self._maxima[slot]:
            self._maxima[slot] = value

    def count(self, now: float) -> int:
        """How many samples the window holds."""
        self._roll(now)
        return sum(self._counts)

    def mean(self, now: float) -> int:
        """The mean of the window's samples, rounded to whole ms (0 without samples)."""
        self._roll(now)
        count = sum(self._counts)
        return round(sum(self._sums) / count) if count else 0

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
        self._roll(now)
        count = sum(self._counts)
        if count == 0:
            return [0 for _ in percents]
        largest = max(self._maxima)
        running = list(accumulate(self._window))
        answers = []
        for percent in percents:
            if percent == 100:
                answers.append(largest)
            else:
                rank = max(math.ceil(percent / 100.0 * count), 1)
                answers.append(min(_MIDDLES[bisect_left(running, rank)], largest))
        return answers
