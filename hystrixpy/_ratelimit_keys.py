"""A keyed limiter seen through one key: what ``for_key(key)`` returns (hystrixpy.ratelimit)."""

from __future__ import annotations

from collections.abc import Hashable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hystrixpy._ratelimit_policy import RateLimitDecision
    from hystrixpy.ratelimit import KeyedRateLimiter, KeyedTokenBucket

__all__ = ["BucketForKey", "ForKey"]


class ForKey:
    """A keyed limiter seen through one key: a :class:`RateLimiter` (from ``for_key``)."""

    __slots__ = ("key", "limiter")

    def __init__(self, limiter: KeyedRateLimiter, key: Hashable) -> None:
        self.limiter = limiter
        self.key = key

    @property
    def name(self) -> str:
        """The keyed limiter's name."""
        return self.limiter.name

    def try_acquire(self, n: int = 1) -> bool:
        """See :meth:`KeyedRateLimiter.try_acquire`."""
        return self.limiter.try_acquire(self.key, n)

    def hit(self, n: int = 1) -> RateLimitDecision:
        """See :meth:`KeyedRateLimiter.hit`."""
        return self.limiter.hit(self.key, n)

    def peek(self, n: int = 1) -> RateLimitDecision:
        """See :meth:`KeyedRateLimiter.peek`."""
        return self.limiter.peek(self.key, n)

    def wait_time(self, n: int = 1) -> float:
        """See :meth:`KeyedRateLimiter.wait_time`."""
        return self.limiter.wait_time(self.key, n)

    def __repr__(self) -> str:
        return f"{self.limiter!r}.for_key({self.key!r})"


class BucketForKey(ForKey):
    """A :class:`KeyedTokenBucket` seen through one key, able to wait as well."""

    __slots__ = ()
    limiter: KeyedTokenBucket

    def acquire(self, n: int = 1, *, timeout: float | None = None) -> float:
        """See :meth:`KeyedTokenBucket.acquire`."""
        return self.limiter.acquire(self.key, n, timeout=timeout)
