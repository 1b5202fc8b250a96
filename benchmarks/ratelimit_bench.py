"""Row 15: an allowed TokenBucket.try_acquire() against the in-memory check of ``limits``.

The baseline is ``limits``' fixed-window limiter on its ``MemoryStorage``: the
cheapest of its strategies (a lock and a counter per call), so the hardest to
beat. Its moving window is not used: it keeps every hit in a list and inserts
each new one at the front, so its cost grows with the hits it holds and would
flatter hystrixpy. Both sides allow every call: a bucket and a limit far larger
than the calls made. The note gives the keyed limiters against the same baseline.
"""

from __future__ import annotations

from benchmarks.scenarios import Measure, Row, Settings, interleaved
from hystrixpy.ratelimit import KeyedTokenBucket, SlidingWindow, TokenBucket

_PLENTY = 10**9


def row(settings: Settings) -> Row:
    """Time ``bucket.try_acquire()`` against ``FixedWindowRateLimiter.hit(item, key)``."""
    from limits import RateLimitItemPerHour
    from limits.storage import MemoryStorage
    from limits.strategies import FixedWindowRateLimiter

    item = RateLimitItemPerHour(_PLENTY)
    theirs = FixedWindowRateLimiter(MemoryStorage())

    def their_check() -> bool:
        return theirs.hit(item, "client")

    bucket = TokenBucket(capacity=_PLENTY, refill_per_second=1.0)
    cand, base, ratio = interleaved(
        bucket.try_acquire, their_check, settings.fast_calls, settings.rounds
    )
    keyed = KeyedTokenBucket(capacity=_PLENTY, refill_per_second=1.0)
    window = SlidingWindow(limit=_PLENTY, window_seconds=3600, mode="approximate")
    side_rounds = max(settings.rounds // 2, 1)
    keyed_measure, _, keyed_ratio = interleaved(
        lambda: keyed.try_acquire("client"), their_check, settings.fast_calls, side_rounds
    )
    window_measure, _, window_ratio = interleaved(
        lambda: window.hit("client"), their_check, settings.fast_calls, side_rounds
    )
    return Row(
        15,
        "TokenBucket.try_acquire() (allowed)",
        cand,
        "limits FixedWindowRateLimiter.hit(), MemoryStorage",
        base,
        ratio,
        "<= 1.0x",
        ratio <= 1.0,
        note=f"KeyedTokenBucket.try_acquire(key): {_median_us(keyed_measure)} "
        f"({keyed_ratio:.2f}x); approximate SlidingWindow.hit(key), a decision: "
        f"{_median_us(window_measure)} ({window_ratio:.2f}x)",
    )


def _median_us(measure: Measure) -> str:
    return f"{measure.median:.2f} us"
