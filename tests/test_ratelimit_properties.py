"""Property tests of hystrixpy.ratelimit: the bounds each limiter promises, on a fake clock."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from hystrixpy.exceptions import RateLimitExceeded
from hystrixpy.ratelimit import SlidingWindow, TokenBucket
from hystrixpy.testing import FakeClock, use_clock

# Steps of the clock are multiples of 1/8 s, so every time is exact on floats.
EIGHTHS = st.integers(min_value=0, max_value=40).map(lambda eighths: eighths / 8)
HITS = st.lists(st.tuples(EIGHTHS, st.integers(min_value=1, max_value=10)), max_size=60)


def _held(hits: list[tuple[float, int]], window: float, end: float) -> int:
    """How many hits the window (end - window, end] holds."""
    return sum(n for at, n in hits if end - window < at <= end)


def _most_held(hits: list[tuple[float, int]], window: float) -> int:
    """The most hits any window of ``window`` seconds holds (the maximum is at a hit's time)."""
    return max((_held(hits, window, end) for end, _ in hits), default=0)


class TestTokenBucketBound:
    @given(
        capacity=st.integers(min_value=1, max_value=20),
        rate=st.sampled_from([0.5, 1.0, 2.0, 3.0, 4.0, 10.0]),
        steps=st.lists(
            st.tuples(EIGHTHS, st.integers(min_value=1, max_value=20), st.booleans()),
            max_size=40,
        ),
    )
    def test_never_grants_more_than_capacity_plus_rate_times_elapsed(
        self, capacity: int, rate: float, steps: list[tuple[float, int, bool]]
    ) -> None:
        """Over every interval [a, b], the tokens granted are at most capacity + rate x (b - a)."""
        fake = FakeClock(sleep_advances=True)
        bucket = TokenBucket(capacity=capacity, refill_per_second=rate)
        grants: list[tuple[float, int]] = []  # (when the tokens were the caller's, how many)
        with use_clock(fake):
            for advance, wanted, waits in steps:
                fake.advance(advance)
                n = min(wanted, capacity)
                if waits:
                    try:
                        bucket.acquire(n, timeout=2.0)
                    except RateLimitExceeded as refused:
                        assert refused.retry_after > 2.0
                    else:
                        grants.append((fake.monotonic(), n))
                elif bucket.try_acquire(n):
                    grants.append((fake.monotonic(), n))
                else:
                    assert bucket.wait_time(n) > 0.0
        for first, (start, _) in enumerate(grants):
            total = 0
            for end, n in grants[first:]:
                total += n
                assert total <= capacity + rate * (end - start) + 1e-6

    @given(
        capacity=st.integers(min_value=1, max_value=20),
        rate=st.sampled_from([0.5, 1.0, 4.0]),
        steps=st.lists(st.tuples(EIGHTHS, st.integers(min_value=1, max_value=20)), max_size=30),
    )
    def test_the_wait_it_reports_is_enough(
        self, capacity: int, rate: float, steps: list[tuple[float, int]]
    ) -> None:
        """Whenever n tokens are refused, waiting wait_time(n) makes them available."""
        fake = FakeClock()
        bucket = TokenBucket(capacity=capacity, refill_per_second=rate)
        with use_clock(fake):
            for advance, wanted in steps:
                fake.advance(advance)
                n = min(wanted, capacity)
                if not bucket.try_acquire(n):
                    fake.advance(bucket.wait_time(n))
                    assert bucket.try_acquire(n)


class TestSlidingWindowBounds:
    @given(
        limit=st.integers(min_value=1, max_value=10),
        window=st.integers(min_value=1, max_value=8).map(float),
        steps=HITS,
    )
    def test_exact_never_holds_more_than_the_limit(
        self, limit: int, window: float, steps: list[tuple[float, int]]
    ) -> None:
        """Exact mode: no window of window_seconds holds more than limit allowed hits."""
        fake = FakeClock()
        limiter = SlidingWindow(limit=limit, window_seconds=window)
        allowed: list[tuple[float, int]] = []
        with use_clock(fake):
            for advance, wanted in steps:
                fake.advance(advance)
                n = min(wanted, limit)
                now = fake.monotonic()
                decision = limiter.hit("k", n)
                held = _held(allowed, window, now)
                # Exact: it refuses only when the hits would not fit, and says when they will.
                assert decision.allowed == (held + n <= limit)
                if decision.allowed:
                    allowed.append((now, n))
                    assert decision.remaining == limit - held - n
                else:
                    later = now + decision.retry_after
                    assert _held(allowed, window, later) + n <= limit
        assert _most_held(allowed, window) <= limit

    @given(
        limit=st.integers(min_value=1, max_value=10),
        window=st.integers(min_value=1, max_value=8).map(float),
        steps=HITS,
    )
    def test_approximate_stays_within_its_documented_bound(
        self, limit: int, window: float, steps: list[tuple[float, int]]
    ) -> None:
        """Approximate mode: at most 2 x limit - 1 in any window, at most limit per fixed bucket."""
        fake = FakeClock(start=0.0)  # fixed buckets start at multiples of the window
        limiter = SlidingWindow(limit=limit, window_seconds=window, mode="approximate")
        allowed: list[tuple[float, int]] = []
        with use_clock(fake):
            for advance, wanted in steps:
                fake.advance(advance)
                n = min(wanted, limit)
                decision = limiter.hit("k", n)
                if decision.allowed:
                    allowed.append((fake.monotonic(), n))
                else:
                    assert decision.retry_after > 0.0
        assert _most_held(allowed, window) <= 2 * limit - 1
        per_bucket: dict[float, int] = {}
        for at, n in allowed:
            per_bucket[at // window] = per_bucket.get(at // window, 0) + n
        assert all(count <= limit for count in per_bucket.values())

    @given(
        limit=st.integers(min_value=1, max_value=10),
        window=st.integers(min_value=1, max_value=8).map(float),
        steps=HITS,
    )
    def test_approximate_retry_after_is_enough(
        self, limit: int, window: float, steps: list[tuple[float, int]]
    ) -> None:
        """Approximate mode: a refused hit, repeated after retry_after, is allowed."""
        fake = FakeClock(start=0.0)
        limiter = SlidingWindow(limit=limit, window_seconds=window, mode="approximate")
        with use_clock(fake):
            for advance, wanted in steps:
                fake.advance(advance)
                n = min(wanted, limit)
                decision = limiter.hit("k", n)
                if not decision.allowed:
                    fake.advance(decision.retry_after)
                    assert limiter.hit("k", n).allowed
