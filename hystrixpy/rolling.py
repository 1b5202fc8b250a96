"""Rolling counters over a time window, in buckets.

A :class:`RollingCounter` counts several kinds of thing (event types, say)
over the last ``window_ms`` milliseconds, kept in ``num_buckets`` buckets.
Recording is O(1): it adds to the current bucket and to running window
totals, and a bucket that falls out of the window is subtracted once, when
time moves past it. Memory is fixed by the bucket count, whatever the rate.

These classes know nothing of commands, and read no clock: callers pass the
current time in seconds (from :mod:`hystrixpy.clock`). They are not
thread-safe by themselves; their owners hold a lock around them.
"""

from __future__ import annotations

from array import array

__all__ = ["RollingCounter", "RollingMax"]


class _Ring:
    """Bucket bookkeeping shared by the counters: which bucket is current."""

    __slots__ = ("bucket_ms", "latest", "num_buckets")

    def __init__(self, window_ms: int, num_buckets: int) -> None:
        if num_buckets < 1 or window_ms < num_buckets or window_ms % num_buckets:
            raise ValueError(
                f"a window of {window_ms!r} ms cannot be split into {num_buckets!r} equal buckets"
            )
        self.num_buckets = num_buckets
        self.bucket_ms = window_ms // num_buckets
        #: The newest bucket number seen (``now_ms // bucket_ms``), -1 before the first.
        self.latest = -1

    @property
    def window_ms(self) -> int:
        """The length of the window in milliseconds."""
        return self.bucket_ms * self.num_buckets

    def bucket_of(self, now: float) -> int:
        """The bucket number of time ``now`` (seconds)."""
        return int(now * 1000.0) // self.bucket_ms

    def advance(self, bucket: int) -> list[int]:
        """Make ``bucket`` the newest; return the slots that expired on the way."""
        latest = self.latest
        if bucket <= latest:
            return []  # a clock that stepped back keeps counting in the newest bucket
        self.latest = bucket
        if latest < 0:
            return []
        if bucket - latest >= self.num_buckets:
            return list(range(self.num_buckets))
        return [b % self.num_buckets for b in range(latest + 1, bucket + 1)]

    def slot(self) -> int:
        """The slot of the newest bucket."""
        return max(self.latest, 0) % self.num_buckets


class RollingCounter:
    """Counts of ``kinds`` different things over a rolling window, and a peak value per bucket.

    The peak (:meth:`raise_peak`, :meth:`peak`) is the largest value noted in
    the window, for things such as the most concurrent executions.
    """

    __slots__ = ("_buckets", "_peaks", "_retired", "_ring", "_slot", "_totals", "kinds")

    def __init__(self, kinds: int, window_ms: int, num_buckets: int) -> None:
        self.kinds = kinds
        self._ring = _Ring(window_ms, num_buckets)
        # Unsigned 32-bit counts per bucket: a bucket is a second or so of one key's events.
        self._buckets = [array("I", [0]) * kinds for _ in range(num_buckets)]
        self._peaks = [0] * num_buckets
        self._totals = [0] * kinds
        self._retired = [0] * kinds  # counts of buckets that left the window
        self._slot = 0

    @property
    def window_ms(self) -> int:
        """The window's length in milliseconds."""
        return self._ring.window_ms

    @property
    def num_buckets(self) -> int:
        """How many buckets the window is split into."""
        return self._ring.num_buckets

    def _roll(self, now: float) -> int:
        ring = self._ring
        bucket = int(now * 1000.0) // ring.bucket_ms
        if bucket != ring.latest:
            expired = ring.advance(bucket)
            if expired:
                totals = self._totals
                retired = self._retired
                for index in expired:
                    counts = self._buckets[index]
                    for kind, count in enumerate(counts):
                        if count:
                            totals[kind] -= count
                            retired[kind] += count
                            counts[kind] = 0
                    self._peaks[index] = 0
            self._slot = ring.slot()
        return self._slot

    def add(self, kind: int, now: float, amount: int = 1) -> None:
        """Add ``amount`` to ``kind`` at time ``now``."""
        self._buckets[self._roll(now)][kind] += amount
        self._totals[kind] += amount

    def add_each(self, kinds: list[int], now: float, peak: int = 0) -> None:
        """Add one to each kind in ``kinds`` at time ``now``, and note ``peak``."""
        slot = self._roll(now)
        bucket = self._buckets[slot]
        totals = self._totals
        for kind in kinds:
            bucket[kind] += 1
            totals[kind] += 1
        if peak > self._peaks[slot]:
            self._peaks[slot] = peak

    def raise_peak(self, value: int, now: float) -> None:
        """Note ``value`` at time ``now`` for :meth:`peak`."""
        slot = self._roll(now)
        if value > self._peaks[slot]:
            self._peaks[slot] = value

    def would_raise_peak(self, value: int, now: float) -> bool:
        """Whether :meth:`raise_peak` would change anything (cheap: no rolling, no writes)."""
        return (
            value > self._peaks[self._slot]
            or int(now * 1000.0) // self._ring.bucket_ms != self._ring.latest
        )

    def peak(self, now: float) -> int:
        """The largest value noted in the window ending at ``now``."""
        self._roll(now)
        return max(self._peaks)

    def total(self, kind: int, now: float) -> int:
        """The count of ``kind`` over the window ending at ``now``."""
        self._roll(now)
        return self._totals[kind]

    def totals(self, now: float) -> list[int]:
        """The counts of every kind over the window ending at ``now``."""
        self._roll(now)
        return list(self._totals)

    def cumulative(self, kind: int) -> int:
        """Everything ever added to ``kind`` (kinds cleared by :meth:`reset` excepted)."""
        return self._retired[kind] + self._totals[kind]

    def carry_cumulative(self, other: RollingCounter) -> None:
        """Start this counter's cumulative counts from ``other``'s (when a window is replaced)."""
        for kind in range(min(self.kinds, other.kinds)):
            self._retired[kind] += other.cumulative(kind)

    def bucket_values(self, kind: int, now: float) -> list[int]:
        """The per-bucket counts of ``kind``, oldest first."""
        slot = self._roll(now)
        n = self._ring.num_buckets
        return [self._buckets[(slot + 1 + i) % n][kind] for i in range(n)]

    def reset(self, kinds: tuple[int, ...] | None = None) -> None:
        """Forget the rolling counts of ``kinds`` (every kind and the peaks by default).

        Their cumulative counts lose what the window held.
        """
        chosen = range(self.kinds) if kinds is None else kinds
        for bucket in self._buckets:
            for kind in chosen:
                bucket[kind] = 0
        for kind in chosen:
            self._totals[kind] = 0
        if kinds is None:
            for index in range(len(self._peaks)):
                self._peaks[index] = 0


class RollingMax:
    """The largest value seen over a rolling window (for peak concurrency)."""

    __slots__ = ("_maxima", "_ring")

    def __init__(self, window_ms: int, num_buckets: int) -> None:
        self._ring = _Ring(window_ms, num_buckets)
        self._maxima = [0] * num_buckets

    def _roll(self, now: float) -> int:
        ring = self._ring
        for index in ring.advance(ring.bucket_of(now)):
            self._maxima[index] = 0
        return ring.slot()

    def update(self, value: int, now: float) -> None:
        """Note ``value`` at time ``now``."""
        slot = self._roll(now)
        self._maxima[slot] = max(self._maxima[slot], value)

    def max(self, now: float) -> int:
        """The largest value noted in the window ending at ``now``."""
        self._roll(now)
        return max(self._maxima)

    def reset(self) -> None:
        """Forget every value."""
        for index in range(len(self._maxima)):
            self._maxima[index] = 0
