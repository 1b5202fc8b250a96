"""Tests for hystrixpy.ratelimit: token buckets, sliding windows, decisions, stores, threads."""

from __future__ import annotations

import dataclasses
import math
import pickle
import threading
from collections.abc import Hashable, Iterator

import pytest

from hystrixpy import clock, deadline
from hystrixpy.exceptions import HystrixError, RateLimitExceeded
from hystrixpy.ratelimit import (
    KeyedRateLimiter,
    KeyedTokenBucket,
    MemoryStore,
    RateLimitDecision,
    RateLimiter,
    RateLimitStore,
    SlidingWindow,
    SlidingWindowPolicy,
    TokenBucket,
    TokenBucketPolicy,
    WindowMode,
)
from hystrixpy.testing import FakeClock, use_clock

WALL = 1_700_000_000.0  # FakeClock's wall time at its start (monotonic 1000.0)


@pytest.fixture
def sleepy() -> Iterator[FakeClock]:
    """A fake clock whose sleeps move it on at once, installed for the test."""
    fake = FakeClock(sleep_advances=True)
    with use_clock(fake):
        yield fake


class SignallingClock(FakeClock):
    """A fake clock that tells the test when a thread has started to sleep on it."""

    def __init__(self) -> None:
        super().__init__()
        self.sleeping = threading.Semaphore(0)

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.sleeping.release()
        never = threading.Lock()
        never.acquire()
        self.wait(never, seconds)


class RecordingStore:
    """A RateLimitStore that records each call and hands it on to a MemoryStore."""

    def __init__(self) -> None:
        self.inner = MemoryStore()
        self.calls: list[tuple[str, tuple[object, ...]]] = []

    def take(
        self,
        key: Hashable,
        tokens: int,
        capacity: int,
        refill_per_second: float,
        now: float,
        max_wait: float,
        peek: bool,
    ) -> tuple[bool, float, float]:
        args = (key, tokens, capacity, refill_per_second, now, max_wait, peek)
        self.calls.append(("take", args))
        return self.inner.take(*args)

    def hit(
        self,
        key: Hashable,
        n: int,
        limit: int,
        window_seconds: float,
        now: float,
        mode: WindowMode,
        peek: bool,
    ) -> tuple[bool, float, float, float]:
        args = (key, n, limit, window_seconds, now, mode, peek)
        self.calls.append(("hit", args))
        return self.inner.hit(key, n, limit, window_seconds, now, mode, peek)


# -- policies ---------------------------------------------------------------------------


class TestTokenBucketPolicy:
    def test_holds_its_options(self) -> None:
        """The policy keeps capacity and rate (as a float) and knows how long a fill takes."""
        policy = TokenBucketPolicy(capacity=100, refill_per_second=10)

        assert policy.capacity == 100
        assert policy.refill_per_second == 10.0
        assert type(policy.refill_per_second) is float
        assert policy.seconds_to_fill == 10.0

    def test_is_immutable(self) -> None:
        """A policy cannot be changed in place; dataclasses.replace makes a checked copy."""
        policy = TokenBucketPolicy(capacity=5, refill_per_second=1)

        with pytest.raises(dataclasses.FrozenInstanceError):
            policy.capacity = 6  # type: ignore[misc]
        assert dataclasses.replace(policy, capacity=6).capacity == 6
        with pytest.raises(ValueError, match=r"capacity must be >= 1, got 0"):
            dataclasses.replace(policy, capacity=0)

    @pytest.mark.parametrize(
        ("option", "value", "error", "message"),
        [
            ("capacity", 0, ValueError, r"TokenBucket capacity must be >= 1, got 0"),
            ("capacity", -3, ValueError, r"TokenBucket capacity must be >= 1, got -3"),
            ("capacity", 2.5, TypeError, r"TokenBucket capacity must be an int, got 2\.5"),
            ("capacity", True, TypeError, r"TokenBucket capacity must be an int, got True"),
            ("capacity", "10", TypeError, r"TokenBucket capacity must be an int, got '10'"),
            ("refill_per_second", 0, ValueError, r"refill_per_second must be > 0, got 0"),
            ("refill_per_second", -1.5, ValueError, r"refill_per_second must be > 0, got -1\.5"),
            ("refill_per_second", math.nan, ValueError, r"refill_per_second must be > 0, got nan"),
            (
                "refill_per_second",
                math.inf,
                ValueError,
                r"refill_per_second must be finite, got inf",
            ),
            (
                "refill_per_second",
                "10",
                TypeError,
                r"refill_per_second must be a number, got '10'",
            ),
            ("refill_per_second", None, TypeError, r"refill_per_second must be a number, got None"),
            ("refill_per_second", False, TypeError, r"refill_per_second must be a number"),
        ],
    )
    def test_a_bad_option_names_itself_and_its_value(
        self, option: str, value: object, error: type[Exception], message: str
    ) -> None:
        """Building a bucket with a bad option fails at once, naming the option and the value."""
        options: dict[str, object] = {"capacity": 10, "refill_per_second": 1.0, option: value}

        with pytest.raises(error, match=message):
            TokenBucket(**options)  # type: ignore[arg-type]
        with pytest.raises(error, match=message):
            KeyedTokenBucket(**options)  # type: ignore[arg-type]

    def test_options_are_keyword_only(self) -> None:
        """TokenBucket(100, 10) is refused: the two numbers are easy to swap, so both are named."""
        with pytest.raises(TypeError):
            TokenBucket(100, 10)  # type: ignore[call-arg]

    @pytest.mark.parametrize(
        ("name", "error", "message"),
        [
            ("", ValueError, r"TokenBucket name must not be empty"),
            (7, TypeError, r"TokenBucket name must be a str, got 7"),
        ],
    )
    def test_a_bad_name_is_refused(
        self, name: object, error: type[Exception], message: str
    ) -> None:
        """The name is a non-empty str (it is the bucket's key in a shared store)."""
        with pytest.raises(error, match=message):
            TokenBucket(capacity=1, refill_per_second=1, name=name)  # type: ignore[arg-type]


class TestSlidingWindowPolicy:
    def test_holds_its_options(self) -> None:
        """The policy keeps limit, window (as a float) and mode, exact by default."""
        policy = SlidingWindowPolicy(limit=100, window_seconds=60)

        assert (policy.limit, policy.window_seconds, policy.mode) == (100, 60.0, "exact")
        assert type(policy.window_seconds) is float
        assert SlidingWindow(limit=1, window_seconds=1, mode="approximate").policy.mode == (
            "approximate"
        )

    @pytest.mark.parametrize(
        ("option", "value", "error", "message"),
        [
            ("limit", 0, ValueError, r"SlidingWindow limit must be >= 1, got 0"),
            ("limit", 1.5, TypeError, r"SlidingWindow limit must be an int, got 1\.5"),
            ("limit", None, TypeError, r"SlidingWindow limit must be an int, got None"),
            ("window_seconds", 0, ValueError, r"window_seconds must be > 0, got 0"),
            ("window_seconds", -60, ValueError, r"window_seconds must be > 0, got -60"),
            ("window_seconds", math.nan, ValueError, r"window_seconds must be > 0, got nan"),
            ("window_seconds", math.inf, ValueError, r"window_seconds must be finite, got inf"),
            ("window_seconds", "60", TypeError, r"window_seconds must be a number, got '60'"),
            (
                "mode",
                "fuzzy",
                ValueError,
                r"mode must be 'exact' or 'approximate', got 'fuzzy'",
            ),
        ],
    )
    def test_a_bad_option_names_itself_and_its_value(
        self, option: str, value: object, error: type[Exception], message: str
    ) -> None:
        """Building a window with a bad option fails at once, naming the option and the value."""
        options: dict[str, object] = {"limit": 10, "window_seconds": 60, option: value}

        with pytest.raises(error, match=message):
            SlidingWindow(**options)  # type: ignore[arg-type]


# -- the token bucket -------------------------------------------------------------------


class TestTokenBucket:
    def test_a_burst_up_to_capacity_then_refusals(self, fake_clock: FakeClock) -> None:
        """A new bucket is full: capacity requests pass at once, the next is refused."""
        bucket = TokenBucket(capacity=5, refill_per_second=1)

        assert [bucket.try_acquire() for _ in range(6)] == [True] * 5 + [False]

    def test_refills_at_the_rate(self, fake_clock: FakeClock) -> None:
        """An empty bucket at 10/s has one token after 0.1 s, and three after 0.3 s."""
        bucket = TokenBucket(capacity=10, refill_per_second=10)
        for _ in range(10):
            bucket.try_acquire()

        fake_clock.advance(0.1)
        assert [bucket.try_acquire() for _ in range(2)] == [True, False]
        fake_clock.advance(0.3)
        assert [bucket.try_acquire() for _ in range(4)] == [True, True, True, False]

    def test_float_rounding_does_not_refuse_a_due_token(self, fake_clock: FakeClock) -> None:
        """From 1000.0 to 1000.3 is 0.29999... s on floats; the three tokens due are granted."""
        bucket = TokenBucket(capacity=3, refill_per_second=10)
        for _ in range(3):
            bucket.try_acquire()
        fake_clock.advance(0.3)

        assert fake_clock.monotonic() - 1000.0 < 0.3
        assert [bucket.try_acquire() for _ in range(4)] == [True, True, True, False]

    def test_never_holds_more_than_capacity(self, fake_clock: FakeClock) -> None:
        """A long idle spell fills the bucket only up to its capacity."""
        bucket = TokenBucket(capacity=3, refill_per_second=100)
        fake_clock.advance(3600)

        assert [bucket.try_acquire() for _ in range(4)] == [True, True, True, False]

    def test_n_tokens_at_once(self, fake_clock: FakeClock) -> None:
        """try_acquire(n) takes n tokens or none."""
        bucket = TokenBucket(capacity=10, refill_per_second=1)

        assert bucket.try_acquire(7) is True
        assert bucket.try_acquire(4) is False
        assert bucket.try_acquire(3) is True
        assert bucket.try_acquire() is False

    def test_more_than_capacity_is_an_error(self, fake_clock: FakeClock) -> None:
        """Asking for more tokens than the bucket holds could never succeed: ValueError."""
        bucket = TokenBucket(capacity=10, refill_per_second=1, name="api")
        message = r"n=11 is more than the capacity 10 of TokenBucket 'api'"

        for call in (bucket.try_acquire, bucket.wait_time, bucket.hit, bucket.peek, bucket.acquire):
            with pytest.raises(ValueError, match=message):
                call(11)

    @pytest.mark.parametrize(
        ("n", "error", "message"),
        [
            (0, ValueError, r"n must be >= 1, got 0"),
            (-2, ValueError, r"n must be >= 1, got -2"),
            (1.5, TypeError, r"n must be an int, got 1\.5"),
            ("2", TypeError, r"n must be an int, got '2'"),
        ],
    )
    def test_a_bad_n_is_refused(self, n: object, error: type[Exception], message: str) -> None:
        """n is a whole number of tokens, at least 1."""
        bucket = TokenBucket(capacity=10, refill_per_second=1)

        with pytest.raises(error, match=message):
            bucket.try_acquire(n)  # type: ignore[arg-type]

    def test_wait_time(self, fake_clock: FakeClock) -> None:
        """wait_time(n) is 0 while n tokens are there, then the seconds until they will be."""
        bucket = TokenBucket(capacity=4, refill_per_second=2)

        assert bucket.wait_time() == 0.0
        bucket.try_acquire(4)
        assert bucket.wait_time() == 0.5
        assert bucket.wait_time(3) == 1.5
        fake_clock.advance(0.5)
        assert bucket.wait_time() == 0.0

    def test_reads_the_clock_installed_at_call_time(self) -> None:
        """A clock installed after the bucket was made is the one it refills by."""
        bucket = TokenBucket(capacity=1, refill_per_second=1)
        fake = FakeClock(start=10**9)  # far after the system clock's monotonic time
        with use_clock(fake):
            assert bucket.try_acquire() is True
            assert bucket.try_acquire() is False
            fake.advance(1.0)
            assert bucket.try_acquire() is True

    def test_a_clock_going_back_does_not_freeze_refills(self, fake_clock: FakeClock) -> None:
        """Installing a clock that reads earlier refills nothing, and refilling resumes from it."""
        bucket = TokenBucket(capacity=2, refill_per_second=1)
        bucket.try_acquire(2)
        earlier = FakeClock(start=10.0)
        with use_clock(earlier):
            assert bucket.try_acquire() is False
            earlier.advance(1.0)
            assert bucket.try_acquire() is True

    def test_hit_answers_with_a_decision(self, fake_clock: FakeClock) -> None:
        """hit() takes like try_acquire and reports limit, remaining, reset and retry times."""
        bucket = TokenBucket(capacity=3, refill_per_second=0.5)

        first = bucket.hit()
        assert first == RateLimitDecision(
            allowed=True,
            limit=3,
            remaining=2,
            reset_after=2.0,
            reset_at=WALL + 2.0,
            retry_after=0.0,
        )
        bucket.hit(2)
        refused = bucket.hit()
        assert refused == RateLimitDecision(
            allowed=False,
            limit=3,
            remaining=0,
            reset_after=6.0,
            reset_at=WALL + 6.0,
            retry_after=2.0,
        )
        fake_clock.advance(1.0)
        assert bucket.hit(1).retry_after == 1.0

    def test_peek_takes_nothing(self, fake_clock: FakeClock) -> None:
        """peek() answers what hit() would, and the bucket keeps its tokens."""
        bucket = TokenBucket(capacity=2, refill_per_second=1)

        assert bucket.peek().allowed is True
        assert bucket.peek(2).remaining == 2
        assert [bucket.try_acquire() for _ in range(3)] == [True, True, False]
        assert bucket.peek() == RateLimitDecision(
            allowed=False,
            limit=2,
            remaining=0,
            reset_after=2.0,
            reset_at=WALL + 2.0,
            retry_after=1.0,
        )

    def test_a_shared_store_keeps_the_state_under_the_name(self, fake_clock: FakeClock) -> None:
        """With store=, the bucket's tokens live in the store, shared by buckets of one name."""
        store = RecordingStore()
        one = TokenBucket(capacity=2, refill_per_second=1, name="payments", store=store)
        other = TokenBucket(capacity=2, refill_per_second=1, name="payments", store=store)

        assert one.try_acquire() is True
        assert other.try_acquire() is True
        assert one.try_acquire() is False
        assert store.calls[0] == ("take", ("payments", 1, 2, 1.0, 1000.0, 0.0, False))
        assert len(store.inner) == 1

    def test_repr(self) -> None:
        """The repr shows name, capacity and rate."""
        bucket = TokenBucket(capacity=100, refill_per_second=10, name="api")

        assert repr(bucket) == "TokenBucket(name='api', capacity=100, refill_per_second=10.0)"

    def test_is_a_rate_limiter(self) -> None:
        """A TokenBucket offers the unkeyed RateLimiter face."""
        limiter: RateLimiter = TokenBucket(capacity=1, refill_per_second=1)

        assert limiter.name == "TokenBucket"


class TestTokenBucketAcquire:
    def test_takes_at_once_when_the_tokens_are_there(self, sleepy: FakeClock) -> None:
        """acquire() with tokens in the bucket returns 0.0 and never sleeps."""
        bucket = TokenBucket(capacity=2, refill_per_second=1)

        assert bucket.acquire() == 0.0
        assert bucket.acquire(timeout=0) == 0.0
        assert sleepy.sleeps == []

    def test_waits_for_the_tokens_on_the_clock(self, sleepy: FakeClock) -> None:
        """An empty bucket at 4/s makes acquire() sleep 0.25 s per token, on hystrixpy's clock."""
        bucket = TokenBucket(capacity=4, refill_per_second=4)
        bucket.try_acquire(4)

        assert bucket.acquire(timeout=0.5) == 0.25
        assert bucket.acquire(2, timeout=0.5) == 0.5
        assert sleepy.sleeps == [0.25, 0.5]
        assert bucket.try_acquire() is False

    def test_too_long_a_wait_raises_and_takes_nothing(self, sleepy: FakeClock) -> None:
        """A wait beyond the timeout raises RateLimitExceeded at once with retry_after."""
        bucket = TokenBucket(capacity=10, refill_per_second=2, name="search")
        bucket.try_acquire(10)

        with pytest.raises(RateLimitExceeded, match=r"rate limit 'search': 3 token\(s\)") as info:
            bucket.acquire(3, timeout=1.0)
        assert info.value.retry_after == 1.5
        assert info.value.limiter == "search"
        assert info.value.key is None
        assert sleepy.sleeps == []
        assert bucket.wait_time(3) == 1.5

    def test_without_a_timeout_waits_as_long_as_it_takes(self, sleepy: FakeClock) -> None:
        """timeout=None waits for the tokens however long they take."""
        bucket = TokenBucket(capacity=100, refill_per_second=1)
        bucket.try_acquire(100)

        assert bucket.acquire(100) == 100.0

    def test_the_deadline_shortens_the_timeout(self, sleepy: FakeClock) -> None:
        """Inside a deadline of 0.2 s, a 0.5 s wait is refused even with timeout=10."""
        bucket = TokenBucket(capacity=1, refill_per_second=2)
        bucket.try_acquire()

        with deadline.within(0.2), pytest.raises(RateLimitExceeded) as info:
            bucket.acquire(timeout=10)
        assert info.value.retry_after == 0.5
        with deadline.within(1.0):
            assert bucket.acquire(timeout=10) == 0.5

    @pytest.mark.parametrize(
        ("timeout", "error", "message"),
        [
            (-1, ValueError, r"timeout must be >= 0, got -1"),
            (math.nan, ValueError, r"timeout must be >= 0, got nan"),
            ("1", TypeError, r"timeout must be a number of seconds or None, got '1'"),
            (True, TypeError, r"timeout must be a number of seconds or None, got True"),
        ],
    )
    def test_a_bad_timeout_is_refused(
        self, timeout: object, error: type[Exception], message: str
    ) -> None:
        """The timeout is None or a number of seconds, at least 0."""
        bucket = TokenBucket(capacity=1, refill_per_second=1)

        with pytest.raises(error, match=message):
            bucket.acquire(timeout=timeout)  # type: ignore[arg-type]

    def test_waiters_are_served_in_order_and_not_starved(self) -> None:
        """A sleeping waiter's tokens are reserved: later callers see the debt and queue behind."""
        fake = SignallingClock()
        bucket = TokenBucket(capacity=2, refill_per_second=1)
        waited: dict[str, float] = {}
        with use_clock(fake):
            bucket.try_acquire(2)

            def waiter(name: str) -> None:
                waited[name] = bucket.acquire(timeout=5)

            first = threading.Thread(target=waiter, args=("first",))
            first.start()
            assert fake.sleeping.acquire(timeout=5)
            fake.advance(0.5)  # half a token has come, owed to the first waiter
            assert bucket.try_acquire() is False
            assert bucket.wait_time() == 1.5
            second = threading.Thread(target=waiter, args=("second",))
            second.start()
            assert fake.sleeping.acquire(timeout=5)
            fake.advance(1.5)
            first.join(5)
            second.join(5)
            assert bucket.try_acquire() is False  # both waiters' tokens are spent
        assert waited == {"first": 1.0, "second": 1.5}
        assert fake.sleeps == [1.0, 1.5]

    def test_never_holds_the_lock_while_waiting(self) -> None:
        """While one caller sleeps in acquire(), others get answers at once."""
        fake = SignallingClock()
        bucket = TokenBucket(capacity=1, refill_per_second=1)
        with use_clock(fake):
            bucket.try_acquire()
            sleeper = threading.Thread(target=bucket.acquire, kwargs={"timeout": 5})
            sleeper.start()
            assert fake.sleeping.acquire(timeout=5)
            answered = threading.Event()

            def ask() -> None:
                bucket.peek()
                bucket.try_acquire()
                answered.set()

            threading.Thread(target=ask).start()
            assert answered.wait(5)
            fake.advance(1.0)
            sleeper.join(5)
        assert not sleeper.is_alive()


class TestTokenBucketThreads:
    def test_32_threads_share_exactly_the_capacity(self, fake_clock: FakeClock) -> None:
        """32 threads x 10 try_acquire() on a bucket of 100 that never refills grant exactly 100."""
        bucket = TokenBucket(capacity=100, refill_per_second=1)
        barrier = threading.Barrier(32)
        granted: list[int] = []
        lock = threading.Lock()

        def caller() -> None:
            barrier.wait()
            mine = sum(bucket.try_acquire() for _ in range(10))
            with lock:
                granted.append(mine)

        threads = [threading.Thread(target=caller) for _ in range(32)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        assert len(granted) == 32
        assert sum(granted) == 100

    def test_threads_share_a_keyed_bucket_exactly(self, fake_clock: FakeClock) -> None:
        """16 threads hitting two keys of a keyed bucket of 50 grant exactly 50 per key."""
        buckets = KeyedTokenBucket(capacity=50, refill_per_second=1)
        barrier = threading.Barrier(16)
        granted = {"a": 0, "b": 0}
        lock = threading.Lock()

        def caller(key: str) -> None:
            barrier.wait()
            mine = sum(buckets.try_acquire(key) for _ in range(10))
            with lock:
                granted[key] += mine

        threads = [threading.Thread(target=caller, args=("ab"[i % 2],)) for i in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        assert granted == {"a": 50, "b": 50}


class TestKeyedTokenBucket:
    def test_each_key_has_its_own_bucket(self, fake_clock: FakeClock) -> None:
        """Emptying one key's bucket leaves the others full."""
        buckets = KeyedTokenBucket(capacity=2, refill_per_second=1)

        assert [buckets.try_acquire("a") for _ in range(3)] == [True, True, False]
        assert buckets.try_acquire("b") is True
        assert buckets.wait_time("a") == 1.0
        assert buckets.wait_time("b") == 0.0

    def test_decisions(self, fake_clock: FakeClock) -> None:
        """hit() and peek() answer per key as TokenBucket's do."""
        buckets = KeyedTokenBucket(capacity=2, refill_per_second=1)

        assert buckets.peek("a").remaining == 2
        assert buckets.hit("a", 2).remaining == 0
        refused = buckets.hit("a")
        assert (refused.allowed, refused.retry_after, refused.reset_after) == (False, 1.0, 2.0)

    def test_acquire_waits_per_key(self, sleepy: FakeClock) -> None:
        """acquire(key) waits for that key's tokens, and names the key when it gives up."""
        buckets = KeyedTokenBucket(capacity=1, refill_per_second=1, name="per-user")
        buckets.try_acquire("u1")

        assert buckets.acquire("u2") == 0.0
        assert buckets.acquire("u1", timeout=1) == 1.0
        with pytest.raises(RateLimitExceeded, match=r"'per-user' \(key 'u1'\)") as info:
            buckets.acquire("u1", timeout=0.5)
        assert (info.value.key, info.value.retry_after) == ("u1", 1.0)

    def test_more_than_capacity_is_an_error(self, fake_clock: FakeClock) -> None:
        """A request beyond the capacity is a ValueError naming n and the capacity."""
        buckets = KeyedTokenBucket(capacity=3, refill_per_second=1)

        with pytest.raises(ValueError, match=r"n=4 is more than the capacity 3"):
            buckets.try_acquire("a", 4)

    def test_for_key_is_an_unkeyed_limiter(self, sleepy: FakeClock) -> None:
        """for_key(key) is a RateLimiter on that key's bucket, able to wait too."""
        buckets = KeyedTokenBucket(capacity=1, refill_per_second=2, name="tenants")
        limiter = buckets.for_key("acme")
        unkeyed: RateLimiter = limiter

        assert unkeyed.name == "tenants"
        assert limiter.try_acquire() is True
        assert limiter.hit().allowed is False
        assert limiter.peek().retry_after == 0.5
        assert limiter.wait_time() == 0.5
        assert limiter.acquire(timeout=1) == 0.5
        assert buckets.try_acquire("other") is True
        assert repr(limiter) == (
            "KeyedTokenBucket(name='tenants', capacity=1, refill_per_second=2.0).for_key('acme')"
        )

    def test_keys_live_in_the_store_under_the_name(self, fake_clock: FakeClock) -> None:
        """The store sees the key (name, key), so limiters sharing a store keep apart by name."""
        store = RecordingStore()
        one = KeyedTokenBucket(capacity=1, refill_per_second=1, name="one", store=store)
        two = KeyedTokenBucket(capacity=1, refill_per_second=1, name="two", store=store)

        assert one.try_acquire("k") is True
        assert two.try_acquire("k") is True
        assert [call[1][0] for call in store.calls] == [("one", "k"), ("two", "k")]

    def test_is_a_keyed_rate_limiter(self) -> None:
        """KeyedTokenBucket and SlidingWindow share the KeyedRateLimiter face."""
        limiters: list[KeyedRateLimiter] = [
            KeyedTokenBucket(capacity=1, refill_per_second=1),
            SlidingWindow(limit=1, window_seconds=1),
        ]

        assert [limiter.try_acquire("k") for limiter in limiters] == [True, True]
        assert repr(limiters[0]) == (
            "KeyedTokenBucket(name='KeyedTokenBucket', capacity=1, refill_per_second=1.0)"
        )


# -- the sliding window -----------------------------------------------------------------


class TestSlidingWindowExact:
    def test_allows_the_limit_then_refuses(self, fake_clock: FakeClock) -> None:
        """Three hits fit a limit of 3; the fourth is refused."""
        window = SlidingWindow(limit=3, window_seconds=10)

        assert [window.hit("k").allowed for _ in range(4)] == [True, True, True, False]

    def test_a_hit_leaves_the_window_after_exactly_window_seconds(
        self, fake_clock: FakeClock
    ) -> None:
        """A hit at t counts until t + window: refused just before, allowed at that moment."""
        window = SlidingWindow(limit=1, window_seconds=10)
        window.hit("k")

        fake_clock.advance(9.5)
        assert window.hit("k").allowed is False
        fake_clock.advance(0.5)
        assert window.hit("k").allowed is True

    def test_refused_hits_are_not_counted(self, fake_clock: FakeClock) -> None:
        """Hammering a full window does not push its reset further away."""
        window = SlidingWindow(limit=2, window_seconds=10)
        window.hit("k")
        fake_clock.advance(1)
        window.hit("k")
        for _ in range(5):
            fake_clock.advance(1)
            assert window.hit("k").allowed is False

        fake_clock.advance(4)  # 10 s after the first hit
        assert window.hit("k").allowed is True

    def test_retry_after_is_when_the_oldest_needed_hits_leave(self, fake_clock: FakeClock) -> None:
        """Hits at 0, 2 and 4 s in a 10 s window of 3: one more in 6 s, two more in 8 s."""
        window = SlidingWindow(limit=3, window_seconds=10)
        for _ in range(3):
            window.hit("k")
            fake_clock.advance(2)
        # now 6 s after the first hit
        assert window.peek("k").retry_after == 4.0
        assert window.peek("k", 2).retry_after == 6.0
        assert window.wait_time("k", 3) == 8.0
        fake_clock.advance(4)
        assert window.hit("k").allowed is True

    def test_n_hits_at_once(self, fake_clock: FakeClock) -> None:
        """hit(key, n) counts n hits, or none when they do not all fit."""
        window = SlidingWindow(limit=10, window_seconds=60)

        assert window.hit("k", 7).remaining == 3
        refused = window.hit("k", 4)
        assert (refused.allowed, refused.remaining, refused.retry_after) == (False, 3, 60.0)
        assert window.hit("k", 3).remaining == 0

    def test_more_than_the_limit_is_an_error(self, fake_clock: FakeClock) -> None:
        """A hit of more than the limit could never fit: ValueError naming n and the limit."""
        window = SlidingWindow(limit=5, window_seconds=1, name="login")

        with pytest.raises(
            ValueError, match=r"n=6 is more than the limit 5 of SlidingWindow 'login'"
        ):
            window.hit("k", 6)

    def test_decisions_for_a_known_sequence(self, fake_clock: FakeClock) -> None:
        """Limit 2 per 60 s, hits at 0 s, 15 s, 30 s: every field of every decision."""
        window = SlidingWindow(limit=2, window_seconds=60)

        assert window.hit("k") == RateLimitDecision(
            allowed=True,
            limit=2,
            remaining=1,
            reset_after=60.0,
            reset_at=WALL + 60.0,
            retry_after=0.0,
        )
        fake_clock.advance(15)
        assert window.hit("k") == RateLimitDecision(
            allowed=True,
            limit=2,
            remaining=0,
            reset_after=60.0,
            reset_at=WALL + 75.0,
            retry_after=0.0,
        )
        fake_clock.advance(15)
        assert window.hit("k") == RateLimitDecision(
            allowed=False,
            limit=2,
            remaining=0,
            reset_after=45.0,
            reset_at=WALL + 75.0,
            retry_after=30.0,
        )

    def test_keys_are_independent(self, fake_clock: FakeClock) -> None:
        """Each key has a window of its own."""
        window = SlidingWindow(limit=1, window_seconds=60)

        assert window.try_acquire("a") is True
        assert window.try_acquire("a") is False
        assert window.try_acquire("b") is True

    def test_peek_counts_nothing(self, fake_clock: FakeClock) -> None:
        """peek() answers what hit() would and leaves the window as it was."""
        window = SlidingWindow(limit=1, window_seconds=60)

        assert window.peek("k").allowed is True
        assert window.peek("k").remaining == 1
        assert window.hit("k").allowed is True
        assert window.peek("k").allowed is False

    def test_for_key_is_an_unkeyed_limiter(self, fake_clock: FakeClock) -> None:
        """for_key(key) is a RateLimiter on that key's window."""
        window = SlidingWindow(limit=2, window_seconds=30, name="signup")
        limiter: RateLimiter = window.for_key("10.0.0.1")

        assert limiter.name == "signup"
        assert limiter.try_acquire() is True
        assert limiter.hit().remaining == 0
        assert limiter.peek().allowed is False
        assert limiter.wait_time() == 30.0
        assert window.peek("10.0.0.2").allowed is True
        assert repr(limiter) == (
            "SlidingWindow(name='signup', limit=2, window_seconds=30.0, mode='exact')"
            ".for_key('10.0.0.1')"
        )


class TestSlidingWindowApproximate:
    def test_weights_the_previous_bucket_by_its_overlap(self, fake_clock: FakeClock) -> None:
        """8 hits in the last bucket count as 2 when the window overlaps a quarter of it."""
        fake = FakeClock(start=0.0)
        window = SlidingWindow(limit=10, window_seconds=10, mode="approximate")
        with use_clock(fake):
            assert window.hit("k", 8).remaining == 2
            fake.advance(17.5)  # 7.5 s into the next bucket: a quarter of the last one overlaps
            decision = window.hit("k")
        assert decision.allowed is True
        assert decision.remaining == 7  # 8 * 0.25 + 1 counted

    def test_the_worst_case_is_twice_the_limit_less_one(self) -> None:
        """Hits bunched at a bucket's end let a window of 60 s hold 2 x 100 - 1, never more."""
        fake = FakeClock(start=0.0)
        window = SlidingWindow(limit=100, window_seconds=60, mode="approximate")
        with use_clock(fake):
            fake.advance(59.9)
            assert sum(window.try_acquire("k") for _ in range(150)) == 100
            fake.advance(60.0 - 0.2)  # at 119.7 s the window (59.7, 119.7] holds those 100
            admitted = sum(window.try_acquire("k") for _ in range(150))
        assert admitted == 99
        assert 100 + admitted == 2 * 100 - 1

    def test_a_fixed_bucket_never_holds_more_than_the_limit(self) -> None:
        """Right after an idle spell, the current bucket alone is capped at the limit."""
        fake = FakeClock(start=0.0)
        window = SlidingWindow(limit=5, window_seconds=1, mode="approximate")
        with use_clock(fake):
            assert sum(window.try_acquire("k") for _ in range(9)) == 5

    def test_retry_after_within_the_bucket(self) -> None:
        """When the current bucket has room, retry_after waits for the previous one to fade."""
        fake = FakeClock(start=0.0)
        window = SlidingWindow(limit=4, window_seconds=10, mode="approximate")
        with use_clock(fake):
            window.hit("k", 4)
            fake.advance(10.0)  # next bucket, its start: the 4 still count fully
            refused = window.hit("k")
            assert (refused.allowed, refused.retry_after) == (False, 2.5)
            assert refused.reset_after == 10.0
            fake.advance(2.0)
            assert window.hit("k").allowed is False
            fake.advance(0.5)
            assert window.hit("k").allowed is True

    def test_retry_after_in_the_next_bucket(self) -> None:
        """A full current bucket waits for the next one, where its hits fade in turn."""
        fake = FakeClock(start=0.0)
        window = SlidingWindow(limit=4, window_seconds=10, mode="approximate")
        with use_clock(fake):
            fake.advance(2.0)
            window.hit("k", 4)
            refused = window.hit("k", 2)
            # 8 s to the next bucket, then 4 * (1 - x / 10) <= 2 at x = 5 s
            assert (refused.retry_after, refused.reset_after) == (13.0, 18.0)
            fake.advance(12.5)
            assert window.hit("k", 2).allowed is False
            fake.advance(0.5)
            assert window.hit("k", 2).allowed is True

    def test_a_gap_of_more_than_a_bucket_forgets_the_old_hits(self) -> None:
        """Two buckets later nothing is counted any more."""
        fake = FakeClock(start=0.0)
        window = SlidingWindow(limit=3, window_seconds=10, mode="approximate")
        with use_clock(fake):
            window.hit("k", 3)
            fake.advance(20.0)
            assert window.peek("k").remaining == 3
            fake.advance(5.0)
            assert window.hit("k", 3).allowed is True

    def test_reset_after_counts_down_to_an_empty_estimate(self) -> None:
        """reset_after is the end of the bucket after the last hit's, or 0 with nothing left."""
        fake = FakeClock(start=0.0)
        window = SlidingWindow(limit=3, window_seconds=10, mode="approximate")
        with use_clock(fake):
            fake.advance(4.0)
            assert window.hit("k").reset_after == 16.0
            fake.advance(10.0)
            assert window.peek("k").reset_after == 6.0
            fake.advance(6.0)
            assert window.peek("k").reset_after == 0.0


# -- decisions and their headers --------------------------------------------------------


class TestRateLimitDecision:
    def test_headers_of_an_allowed_request(self) -> None:
        """An allowed request gets the limit, what remains and the reset time; no Retry-After."""
        decision = RateLimitDecision(
            allowed=True,
            limit=100,
            remaining=42,
            reset_after=30.0,
            reset_at=WALL + 30.0,
            retry_after=0.0,
        )

        assert decision.headers() == {
            "X-RateLimit-Limit": "100",
            "X-RateLimit-Remaining": "42",
            "X-RateLimit-Reset": "1700000030",
        }

    def test_headers_of_a_refused_request(self) -> None:
        """A refusal adds Retry-After in whole seconds, rounded up; the reset rounds up as well."""
        decision = RateLimitDecision(
            allowed=False,
            limit=10,
            remaining=0,
            reset_after=12.25,
            reset_at=WALL + 12.25,
            retry_after=2.1,
        )

        assert decision.headers() == {
            "X-RateLimit-Limit": "10",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": "1700000013",
            "Retry-After": "3",
        }

    @pytest.mark.parametrize(
        ("retry_after", "header"),
        [(0.001, "1"), (1.0, "1"), (1.0000000001, "1"), (1.01, "2"), (59.5, "60")],
    )
    def test_retry_after_is_whole_seconds_at_least_one(
        self, retry_after: float, header: str
    ) -> None:
        """Retry-After rounds up, at least 1, ignoring float noise just above a whole second."""
        decision = RateLimitDecision(
            allowed=False,
            limit=1,
            remaining=0,
            reset_after=retry_after,
            reset_at=WALL,
            retry_after=retry_after,
        )

        assert decision.headers()["Retry-After"] == header

    def test_headers_for_a_known_sequence_of_hits(self, fake_clock: FakeClock) -> None:
        """Limit 3 per 10 s, hits at 0, 1, 2 and 3.5 s: the exact headers of each response."""
        window = SlidingWindow(limit=3, window_seconds=10)
        seen = []
        for step in (0.0, 1.0, 1.0, 1.5):
            fake_clock.advance(step)
            seen.append(window.hit("client").headers())

        assert seen == [
            {
                "X-RateLimit-Limit": "3",
                "X-RateLimit-Remaining": "2",
                "X-RateLimit-Reset": "1700000010",
            },
            {
                "X-RateLimit-Limit": "3",
                "X-RateLimit-Remaining": "1",
                "X-RateLimit-Reset": "1700000011",
            },
            {
                "X-RateLimit-Limit": "3",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": "1700000012",
            },
            {
                "X-RateLimit-Limit": "3",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": "1700000012",
                "Retry-After": "7",
            },
        ]

    def test_bucket_headers(self, fake_clock: FakeClock) -> None:
        """A token bucket's decision gives the same headers: capacity, whole tokens left, refill."""
        bucket = TokenBucket(capacity=2, refill_per_second=0.25)
        bucket.hit(2)

        assert bucket.hit().headers() == {
            "X-RateLimit-Limit": "2",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": "1700000008",
            "Retry-After": "4",
        }

    def test_is_immutable(self) -> None:
        """A decision cannot be changed."""
        decision = TokenBucket(capacity=1, refill_per_second=1).peek()

        with pytest.raises(dataclasses.FrozenInstanceError):
            decision.allowed = False  # type: ignore[misc]


class TestRateLimitExceeded:
    def test_is_a_hystrix_error_with_details(self) -> None:
        """It is a HystrixError carrying the limiter, the key and retry_after."""
        error = RateLimitExceeded("slow down", limiter="api", key="u1", retry_after=1.5)

        assert isinstance(error, HystrixError)
        assert (str(error), error.limiter, error.key, error.retry_after) == (
            "slow down",
            "api",
            "u1",
            1.5,
        )

    def test_pickles(self) -> None:
        """The error crosses process boundaries with its details."""
        error = RateLimitExceeded("slow down", limiter="api", key=("t", 1), retry_after=0.5)
        copy = pickle.loads(pickle.dumps(error))

        assert (str(copy), copy.limiter, copy.key, copy.retry_after) == (
            "slow down",
            "api",
            ("t", 1),
            0.5,
        )


# -- the in-memory store ----------------------------------------------------------------


class TestMemoryStore:
    def test_is_a_rate_limit_store(self) -> None:
        """MemoryStore follows the RateLimitStore protocol."""
        store: RateLimitStore = MemoryStore()

        assert store.take("k", 1, 1, 1.0, 0.0, 0.0, False) == (True, 0.0, 0.0)

    def test_a_full_bucket_is_forgotten(self, fake_clock: FakeClock) -> None:
        """A key's bucket is dropped once refilled to full: its capacity over the rate."""
        store = MemoryStore()
        buckets = KeyedTokenBucket(capacity=4, refill_per_second=2, store=store)
        buckets.try_acquire("idle", 4)
        fake_clock.advance(1.5)
        buckets.try_acquire("busy")
        assert len(store) == 2

        fake_clock.advance(0.5)  # 2 s after its last use, "idle" is full again
        buckets.try_acquire("busy")
        assert len(store) == 1
        assert buckets.peek("idle").remaining == 4

    def test_a_window_with_nothing_left_is_forgotten(self, fake_clock: FakeClock) -> None:
        """An exact window's key goes once its last hit has left the window."""
        store = MemoryStore()
        window = SlidingWindow(limit=5, window_seconds=60, store=store)
        window.hit("idle")
        fake_clock.advance(59)
        window.hit("busy")
        assert len(store) == 2
        fake_clock.advance(1)

        window.hit("busy")
        assert len(store) == 1

    def test_an_approximate_key_goes_after_the_next_bucket(self) -> None:
        """An approximate window's key goes at the end of the bucket after its last hit's."""
        fake = FakeClock(start=0.0)
        store = MemoryStore()
        window = SlidingWindow(limit=5, window_seconds=10, mode="approximate", store=store)
        with use_clock(fake):
            window.hit("idle")  # bucket [0, 10): its hits fade out by 20 s
            fake.advance(19.5)
            window.hit("busy")
            assert len(store) == 2
            fake.advance(0.5)
            window.hit("busy")
            assert len(store) == 1

    def test_each_call_drops_at_most_two_idle_keys(self, fake_clock: FakeClock) -> None:
        """Pruning is bounded per call: five idle keys take three calls to go."""
        store = MemoryStore()
        window = SlidingWindow(limit=5, window_seconds=1, store=store)
        for key in range(5):
            window.hit(key)
        fake_clock.advance(1)

        sizes = []
        for _ in range(3):
            window.hit("busy")
            sizes.append(len(store))
        assert sizes == [4, 2, 1]

    def test_prune_drops_every_idle_key_at_once(self, fake_clock: FakeClock) -> None:
        """prune() drops all keys with nothing left, of every kind, and says how many."""
        store = MemoryStore()
        SlidingWindow(limit=5, window_seconds=1, store=store).hit("w")
        SlidingWindow(limit=5, window_seconds=1, store=store, mode="approximate").hit("a")
        KeyedTokenBucket(capacity=1, refill_per_second=1, store=store).hit("b")
        long = SlidingWindow(limit=5, window_seconds=100, store=store, name="long")
        long.hit("kept")
        assert len(store) == 4

        assert store.prune() == 0
        fake_clock.advance(2)
        assert store.prune() == 3
        assert len(store) == 1
        assert store.prune(now=fake_clock.monotonic() + 100) == 1

    def test_max_keys_evicts_the_least_recently_used(self, fake_clock: FakeClock) -> None:
        """Beyond max_keys, the key used longest ago is evicted and starts afresh."""
        store = MemoryStore(max_keys=2)
        window = SlidingWindow(limit=1, window_seconds=60, store=store)
        window.hit("a")
        window.hit("b")
        window.hit("a")  # refused, but "a" is now the most recently used
        window.hit("c")  # evicts "b"

        assert len(store) == 2
        assert store.evicted == 1
        assert window.peek("a").allowed is False
        assert window.peek("c").allowed is False
        assert window.peek("b").allowed is True  # forgotten: a fresh limit

    def test_evicting_a_key_with_nothing_left_is_not_counted(self, fake_clock: FakeClock) -> None:
        """Only keys that still held state count as evicted."""
        store = MemoryStore(max_keys=1)
        window = SlidingWindow(limit=1, window_seconds=1, store=store)
        window.hit("a")
        fake_clock.advance(0.5)
        window.hit("b")
        assert store.evicted == 1
        fake_clock.advance(0.5)
        window.hit("c")  # "b" still counts a hit: evicted
        assert store.evicted == 2

        fake_clock.advance(5)
        window.try_acquire("d")  # "c" has nothing left: dropped, not evicted
        assert store.evicted == 2
        assert len(store) == 1

    def test_peeking_an_unknown_key_adds_nothing(self, fake_clock: FakeClock) -> None:
        """peek() and wait_time() on new keys keep no state."""
        store = MemoryStore()
        SlidingWindow(limit=1, window_seconds=1, store=store).peek("x")
        SlidingWindow(limit=1, window_seconds=1, store=store, mode="approximate").peek("x")
        KeyedTokenBucket(capacity=1, refill_per_second=1, store=store).wait_time("x")

        assert len(store) == 0

    def test_kinds_of_state_are_kept_apart(self, fake_clock: FakeClock) -> None:
        """A bucket and windows of the same name and key in one store do not mix."""
        store = MemoryStore()
        KeyedTokenBucket(capacity=1, refill_per_second=1, name="x", store=store).hit("k")
        SlidingWindow(limit=1, window_seconds=9, name="x", store=store).hit("k")
        approximate = SlidingWindow(
            limit=1, window_seconds=9, name="x", store=store, mode="approximate"
        )

        assert approximate.hit("k").allowed is True
        assert len(store) == 3

    def test_clear_len_and_repr(self, fake_clock: FakeClock) -> None:
        """clear() forgets every key; len() counts them; the repr shows both figures."""
        store = MemoryStore(max_keys=10)
        SlidingWindow(limit=1, window_seconds=1, store=store).hit("k")

        assert repr(store) == "MemoryStore(keys=1, max_keys=10)"
        store.clear()
        assert len(store) == 0

    @pytest.mark.parametrize(
        ("value", "error", "message"),
        [
            (0, ValueError, r"MemoryStore max_keys must be >= 1, got 0"),
            (2.5, TypeError, r"MemoryStore max_keys must be an int, got 2\.5"),
            (None, TypeError, r"MemoryStore max_keys must be an int, got None"),
        ],
    )
    def test_a_bad_max_keys_is_refused(
        self, value: object, error: type[Exception], message: str
    ) -> None:
        """max_keys is an int of at least 1."""
        with pytest.raises(error, match=message):
            MemoryStore(max_keys=value)  # type: ignore[arg-type]

    def test_defaults(self) -> None:
        """The default store keeps up to 100,000 keys of each kind."""
        assert MemoryStore().max_keys == 100_000


class TestPluggableStore:
    def test_a_window_calls_its_store_with_the_policy(self, fake_clock: FakeClock) -> None:
        """A SlidingWindow hands its store the key (name, key), n, limit, window, now and mode."""
        store = RecordingStore()
        window = SlidingWindow(limit=5, window_seconds=30, name="w", store=store)

        window.hit("k", 2)
        window.peek("k")
        assert store.calls == [
            ("hit", (("w", "k"), 2, 5, 30.0, 1000.0, "exact", False)),
            ("hit", (("w", "k"), 1, 5, 30.0, 1000.0, "exact", True)),
        ]

    def test_the_limiter_reads_the_clock_the_store_only_gets_now(self) -> None:
        """The store is given hystrixpy's monotonic now; the wall time is read by the limiter."""
        store = RecordingStore()
        fake = FakeClock(start=5.0, wall_start=100.0)
        with use_clock(fake):
            decision = SlidingWindow(limit=1, window_seconds=10, store=store).hit("k")

        assert store.calls[0][1][4] == 5.0
        assert decision.reset_at == 110.0
        assert clock.get_clock() is not fake
