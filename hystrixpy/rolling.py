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

__all__ = ["RollingCounter", "RollingMax"]


class _Ring:
    """Bucket bookkeeping shared by the counters: which bucket is current."""

    __slots__ = ("_bucket_ms", "_latest", "num_buckets")

    def __init__(self, window_ms: int, num_buckets: int) -> None:
        if num_buckets < 1 or window_ms < num_buckets or window_ms % num_buckets:
            raise ValueError(
                f"a window of {window_ms!r} ms cannot be split into {num_buckets!r} equal buckets"
            )
        self.num_buckets = num_buckets
        self._bucket_ms = window_ms // num_buckets
        self._latest: int | None = None

    @property
    def window_ms(self) -> int:
        """The length of the window in milliseconds."""
        return self._bucket_ms * self.num_buckets

    def roll(self, now: float) -> tuple[int, list[int]]:
        """Return the current bucket's slot and the slots that expired since the last roll."""
        bucket = int(now * 1000.0) // self._bucket_ms
        latest = self._latest
        if latest is None or bucket - latest >= self.num_buckets:
            expired = list(range(self.num_buckets)) if latest is not None else []
        elif bucket > latest:
            expired = [b % self.num_buckets for b in range(latest + 1, bucket + 1)]
        else:
            # Same bucket, or a clock that stepped back: keep counting in the latest.
            return latest % self.num_buckets, []
        self._latest = bucket
        return bucket % self.num_buckets, expired


class RollingCounter:
    """Counts of ``kinds`` different things over a rolling window."""

    __slots__ = ("_buckets", "_ring", "_slot", "_totals", "kinds")

    def __init__(self, kinds: int, window_ms: int, num_buckets: int) -> None:
        self.kinds = kinds
        self._ring = _Ring(window_ms, num_buckets)
        self._buckets = [[0] * kinds for _ in range(num_buckets)]
        self._totals = [0] * kinds
        self._slot = 0

    @property
    def window_ms(self) -> int:
        """The window's length in milliseconds."""
        return self._ring.window_ms

    @property
    def num_buckets(self) -> int:
        """How many buckets the window is split into."""
        return self._ring.num_buckets

    def _roll(self, now: float) -> list[int]:
        slot, expired = self._ring.roll(now)
        if expired:
            totals = self._totals
            for index in expired:
                bucket = self._buckets[index]
                for kind, count in enumerate(bucket):
                    if count:
                        totals[kind] -= count
                        bucket[kind] = 0
        self._slot = slot
        return self._buckets[slot]

    def add(self, kind: int, now: float, amount: int = 1) -> None:
        """Add ``amount`` to ``kind`` at time ``now``."""
        bucket = self._roll(now)
        bucket[kind] += amount
        self._totals[kind] += amount

    def add_each(self, kinds: list[int], now: float) -> None:
        """Add one to each kind in ``kinds`` at time ``now``."""
        bucket = self._roll(now)
        totals = self._totals
        for kind in kinds:
            bucket[kind] += 1
            totals[kind] += 1

    def total(self, kind: int, now: float) -> int:
        """The count of ``kind`` over the window ending at ``now``."""
        self._roll(now)
        return self._totals[kind]

    def totals(self, now: float) -> list[int]:
        """The counts of every kind over the window ending at ``now``."""
        self._roll(now)
        return list(self._totals)

    def bucket_values(self, kind: int, now: float) -> list[int]:
        """The per-bucket counts of ``kind``, oldest first."""
        self._roll(now)
        n = self._ring.num_buckets
        return [self._buckets[(self._slot + 1 + i) % n][kind] for i in range(n)]

    def reset(self) -> None:
        """Forget every count."""
        for bucket in self._buckets:
            for kind in range(self.kinds):
                bucket[kind] = 0
        for kind in range(self.kinds):
            self._totals[kind] = 0


class RollingMax:
    """The largest value seen over a rolling window (for peak concurrency)."""

    __slots__ = ("_maxima", "_ring")

    def __init__(self, window_ms: int, num_buckets: int) -> None:
        self._ring = _Ring(window_ms, num_buckets)
        self._maxima = [0] * num_buckets

    def _roll(self, now: float) -> int:
        slot, expired = self._ring.roll(now)
        for index in expired:
            self._maxima[index] = 0
        return slot

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
