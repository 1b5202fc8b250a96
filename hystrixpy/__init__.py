"""hystrixpy: latency and fault tolerance for Python, in the style of Netflix Hystrix.

Wrap each call to a dependency in a :class:`Command`; every call gets a
bulkhead, a timeout, a circuit breaker, rolling metrics and a fallback.
"""

from __future__ import annotations

from hystrixpy import breakers
from hystrixpy.breakers import Breaker, BreakerConfig, BreakerStats
from hystrixpy.circuit_breaker import CircuitBreaker, CircuitState, NoOpCircuitBreaker
from hystrixpy.command import Command
from hystrixpy.decorators import CommandFunction, command
from hystrixpy.events import EventType, ExecutionResult, FailureType, IsolationStrategy
from hystrixpy.exceptions import (
    BadRequestError,
    CallTimeoutError,
    CircuitBreakerError,
    CommandTimeoutError,
    HystrixError,
    HystrixRuntimeError,
    RateLimitExceeded,
    RejectedError,
    RetryError,
    ShortCircuitedError,
)
from hystrixpy.hooks import ExecutionHook, HookEvent
from hystrixpy.metrics import CommandMetrics, HealthCounts, ThreadPoolMetrics
from hystrixpy.properties import CommandProperties, ThreadPoolProperties
from hystrixpy.ratelimit import (
    KeyedTokenBucket,
    RateLimitDecision,
    RateLimiter,
    SlidingWindow,
    TokenBucket,
)
from hystrixpy.registry import (
    circuit_breaker,
    command_metrics,
    configure,
    evict_idle,
    register_hook,
    reset,
    thread_pool,
    thread_pool_metrics,
    unregister_hook,
)
from hystrixpy.retry import (
    RetryOutcome,
    RetryPolicy,
    is_transient,
    make_retryable,
    retry,
    retry_with_result,
)

__version__ = "0.1.0"

__all__ = [
    "BadRequestError",
    "Breaker",
    "BreakerConfig",
    "BreakerStats",
    "CallTimeoutError",
    "CircuitBreaker",
    "CircuitBreakerError",
    "CircuitState",
    "Command",
    "CommandFunction",
    "CommandMetrics",
    "CommandProperties",
    "CommandTimeoutError",
    "EventType",
    "ExecutionHook",
    "ExecutionResult",
    "FailureType",
    "HealthCounts",
    "HookEvent",
    "HystrixError",
    "HystrixRuntimeError",
    "IsolationStrategy",
    "KeyedTokenBucket",
    "NoOpCircuitBreaker",
    "RateLimitDecision",
    "RateLimitExceeded",
    "RateLimiter",
    "RejectedError",
    "RetryError",
    "RetryOutcome",
    "RetryPolicy",
    "ShortCircuitedError",
    "SlidingWindow",
    "ThreadPoolMetrics",
    "ThreadPoolProperties",
    "TokenBucket",
    "__version__",
    "breakers",
    "circuit_breaker",
    "command",
    "command_metrics",
    "configure",
    "evict_idle",
    "is_transient",
    "make_retryable",
    "register_hook",
    "reset",
    "retry",
    "retry_with_result",
    "thread_pool",
    "thread_pool_metrics",
    "unregister_hook",
]
