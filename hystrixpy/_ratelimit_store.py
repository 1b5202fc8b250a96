"""Where rate limiters keep their state: the :class:`RateLimitStore` interface and memory.

A limiter keeps the policy (capacity and rate, or limit and window); a store
keeps the state of each key and applies one step of the algorithm to it,
atomically. The in-memory :class:`MemoryStore` is the default; a shared
backend (Redis, with one script per method) implements the same two methods.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from collections.abc import Hashable
from itertools import repeat
from typing import Protocol, TypeVar

from hystrixpy import clock
from hystrixpy._ratelimit_policy import EPSILON, WindowMode

__all__ = ["MemoryStore", "RateLimitStore", "take_tokens"]

#: How many of the least recently used keys each call looks at, dropping those with no state left.
_PRUNE_BUDGET = 2
_DEFAULT_MAX_KEYS = 100_000


class RateLimitStore(Protocol):
    """The state of rate limiters, one entry per key: what a shared backend implements.

    Each method is one atomic step of one algorithm on one key. ``now`` is
    hystrixpy's monotonic clock (:func:`hystrixpy.clock.monotonic`); a store
    shared between processes should read a clock of its own instead (Redis'
    ``TIME``), since monotonic readings of two processes cannot be compared.
    Nothing absolute comes back: every time returned is seconds from now.
    With ``peek`` true the state is read, never changed (and an unknown key
    gets no entry).
    """

    def take(  # noqa: PLR0917 - positional: one call per request, and keywords cost
        self,
        key: Hashable,
        tokens: int,
        capacity: int,
        refill_per_second: float,
        now: float,
        max_wait: float,
        peek: bool,
    ) -> tuple[bool, float, float]:
        """Take ``tokens`` from the token bucket at ``key``: ``(granted, available, wait)``.

        A bucket not seen before starts full. It refills at
        ``refill_per_second`` up to ``capacity``. If the tokens are there, they
        are taken: ``(True, left, 0.0)``. If they would come within
        ``max_wait`` seconds, they are reserved at once by taking them into
        debt (``available`` goes negative, so later callers wait behind this
        one): ``(True, left, wait)``, and the caller must wait ``wait`` seconds
        before it uses them. Otherwise nothing is taken: ``(False, available,
        wait)`` with the seconds until ``tokens`` could be taken without waiting.
        """

    def hit(  # noqa: PLR0917 - positional, as take
        self,
        key: Hashable,
        n: int,
        limit: int,
        window_seconds: float,
        now: float,
        mode: WindowMode,
        peek: bool,
    ) -> tuple[bool, float, float, float]:
        """Count ``n`` hits on the sliding window at ``key``: ``(allowed, count, retry, reset)``.

        Allowed if ``count + n <= limit``, where ``count`` is what the window
        holds now (a weighted estimate in ``"approximate"`` mode); a refused
        hit is not counted. Returns the count after the call, the seconds
        until a hit of ``n`` would be allowed (``0.0`` if it was), and the
        seconds until the window holds nothing.
        """


class _Bucket:
    """A token bucket's state: its tokens (negative: owed to waiters) as of ``stamp``."""

    __slots__ = ("expires_at", "stamp", "tokens")

    def __init__(self, tokens: float, stamp: float) -> None:
        self.tokens = tokens
        self.stamp = stamp
        self.expires_at = stamp


def take_tokens(  # noqa: PLR0917 - positional, as RateLimitStore.take
    bucket: _Bucket,
    tokens: int,
    capacity: int,
    rate: float,
    now: float,
    max_wait: float,
    peek: bool,
) -> tuple[bool, float, float]:
    """One :meth:`RateLimitStore.take` step on ``bucket`` (the caller holds its lock)."""
    available = bucket.tokens
    elapsed = now - bucket.stamp
    if elapsed > 0.0:
        available += elapsed * rate
        if available > capacity:
            available = capacity
    # Always moved on: a clock that went back (another clock installed) must not freeze refills.
    bucket.tokens = available
    bucket.stamp = now
    need = tokens - available
    if need <= EPSILON:
        if peek:
            return True, available, 0.0
        bucket.tokens = available - tokens
        return True, bucket.tokens, 0.0
    wait = need / rate
    if wait <= max_wait and not peek:
        bucket.tokens = available - tokens
        return True, bucket.tokens, wait
    return wait <= max_wait, available, wait


class _Log:
    """An exact window's state: the time of every counted hit, oldest first."""

    __slots__ = ("expires_at", "times")

    def __init__(self, now: float) -> None:
        self.times: deque[float] = deque()
        self.expires_at = now


def _hit_log(  # noqa: PLR0917 - positional, as RateLimitStore.hit
    log: _Log, n: int, limit: int, window: float, now: float, peek: bool
) -> tuple[bool, float, float, float]:
    times = log.times
    horizon = now - window + EPSILON
    while times and times[0] <= horizon:
        times.popleft()
    count = len(times)
    if count + n <= limit:
        if not peek:
            if n == 1:
                times.append(now)
            else:
                times.extend(repeat(now, n))
            count += n
        retry_after = 0.0
        allowed = True
    else:
        # Enough of the oldest hits must leave for n more to fit.
        retry_after = times[count + n - limit - 1] + window - now
        allowed = False
    if times:
        log.expires_at = times[-1] + window
        return allowed, count, retry_after, log.expires_at - now
    log.expires_at = now
    return allowed, count, retry_after, 0.0


class _Counter:
    """An approximate window's state: the hits of the current fixed bucket and of the one before."""

    __slots__ = ("current", "expires_at", "index", "previous")

    def __init__(self, now: float, window: float) -> None:
        self.index = now // window
        self.previous = 0
        self.current = 0
        self.expires_at = now


def _hit_counter(  # noqa: PLR0917 - positional, as RateLimitStore.hit
    counter: _Counter, n: int, limit: int, window: float, now: float, peek: bool
) -> tuple[bool, float, float, float]:
    index = now // window
    if index != counter.index:
        counter.previous = counter.current if index == counter.index + 1 else 0
        counter.current = 0
        counter.index = index
    start = index * window
    into = now - start
    previous, current = counter.previous, counter.current
    estimate = previous * (1.0 - into / window) + current
    if estimate + n <= limit + EPSILON:
        if not peek:
            counter.current = current = current + n
            estimate += n
        retry_after = 0.0
        allowed = True
    elif current + n <= limit:
        # The previous bucket's weight falls as the current one goes on, far enough this bucket.
        reached = window * (1.0 - (limit - n - current) / previous)
        retry_after = reached - into if reached > into else 0.0
        allowed = False
    else:
        # Only in the next bucket, where this one's hits are the previous ones and fade.
        retry_after = start + window - now + window * (1.0 - (limit - n) / current)
        allowed = False
    if current:
        counter.expires_at = start + 2.0 * window
    elif previous:
        counter.expires_at = start + window
    else:
        counter.expires_at = now
    return allowed, estimate, retry_after, counter.expires_at - now


_State = TypeVar("_State", _Bucket, _Log, _Counter)


class MemoryStore:
    """The in-memory :class:`RateLimitStore`: the state of each key in this process.

    One short lock per call. A key's entry is dropped once it has nothing left
    to remember (its bucket full again, no hit left in its window): each call
    looks at the :data:`_PRUNE_BUDGET` least recently used keys and drops those,
    so while the store is in use an idle key is gone soon after; :meth:`prune`
    drops them all at once. At most ``max_keys`` keys (default 100,000) are
    kept of each kind (buckets, exact windows, approximate windows): a new key
    beyond that evicts the least recently used one, whose client then starts
    afresh, with a full limit (``evicted`` counts these).
    """

    def __init__(self, *, max_keys: int = _DEFAULT_MAX_KEYS) -> None:
        if isinstance(max_keys, bool) or not isinstance(max_keys, int):
            raise TypeError(f"MemoryStore max_keys must be an int, got {max_keys!r}")
        if max_keys < 1:
            raise ValueError(f"MemoryStore max_keys must be >= 1, got {max_keys!r}")
        self.max_keys = max_keys
        #: How many keys were evicted, still holding state, to stay within ``max_keys``.
        self.evicted = 0
        self._lock = threading.Lock()
        self._buckets: OrderedDict[Hashable, _Bucket] = OrderedDict()
        self._logs: OrderedDict[Hashable, _Log] = OrderedDict()
        self._counters: OrderedDict[Hashable, _Counter] = OrderedDict()

    def take(  # noqa: PLR0917 - positional: one call per request, and keywords cost
        self,
        key: Hashable,
        tokens: int,
        capacity: int,
        refill_per_second: float,
        now: float,
        max_wait: float,
        peek: bool,
    ) -> tuple[bool, float, float]:
        """Take tokens from the bucket at ``key`` (see :meth:`RateLimitStore.take`)."""
        with self._lock:
            table = self._buckets
            bucket = table.get(key)
            if bucket is not None:
                if not peek:
                    table.move_to_end(key)
            else:
                bucket = _Bucket(capacity, now)
                if not peek:
                    self._add(table, key, bucket, now)
            result = take_tokens(bucket, tokens, capacity, refill_per_second, now, max_wait, peek)
            bucket.expires_at = now + (capacity - bucket.tokens) / refill_per_second
            self._prune_some(table, now)
            return result

    def hit(  # noqa: PLR0917 - positional, as take
        self,
        key: Hashable,
        n: int,
        limit: int,
        window_seconds: float,
        now: float,
        mode: WindowMode,
        peek: bool,
    ) -> tuple[bool, float, float, float]:
        """Count hits on the window at ``key`` (see :meth:`RateLimitStore.hit`)."""
        with self._lock:
            if mode == "exact":
                logs = self._logs
                log = logs.get(key)
                if log is not None:
                    if not peek:
                        logs.move_to_end(key)
                else:
                    log = _Log(now)
                    if not peek:
                        self._add(logs, key, log, now)
                result = _hit_log(log, n, limit, window_seconds, now, peek)
                self._prune_some(logs, now)
                return result
            counters = self._counters
            counter = counters.get(key)
            if counter is not None:
                if not peek:
                    counters.move_to_end(key)
            else:
                counter = _Counter(now, window_seconds)
                if not peek:
                    self._add(counters, key, counter, now)
            result = _hit_counter(counter, n, limit, window_seconds, now, peek)
            self._prune_some(counters, now)
            return result

    def prune(self, now: float | None = None) -> int:
        """Drop every key with nothing left to remember as of ``now`` (default: the clock's now).

        Returns how many were dropped. Calls do some of this as they go; this
        is for whoever wants the memory back at once.
        """
        at = clock.monotonic() if now is None else now
        dropped = 0
        with self._lock:
            for table in (self._buckets, self._logs, self._counters):
                expired = [key for key, state in table.items() if state.expires_at <= at]
                for key in expired:
                    del table[key]
                dropped += len(expired)
        return dropped

    def clear(self) -> None:
        """Forget every key."""
        with self._lock:
            self._buckets.clear()
            self._logs.clear()
            self._counters.clear()

    def __len__(self) -> int:
        """How many keys hold state, of all kinds."""
        return len(self._buckets) + len(self._logs) + len(self._counters)

    def __repr__(self) -> str:
        return f"MemoryStore(keys={len(self)}, max_keys={self.max_keys})"

    def _add(
        self, table: OrderedDict[Hashable, _State], key: Hashable, state: _State, now: float
    ) -> None:
        state.expires_at = float("inf")  # until the call that made it has set its real expiry
        table[key] = state
        while len(table) > self.max_keys:
            _, oldest = table.popitem(last=False)
            if oldest.expires_at > now:
                self.evicted += 1

    @staticmethod
    def _prune_some(table: OrderedDict[Hashable, _State], now: float) -> None:
        for _ in range(_PRUNE_BUDGET):
            if not table:
                return
            key, state = next(iter(table.items()))
            if state.expires_at > now:
                return
            del table[key]
