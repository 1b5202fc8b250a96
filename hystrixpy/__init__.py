"""hystrixpy: latency and fault tolerance for Python, in the style of Netflix Hystrix.

Wrap each call to a dependency in a :class:`Command`; every call gets a
bulkhead, a timeout, a circuit breaker, rolling metrics and a fallback.
"""

from __future__ import annotations

from hystrixpy.circuit_breaker import CircuitBreaker, CircuitState, NoOpCircuitBreaker
from hystrixpy.command import Command
from hystrixpy.events import EventType, ExecutionResult, FailureType, IsolationStrategy
from hystrixpy.exceptions import (
    BadRequestError,
    CommandTimeoutError,
    HystrixError,
    HystrixRuntimeError,
    RejectedError,
    ShortCircuitedError,
)
from hystrixpy.hooks import ExecutionHook, HookEvent
from hystrixpy.metrics import CommandMetrics, HealthCounts, ThreadPoolMetrics
from hystrixpy.properties import CommandProperties, ThreadPoolProperties
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

__version__ = "0.1.0"

__all__ = [
    "BadRequestError",
    "CircuitBreaker",
    "CircuitState",
    "Command",
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
    "NoOpCircuitBreaker",
    "RejectedError",
    "ShortCircuitedError",
    "ThreadPoolMetrics",
    "ThreadPoolProperties",
    "__version__",
    "circuit_breaker",
    "command_metrics",
    "configure",
    "evict_idle",
    "register_hook",
    "reset",
    "thread_pool",
    "thread_pool_metrics",
    "unregister_hook",
]
