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

One :class:`RollingPercentile` may keep several series over the same window
(a command's run() latency and the latency its caller saw), so one sample of
each costs one call and one check of the clock. With several series, the
current bucket has one more histogram, for a sample that every series shares
(:meth:`RollingPercentile.record_same`: a caller who waited exactly as long
as run() took): one bin to add to instead of one per series. Readers count it
in every series, and it is folded into each series when its bucket finishes.
Recording touches only the current bucket's histograms: lists, the fastest
to add to, that grow only as far as their highest bin in use (a few dozen
bins for latencies under 100 ms). When time moves past that bucket, its
histogram is added to a running histogram of
the whole window (``array('I')``, 4 bytes a bin) and kept in sparse form
(only the bins it used) until it leaves the window and is subtracted again.
Reading adds the current bucket to the window's histogram. Like
:mod:`hystrixpy.rolling`, this module reads no clock and is not thread-safe
by itself.
"""

from __future__ import annotations

import math
from array import array
from bisect import bisect_left, bisect_right
from itertools import accumulate, zip_longest
from operator import add
from typing import NamedTuple

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


class _Finished(NamedTuple):
    """A finished bucket still in the window, kept small."""

    number: int
    positions: array[int]  # the histogram positions it used (every series together)
    counts: array[int]  # their counts
    sums: tuple[int, ...]
    maxima: tuple[int, ...]
    alike: bool  # every sample was one that all series share


class RollingPercentile:
    """Latency percentiles of ``series`` series over a rolling window of ``num_buckets`` buckets.

    Series are numbered from 0; every reading and :meth:`record` take the
    series as their last argument (0 by default).
    """

    __slots__ = (
        "_finished",
        "_ring",
        "_same",
        "_window",
        "_window_alike",
        "_window_maxima",
        "_window_sums",
        "bucket_end",
        "current",
        "current_maxima",
        "current_same",
        "current_sums",
        "series",
    )

    def __init__(self, window_ms: int, num_buckets: int, series: int = 1) -> None:
        self._ring = BucketRing(window_ms, num_buckets)
        self.series = series
        # The section that holds the samples every series shares: its own one if there are
        # several series, else the single series itself.
        self._same = series if series > 1 else 0
        #: When the current bucket ends (seconds): before it, nothing needs rolling.
        self.bucket_end = float("-inf")
        #: The current bucket's sections: one histogram per series, then the shared one
        #: (``current_same``); and per section the sum and the maximum of its samples (their
        #: count is the histogram's total). A histogram grows to its highest bin in use.
        self.current: list[list[int]] = _empty_sections(series)
        self.current_same = self.current[self._same]
        self.current_sums = [0] * _sections(series)
        self.current_maxima = [0] * _sections(series)
        # Finished buckets in the window, by slot; and the sum of their histograms.
        self._finished: list[_Finished | None] = [None] * num_buckets
        self._window = array("I", [0]) * (BIN_COUNT * series)
        # Per series, the sum and the largest of the finished buckets' samples; and whether
        # all of those samples were shared. Renewed when the window moves.
        self._window_sums = [0] * series
        self._window_maxima = [0] * series
        self._window_alike = True

    def roll(self, now: float) -> None:
        """Move the window to ``now``, if ``now`` is past the current bucket."""
        if now < self.bucket_end:
            return
        ring = self._ring
        finished_number = ring.current
        ring.advance(now)
        self.bucket_end = ring.end
        oldest = ring.oldest
        if any(self.current):
            if finished_number >= oldest:
                self._keep_finished(finished_number % ring.num_buckets, finished_number)
            series = self.series
            self.current = _empty_sections(series)
            self.current_same = self.current[self._same]
            self.current_sums = [0] * _sections(series)
            self.current_maxima = [0] * _sections(series)
        for slot, kept in enumerate(self._finished):
            if kept is not None and kept.number < oldest:
                self._expire(slot)
        kept_now = [kept for kept in self._finished if kept is not None]
        self._window_sums = [
            sum(kept.sums[series] for kept in kept_now) for series in range(self.series)
        ]
        self._window_maxima = [
            max([0, *(kept.maxima[series] for kept in kept_now)]) for series in range(self.series)
        ]
        self._window_alike = all(kept.alike for kept in kept_now)

    def _keep_finished(self, slot: int, number: int) -> None:
        self._expire(slot)
        used: list[int] = []
        used_counts: list[int] = []
        for series in range(self.series):
            base = series * BIN_COUNT
            for index, count in enumerate(self._current_bins(series, BIN_COUNT)):
                if count:
                    used.append(base + index)
                    used_counts.append(count)
        window = self._window
        for index, count in zip(used, used_counts, strict=True):
            total = window[index] + count
            if total > _MAX_UINT32 and window.typecode == "I":  # pragma: no cover - 4e9 samples
                window = self._window = array("Q", window)
            window[index] = total
        sums, maxima = self._current_totals()
        self._finished[slot] = _Finished(
            number,
            array("H", used),
            array("H" if max(used_counts) <= 0xFFFF else "I", used_counts),
            tuple(sums),
            tuple(maxima),
            self._current_alike(),
        )

    def _current_alike(self) -> bool:
        """Whether the current bucket holds shared samples only.

        A series' own histogram grows only when a sample of its own is added.
        """
        current = self.current
        return self._same == 0 or not any(current[series] for series in range(self.series))

    def _current_totals(self) -> tuple[list[int], list[int]]:
        """The current bucket's sum and maximum per series, the shared samples included."""
        sums, maxima, same = self.current_sums, self.current_maxima, self._same
        if not same:
            return sums, maxima
        return (
            [sums[series] + sums[same] for series in range(self.series)],
            [max(maxima[series], maxima[same]) for series in range(self.series)],
        )

    def _current_bins(self, series: int, width: int) -> list[int]:
        """The current bucket's first ``width`` bins of ``series``, the shared samples included."""
        bins = self.current[series][:width]
        if self._same:
            shared = self.current_same[:width]
            bins = [own + both for own, both in zip_longest(bins, shared, fillvalue=0)]
        return bins + [0] * (width - len(bins))

    def _expire(self, slot: int) -> None:
        kept = self._finished[slot]
        if kept is None:
            return
        window = self._window
        for index, count in zip(kept.positions, kept.counts, strict=True):
            window[index] -= count
        self._finished[slot] = None

    def record(self, value_ms: int, now: float, series: int = 0) -> None:
        """Add one sample of ``value_ms`` milliseconds to ``series`` at time ``now``."""
        if now >= self.bucket_end:
            self.roll(now)
        value = value_ms if value_ms > 0 else 0
        index = _DIRECT_BINS[value] if value < _DIRECT else bisect_right(_LOWS, value) - 1
        bins = self.current[series]
        try:
            bins[index] += 1
        except IndexError:
            _add_one(bins, index)
        self.current_sums[series] += value
        if value > self.current_maxima[series]:
            self.current_maxima[series] = value

    def record_pair(self, first_ms: int, second_ms: int, now: float) -> None:
        """Add one sample to series 0 and one to series 1 (the hot path: latencies >= 0)."""
        if now >= self.bucket_end:
            self.roll(now)
        current = self.current
        sums = self.current_sums
        maxima = self.current_maxima
        index = _DIRECT_BINS[first_ms] if first_ms < _DIRECT else bin_of(first_ms)
        bins = current[0]
        try:
            bins[index] += 1
        except IndexError:
            _add_one(bins, index)
        sums[0] += first_ms
        if first_ms > maxima[0]:
            maxima[0] = first_ms
        index = _DIRECT_BINS[second_ms] if second_ms < _DIRECT else bin_of(second_ms)
        bins = current[1]
        try:
            bins[index] += 1
        except IndexError:
            _add_one(bins, index)
        sums[1] += second_ms
        if second_ms > maxima[1]:
            maxima[1] = second_ms

    def record_same(self, value_ms: int, now: float) -> None:
        """Add one sample of ``value_ms`` to every series (the hot path: latency >= 0)."""
        if now >= self.bucket_end:
            self.roll(now)
        index = _DIRECT_BINS[value_ms] if value_ms < _DIRECT else bin_of(value_ms)
        bins = self.current_same
        try:
            bins[index] += 1
        except IndexError:
            _add_one(bins, index)
        same = self._same
        self.current_sums[same] += value_ms
        maxima = self.current_maxima
        if value_ms > maxima[same]:
            maxima[same] = value_ms

    def add_same(self, values: list[int]) -> None:
        """Add samples every series shares to the current bucket, without moving the window.

        For samples its caller knows belong to the current bucket (they were
        taken before :attr:`bucket_end`, and the window has not moved since).
        Latencies are >= 0.
        """
        if not values:
            return
        bins = self.current_same
        same = self._same
        highest = max(values)
        if highest == min(values):  # all alike, as fast calls' whole milliseconds mostly are
            _add_one(bins, bin_of(highest), len(values))
        else:
            for value in values:
                index = _DIRECT_BINS[value] if value < _DIRECT else bin_of(value)
                try:
                    bins[index] += 1
                except IndexError:
                    _add_one(bins, index)
        self.current_sums[same] += sum(values)
        maxima = self.current_maxima
        if highest > maxima[same]:
            maxima[same] = highest

    def series_alike(self, now: float) -> bool:
        """Whether every series holds the same samples over the window: all were shared.

        Then one series' reading answers for all of them.
        """
        self.roll(now)
        return self._window_alike and self._current_alike()

    def count(self, now: float, series: int = 0) -> int:
        """How many samples the window holds."""
        self.roll(now)
        low = series * BIN_COUNT
        return sum(self._window[low : low + BIN_COUNT]) + sum(self._current_bins(series, BIN_COUNT))

    def mean(self, now: float, series: int = 0) -> int:
        """The mean of the window's samples, rounded to whole ms (0 without samples)."""
        return self.summary([], now, series)[1]

    def percentile(self, percent: float, now: float, series: int = 0) -> int:
        """The ``percent`` percentile of the window's samples (0 without samples)."""
        return self.percentiles([percent], now, series)[0]

    def percentiles(self, percents: list[float], now: float, series: int = 0) -> list[int]:
        """Several percentiles at once (one pass over the window's histogram).

        The 100th percentile is the exact maximum; the others come from the
        histogram (the 0th is the midpoint of the lowest bin in use).
        """
        return self.summary(percents, now, series)[0]

    def summary(self, percents: list[float], now: float, series: int = 0) -> tuple[list[int], int]:
        """The ``percents`` percentiles and the mean, from one pass over the histogram."""
        for percent in percents:
            if not 0 <= percent <= 100:
                raise ValueError(f"a percentile must be within 0..100, got {percent!r}")
        self.roll(now)
        sums, maxima, same = self.current_sums, self.current_maxima, self._same
        current_sum, current_max = sums[series], maxima[series]
        if same:  # the shared samples count in this series too
            current_sum += sums[same]
            current_max = max(current_max, maxima[same])
        largest = max(current_max, self._window_maxima[series])
        # No sample lies above the largest one's bin: add up the bins to there, no further.
        width = bin_of(largest) + 1
        low = series * BIN_COUNT
        window = self._window[low : low + width]
        running = list(accumulate(map(add, window, self._current_bins(series, width))))
        count = running[-1]
        if count == 0:
            return [0 for _ in percents], 0
        total = current_sum + self._window_sums[series]
        answers = []
        for percent in percents:
            if percent == 100:
                answers.append(largest)
                continue
            middle = _MIDDLES[bisect_left(running, math.ceil(percent * count / 100.0) or 1)]
            answers.append(middle if middle < largest else largest)
        return answers, round(total / count)


def _add_one(bins: list[int], index: int, count: int = 1) -> None:
    """Add ``count`` (one) to bin ``index``, growing ``bins`` to reach it."""
    if index >= len(bins):
        bins.extend([0] * (index + 1 - len(bins)))
    bins[index] += count


def _sections(series: int) -> int:
    """How many histograms a current bucket has: one per series, and a shared one if several."""
    return series + 1 if series > 1 else 1


def _empty_sections(series: int) -> list[list[int]]:
    return [[] for _ in range(_sections(series))]
