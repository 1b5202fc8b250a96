"""Rate limiters: token buckets and sliding windows, for one resource or per client.

::

    from hystrixpy.ratelimit import KeyedTokenBucket, SlidingWindow, TokenBucket

    bucket = TokenBucket(capacity=100, refill_per_second=10)  # bursts of 100, then 10/s
    if bucket.try_acquire():               # a token now, or False at once
        ...
    bucket.acquire(timeout=0.5)            # wait up to 0.5 s, else RateLimitExceeded

    per_client = SlidingWindow(limit=100, window_seconds=60)
    decision = per_client.hit("10.0.0.7")  # allowed, limit, remaining, reset_at, retry_after
    response_headers = decision.headers()

No background thread: a bucket refills lazily from the elapsed time, and a
window forgets old hits when it is next used. Every reading comes from
:mod:`hystrixpy.clock` at call time, so a fake clock or freezegun controls
them, and waits go through :func:`hystrixpy.clock.sleep`.

Waiting is fair: :meth:`TokenBucket.acquire` reserves its tokens at once, by
taking them into debt, and then sleeps without holding any lock. Later
callers find the bucket owing and wait behind it (``try_acquire`` is refused
until the debt is paid), so waiters are served in the order they came and
a stream of ``try_acquire`` calls cannot starve them.

The limiters keep the policy; the state of each key lives in a
:class:`RateLimitStore` (by default a private :class:`MemoryStore`). Limiters
that share a store share state exactly when their names, and keys, are equal.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable
from typing import Protocol

from hystrixpy import clock
from hystrixpy._ratelimit_keys import BucketForKey, ForKey
from hystrixpy._ratelimit_policy import (
    EPSILON,
    RateLimitDecision,
    SlidingWindowPolicy,
    TokenBucketPolicy,
    WindowMode,
    bucket_decision,
    check_count,
    check_name,
    make_decision,
    time_allowed,
    too_long,
)
from hystrixpy._ratelimit_store import MemoryStore, RateLimitStore, _Bucket, take_tokens
from hystrixpy.exceptions import RateLimitExceeded

__all__ = [
    "KeyedRateLimiter",
    "KeyedTokenBucket",
    "MemoryStore",
    "RateLimitDecision",
    "RateLimitExceeded",
    "RateLimitStore",
    "RateLimiter",
    "SlidingWindow",
    "SlidingWindowPolicy",
    "TokenBucket",
    "TokenBucketPolicy",
    "WindowMode",
]


class RateLimiter(Protocol):
    """One limit, no key: a :class:`TokenBucket`, or a keyed limiter's ``for_key(key)``."""

    @property
    def name(self) -> str:
        """The limiter's name (in errors, and its key in a shared store)."""

    def try_acquire(self, n: int = 1) -> bool:
        """Take ``n`` permits if they are there now; never waits."""

    def hit(self, n: int = 1) -> RateLimitDecision:
        """Like :meth:`try_acquire`, answering with a decision (for HTTP headers)."""

    def peek(self, n: int = 1) -> RateLimitDecision:
        """The decision a hit of ``n`` would get now, taking nothing."""

    def wait_time(self, n: int = 1) -> float:
        """Seconds until ``n`` permits would be granted (0.0 if now)."""


class KeyedRateLimiter(Protocol):
    """A limit per key (a client address, a user id): :class:`SlidingWindow`, a keyed bucket."""

    @property
    def name(self) -> str:
        """The limiter's name."""

    def try_acquire(self, key: Hashable, n: int = 1) -> bool:
        """Take ``n`` permits of ``key`` if they are there now."""

    def hit(self, key: Hashable, n: int = 1) -> RateLimitDecision:
        """Like :meth:`try_acquire`, answering with a decision."""

    def peek(self, key: Hashable, n: int = 1) -> RateLimitDecision:
        """The decision a hit of ``n`` on ``key`` would get now, counting nothing."""

    def wait_time(self, key: Hashable, n: int = 1) -> float:
        """Seconds until ``n`` permits of ``key`` would be granted."""

    def for_key(self, key: Hashable) -> RateLimiter:
        """The limit of one key, as an unkeyed :class:`RateLimiter`."""


class TokenBucket:
    """One token bucket: bursts of up to ``capacity`` tokens, refilled at ``refill_per_second``.

    It starts full. Each request takes ``n`` tokens (1 by default; more than
    ``capacity`` is a :class:`ValueError`, as it could never be granted).
    Over any interval of ``t`` seconds it grants at most
    ``capacity + refill_per_second * t`` tokens. Thread-safe, O(1) a call.

    With ``store=`` its state lives in that store under the key ``name``;
    without, in the bucket itself, on a faster path. The options are checked
    when it is built (:class:`TokenBucketPolicy`).
    """

    __slots__ = ("_capacity", "_lock", "_rate", "_state", "_store", "name", "policy")

    def __init__(
        self,
        *,
        capacity: int,
        refill_per_second: float,
        name: str = "TokenBucket",
        store: RateLimitStore | None = None,
    ) -> None:
        self.policy = TokenBucketPolicy(capacity=capacity, refill_per_second=refill_per_second)
        self.name = check_name("TokenBucket", name)
        self._capacity = self.policy.capacity
        self._rate = self.policy.refill_per_second
        self._store = store
        self._state = _Bucket(self._capacity, clock.monotonic())
        self._lock = threading.Lock()

    def try_acquire(self, n: int = 1) -> bool:
        """Take ``n`` tokens if the bucket has them now; ``False`` at once if not."""
        if n != 1 or self._store is not None:
            return self._take(n, 0.0, False)[0]
        state = self._state
        with self._lock:
            now = clock.monotonic()
            tokens = state.tokens
            elapsed = now - state.stamp
            if elapsed > 0.0:
                tokens += elapsed * self._rate
                if tokens > self._capacity:
                    tokens = self._capacity
            state.stamp = now
            if tokens >= 1.0 - EPSILON:
                state.tokens = tokens - 1.0
                return True
            state.tokens = tokens
            return False

    def acquire(self, n: int = 1, *, timeout: float | None = None) -> float:
        """Take ``n`` tokens, waiting for them up to ``timeout`` seconds; return the wait.

        ``None`` waits as long as it takes. The current deadline
        (:mod:`hystrixpy.deadline`) shortens the timeout. If the tokens would
        come too late, nothing is taken and :class:`RateLimitExceeded` says
        when they would (``retry_after``). Otherwise they are reserved at once
        (the bucket goes into debt, so later callers wait behind this one) and
        the call sleeps on hystrixpy's clock, holding no lock; tokens reserved
        by a sleep that is interrupted are spent all the same.
        """
        allowed = time_allowed(timeout)
        granted, _, wait = self._take(n, allowed, False)
        if not granted:
            raise too_long(self.name, None, n, wait, allowed)
        if wait > 0.0:
            clock.sleep(wait)
        return wait

    def wait_time(self, n: int = 1) -> float:
        """Seconds until ``n`` tokens would be there (0.0 if they are), counting waiters' debt."""
        return self._take(n, 0.0, True)[2]

    def hit(self, n: int = 1) -> RateLimitDecision:
        """Like :meth:`try_acquire`, answering with a :class:`RateLimitDecision`.

        ``limit`` is the capacity, ``remaining`` the whole tokens left,
        ``reset_after`` the seconds until the bucket is full again.
        """
        granted, available, wait = self._take(n, 0.0, False)
        return bucket_decision(granted, available, wait, self.policy)

    def peek(self, n: int = 1) -> RateLimitDecision:
        """The decision :meth:`hit` would give now, taking nothing."""
        granted, available, wait = self._take(n, 0.0, True)
        return bucket_decision(granted, available, wait, self.policy)

    def _take(self, n: int, max_wait: float, peek: bool) -> tuple[bool, float, float]:
        check_count(n, self._capacity, "capacity", f"TokenBucket {self.name!r}")
        store = self._store
        if store is None:
            with self._lock:
                return take_tokens(
                    self._state, n, self._capacity, self._rate, clock.monotonic(), max_wait, peek
                )
        return store.take(
            self.name, n, self._capacity, self._rate, clock.monotonic(), max_wait, peek
        )

    def __repr__(self) -> str:
        return (
            f"TokenBucket(name={self.name!r}, capacity={self._capacity}, "
            f"refill_per_second={self._rate})"
        )


class KeyedTokenBucket:
    """A token bucket per key: each key (a client, a tenant) has a bucket of its own.

    The same policy as :class:`TokenBucket` for every key; each method takes
    the key first. A key's bucket starts full, and once it has refilled to
    full it holds nothing worth keeping, so the store forgets it (at most
    ``capacity / refill_per_second`` seconds after its last use, plus the
    time any debt took to pay). The state is kept in ``store`` (by default
    a :class:`MemoryStore` of its own) under the key ``(name, key)``.
    """

    __slots__ = ("_capacity", "_rate", "_store", "name", "policy")

    def __init__(
        self,
        *,
        capacity: int,
        refill_per_second: float,
        name: str = "KeyedTokenBucket",
        store: RateLimitStore | None = None,
    ) -> None:
        self.policy = TokenBucketPolicy(capacity=capacity, refill_per_second=refill_per_second)
        self.name = check_name("KeyedTokenBucket", name)
        self._capacity = self.policy.capacity
        self._rate = self.policy.refill_per_second
        self._store: RateLimitStore = MemoryStore() if store is None else store

    def try_acquire(self, key: Hashable, n: int = 1) -> bool:
        """Take ``n`` tokens from ``key``'s bucket if it has them now."""
        return self._take(key, n, 0.0, False)[0]

    def acquire(self, key: Hashable, n: int = 1, *, timeout: float | None = None) -> float:
        """Take ``n`` tokens of ``key``, waiting up to ``timeout`` (as TokenBucket.acquire)."""
        allowed = time_allowed(timeout)
        granted, _, wait = self._take(key, n, allowed, False)
        if not granted:
            raise too_long(self.name, key, n, wait, allowed)
        if wait > 0.0:
            clock.sleep(wait)
        return wait

    def wait_time(self, key: Hashable, n: int = 1) -> float:
        """Seconds until ``key``'s bucket would have ``n`` tokens."""
        return self._take(key, n, 0.0, True)[2]

    def hit(self, key: Hashable, n: int = 1) -> RateLimitDecision:
        """Like :meth:`try_acquire`, answering with a :class:`RateLimitDecision`."""
        granted, available, wait = self._take(key, n, 0.0, False)
        return bucket_decision(granted, available, wait, self.policy)

    def peek(self, key: Hashable, n: int = 1) -> RateLimitDecision:
        """The decision :meth:`hit` would give ``key`` now, taking nothing."""
        granted, available, wait = self._take(key, n, 0.0, True)
        return bucket_decision(granted, available, wait, self.policy)

    def for_key(self, key: Hashable) -> BucketForKey:
        """The bucket of ``key`` as an unkeyed limiter (with ``acquire`` too)."""
        return BucketForKey(self, key)

    def _take(
        self, key: Hashable, n: int, max_wait: float, peek: bool
    ) -> tuple[bool, float, float]:
        check_count(n, self._capacity, "capacity", f"KeyedTokenBucket {self.name!r}")
        return self._store.take(
            (self.name, key), n, self._capacity, self._rate, clock.monotonic(), max_wait, peek
        )

    def __repr__(self) -> str:
        return (
            f"KeyedTokenBucket(name={self.name!r}, capacity={self._capacity}, "
            f"refill_per_second={self._rate})"
        )


class SlidingWindow:
    """At most ``limit`` hits per key in any ``window_seconds``; a refused hit is not counted.

    ``mode="exact"`` keeps the time of every counted hit of a key (up to
    ``limit`` of them): it never allows more than ``limit`` in any window.
    ``mode="approximate"`` keeps two numbers per key, the hits of the current
    fixed bucket of ``window_seconds`` and of the one before, and counts the
    previous bucket's hits weighted by how much of it the window still
    overlaps. It assumes those hits were spread evenly; when they were bunched
    at the end of their bucket it undercounts, and in the worst case a window
    holds ``2 * limit - 1`` hits (each fixed bucket alone never holds more
    than ``limit``); it may also refuse a little early. For evenly spread
    traffic it is close to exact.

    A key's state is forgotten once nothing of it is left in the window: at
    most ``window_seconds`` after its last counted hit (exact), or at the end
    of the bucket after the one it was last hit in (approximate). The state
    lives in ``store`` (by default a :class:`MemoryStore` of its own) under
    the key ``(name, key)``.
    """

    __slots__ = ("_limit", "_mode", "_store", "_window", "name", "policy")

    def __init__(
        self,
        *,
        limit: int,
        window_seconds: float,
        mode: WindowMode = "exact",
        name: str = "SlidingWindow",
        store: RateLimitStore | None = None,
    ) -> None:
        self.policy = SlidingWindowPolicy(limit=limit, window_seconds=window_seconds, mode=mode)
        self.name = check_name("SlidingWindow", name)
        self._limit = self.policy.limit
        self._window = self.policy.window_seconds
        self._mode = self.policy.mode
        self._store: RateLimitStore = MemoryStore() if store is None else store

    def hit(self, key: Hashable, n: int = 1) -> RateLimitDecision:
        """Count ``n`` hits on ``key`` if they fit in its window; answer with a decision.

        ``remaining`` is how many single hits still fit now; ``reset_after``
        the seconds until the window holds nothing of ``key``.
        """
        return self._decide(key, n, False)

    def peek(self, key: Hashable, n: int = 1) -> RateLimitDecision:
        """The decision :meth:`hit` would give ``key`` now, counting nothing."""
        return self._decide(key, n, True)

    def try_acquire(self, key: Hashable, n: int = 1) -> bool:
        """Count ``n`` hits on ``key`` if they fit; whether they did."""
        return self._hit(key, n, False)[0]

    def wait_time(self, key: Hashable, n: int = 1) -> float:
        """Seconds until ``n`` more hits on ``key`` would fit (0.0 if they do now)."""
        return self._hit(key, n, True)[2]

    def for_key(self, key: Hashable) -> ForKey:
        """The window of ``key`` as an unkeyed limiter."""
        return ForKey(self, key)

    def _hit(self, key: Hashable, n: int, peek: bool) -> tuple[bool, float, float, float]:
        check_count(n, self._limit, "limit", f"SlidingWindow {self.name!r}")
        return self._store.hit(
            (self.name, key), n, self._limit, self._window, clock.monotonic(), self._mode, peek
        )

    def _decide(self, key: Hashable, n: int, peek: bool) -> RateLimitDecision:
        allowed, count, retry_after, reset_after = self._hit(key, n, peek)
        left = self._limit - count + EPSILON
        return make_decision(
            allowed,
            self._limit,
            int(left) if left > 0.0 else 0,
            reset_after,
            clock.wall_time() + reset_after,
            retry_after,
        )

    def __repr__(self) -> str:
        return (
            f"SlidingWindow(name={self.name!r}, limit={self._limit}, "
            f"window_seconds={self._window}, mode={self._mode!r})"
        )
