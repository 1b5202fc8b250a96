"""Rolling counters over a time window, in buckets.

A :class:`RollingCounter` counts several kinds of thing (event types, say)
over the last ``window_ms`` milliseconds, kept in ``num_buckets`` buckets.

Recording is O(1) and touches only the *current* bucket, a plain list of
counts, after one float comparison that tells whether time has moved past it.
When it has, the finished bucket is packed into a compact array and added to
running totals of the finished buckets still in the window, and buckets that
fell out of the window are subtracted from them, once each. Reading adds the
current bucket to those totals. Memory is fixed by the bucket count, whatever
the rate.

These classes know nothing of commands, and read no clock: callers pass the
current time in seconds (from :mod:`hystrixpy.clock`). They are not
thread-safe by themselves; their owners hold a lock around them.
"""

from __future__ import annotations

from array import array
from operator import add

__all__ = ["BucketRing", "RollingCounter"]


class BucketRing:
    """Which bucket of a window is the current one, and when it ends.

    Buckets are numbered ``now_ms // bucket_ms``; bucket ``n`` lives in slot
    ``n % num_buckets``. ``end`` is the time (seconds) at which the current
    bucket is over: a reading before it needs no rolling at all. A clock
    that steps back keeps counting in the current bucket.
    """

    __slots__ = ("bucket_ms", "current", "end", "num_buckets")

    def __init__(self, window_ms: int, num_buckets: int) -> None:
        if num_buckets < 1 or window_ms < num_buckets or window_ms % num_buckets:
            raise ValueError(
                f"a window of {window_ms!r} ms cannot be split into {num_buckets!r} equal buckets"
            )
        self.num_buckets = num_buckets
        self.bucket_ms = window_ms // num_buckets
        #: The current bucket's number; far in the past before the first reading.
        self.current = -(1 << 62)
        #: When the current bucket ends, in seconds.
        self.end = float("-inf")

    @property
    def window_ms(self) -> int:
        """The length of the window in milliseconds."""
        return self.bucket_ms * self.num_buckets

    def advance(self, now: float) -> None:
        """Make the bucket of ``now`` current (call it once ``now >= end``)."""
        bucket = int(now * 1000.0) // self.bucket_ms
        if bucket <= self.current:  # ``now`` rounded down onto the bucket that just ended
            bucket = self.current + 1
        self.current = bucket
        self.end = (bucket + 1) * self.bucket_ms / 1000.0

    @property
    def oldest(self) -> int:
        """The number of the oldest bucket in the window."""
        return self.current - self.num_buckets + 1


class RollingCounter:
    """Counts of ``kinds`` different things over a rolling window, and a peak value per bucket.

    The peak (:meth:`raise_peak`, :meth:`peak`) is the largest value noted in
    the window, for things such as the most concurrent executions.
    """

    __slots__ = (
        "_finished",
        "_finished_numbers",
        "_finished_peaks",
        "_finished_totals",
        "_retired",
        "_ring",
        "bucket_end",
        "current",
        "current_peak",
        "kinds",
    )

    def __init__(self, kinds: int, window_ms: int, num_buckets: int) -> None:
        self.kinds = kinds
        self._ring = BucketRing(window_ms, num_buckets)
        #: The current bucket's counts, one per kind: add to them directly after :meth:`roll`.
        self.current = [0] * kinds
        #: The current bucket's peak.
        self.current_peak = 0
        #: When the current bucket ends (seconds): before it, :meth:`roll` has nothing to do.
        self.bucket_end = float("-inf")
        # Finished buckets, by slot: packed counts (None when empty), their numbers, their peaks.
        self._finished: list[array[int] | None] = [None] * num_buckets
        self._finished_numbers = [-1] * num_buckets
        self._finished_peaks = [0] * num_buckets
        # Sums of the finished buckets still in the window, and of every bucket that left it.
        self._finished_totals = [0] * kinds
        self._retired = [0] * kinds

    @property
    def window_ms(self) -> int:
        """The window's length in milliseconds."""
        return self._ring.window_ms

    @property
    def num_buckets(self) -> int:
        """How many buckets the window is split into."""
        return self._ring.num_buckets

    def roll(self, now: float) -> None:
        """Move the window to ``now``, if ``now`` is past the current bucket."""
        if now < self.bucket_end:
            return
        ring = self._ring
        finished_number = ring.current
        ring.advance(now)
        self.bucket_end = ring.end
        oldest = ring.oldest
        counts = self.current
        if any(counts) or self.current_peak:
            if finished_number >= oldest:
                slot = finished_number % ring.num_buckets
                self._expire(slot)
                try:
                    packed = array("I", counts)
                except OverflowError:
                    packed = array("Q", counts)
                self._finished[slot] = packed
                self._finished_numbers[slot] = finished_number
                self._finished_peaks[slot] = self.current_peak
                totals = self._finished_totals
            else:  # the clock jumped past the whole window: straight to the retired counts
                totals = self._retired
            for kind, count in enumerate(counts):
                if count:
                    totals[kind] += count
            self.current = [0] * self.kinds
            self.current_peak = 0
        numbers = self._finished_numbers
        for slot, kept in enumerate(self._finished):
            if kept is not None and numbers[slot] < oldest:
                self._expire(slot)

    def _expire(self, slot: int) -> None:
        packed = self._finished[slot]
        if packed is not None:
            totals = self._finished_totals
            retired = self._retired
            for kind, count in enumerate(packed):
                if count:
                    totals[kind] -= count
                    retired[kind] += count
            self._finished[slot] = None
        self._finished_peaks[slot] = 0

    def add(self, kind: int, now: float, amount: int = 1) -> None:
        """Add ``amount`` to ``kind`` at time ``now``."""
        if now >= self.bucket_end:
            self.roll(now)
        self.current[kind] += amount

    def raise_peak(self, value: int, now: float) -> None:
        """Note ``value`` at time ``now`` for :meth:`peak`."""
        if now >= self.bucket_end:
            self.roll(now)
        if value > self.current_peak:
            self.current_peak = value

    def would_raise_peak(self, value: int, now: float) -> bool:
        """Whether :meth:`raise_peak` would change anything (cheap: no rolling, no writes)."""
        return value > self.current_peak or now >= self.bucket_end

    def peak(self, now: float) -> int:
        """The largest value noted in the window ending at ``now``."""
        self.roll(now)
        return max(self.current_peak, *self._finished_peaks)

    def total(self, kind: int, now: float) -> int:
        """The count of ``kind`` over the window ending at ``now``."""
        self.roll(now)
        return self._finished_totals[kind] + self.current[kind]

    def totals(self, now: float) -> list[int]:
        """The counts of every kind over the window ending at ``now``."""
        self.roll(now)
        return list(map(add, self._finished_totals, self.current))

    def cumulative(self, kind: int) -> int:
        """Everything ever added to ``kind`` (kinds cleared by :meth:`reset` excepted)."""
        return self._retired[kind] + self._finished_totals[kind] + self.current[kind]

    def carry_cumulative(self, other: RollingCounter) -> None:
        """Start this counter's cumulative counts from ``other``'s (when a window is replaced)."""
        for kind in range(min(self.kinds, other.kinds)):
            self._retired[kind] += other.cumulative(kind)

    def bucket_values(self, kind: int, now: float) -> list[int]:
        """The per-bucket counts of ``kind``, oldest first."""
        self.roll(now)
        ring = self._ring
        num_buckets = ring.num_buckets
        values = []
        for number in range(ring.oldest, ring.current):
            slot = number % num_buckets
            packed = self._finished[slot]
            held = packed is not None and self._finished_numbers[slot] == number
            values.append(packed[kind] if held and packed is not None else 0)
        values.append(self.current[kind])
        return values

    def reset(self, kinds: tuple[int, ...] | None = None) -> None:
        """Forget the rolling counts of ``kinds`` (every kind and the peaks by default).

        Their cumulative counts lose what the window held.
        """
        chosen = range(self.kinds) if kinds is None else kinds
        for packed in self._finished:
            if packed is not None:
                for kind in chosen:
                    packed[kind] = 0
        for kind in chosen:
            self._finished_totals[kind] = 0
            self.current[kind] = 0
        if kinds is None:
            self.current_peak = 0
            for slot in range(len(self._finished_peaks)):
                self._finished_peaks[slot] = 0
