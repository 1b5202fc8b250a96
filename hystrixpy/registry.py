"""The process-wide registry: per-key breakers, metrics, bulkheads, pools and configuration.

This is hystrixpy's only module-level mutable state. :func:`reset` forgets it
all (shutting pools down); after ``os.fork()`` the child starts with fresh
runtime state and keeps the configuration.
"""

from __future__ import annotations

import dataclasses
import math
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hystrixpy import _log, clock
from hystrixpy._timer import DeadlineTimer
from hystrixpy.bulkhead import SemaphoreBulkhead, ThreadPoolBulkhead
from hystrixpy.circuit_breaker import CircuitBreaker, CircuitState, NoOpCircuitBreaker
from hystrixpy.config import Configuration
from hystrixpy.hooks import HookRegistry
from hystrixpy.metrics import CommandMetrics, ThreadPoolMetrics
from hystrixpy.properties import CommandProperties, ThreadPoolProperties
from hystrixpy.ratelimit import RateLimiter, TokenBucket
from hystrixpy.retry import RetryPolicy

if TYPE_CHECKING:
    from hystrixpy.command import Command

__all__ = [
    "CommandKeyState",
    "circuit_breaker",
    "command_metrics",
    "command_states",
    "configure",
    "evict_idle",
    "hooks",
    "register_hook",
    "reset",
    "thread_pool",
    "thread_pool_metrics",
    "thread_pools",
    "unregister_hook",
]


def _retry_policy(
    properties: CommandProperties, declared: RetryPolicy | None
) -> RetryPolicy | None:
    """run()'s retry policy: the class's, with the resolved numbers; ``None`` for one attempt."""
    if properties.retry_max_attempts <= 1:
        return None
    return dataclasses.replace(
        declared if declared is not None else RetryPolicy(),
        max_attempts=properties.retry_max_attempts,
        initial_delay_ms=properties.retry_initial_delay_ms,
        backoff_multiplier=properties.retry_backoff_multiplier,
        max_delay_ms=properties.retry_max_delay_ms,
        jitter=properties.retry_jitter,
    )


def _timeout_seconds(properties: CommandProperties) -> float | None:
    """An execution's time budget in seconds, ``None`` when timeouts are off."""
    if not properties.execution_timeout_enabled:
        return None
    return properties.execution_timeout_ms / 1000.0


def _rate_limiter(
    properties: CommandProperties,
    declared: RateLimiter | None,
    current: RateLimiter | None,
) -> RateLimiter | None:
    """The key's limiter: a token bucket from ``rate_limit_*`` if set, else the class's own.

    A configured bucket whose numbers did not change is kept (with its tokens).
    """
    rate = properties.rate_limit_per_second
    if rate is None:
        return declared
    burst = properties.rate_limit_burst or max(1, math.ceil(rate))
    if (
        isinstance(current, TokenBucket)
        and current.policy.capacity == burst
        and current.policy.refill_per_second == rate
    ):
        return current
    return TokenBucket(capacity=burst, refill_per_second=rate, name="configured")


def _first_adaptation(properties: CommandProperties) -> float:
    """When the first execution recomputes the timeout: at once if adaptive, else never."""
    if properties.execution_timeout_adaptive and properties.execution_timeout_enabled:
        return float("-inf")
    return float("inf")


class CommandKeyState:
    """Everything kept for one command key, refreshed when the configuration changes."""

    def __init__(
        self,
        command_key: str,
        group_key: str,
        thread_pool_key: str,
        declared: CommandProperties,
        declared_pool: ThreadPoolProperties,
        *,
        declared_retry: RetryPolicy | None = None,
        declared_rate_limiter: RateLimiter | None = None,
    ) -> None:
        self.command_key = command_key
        self.declared_rate_limiter = declared_rate_limiter
        self.group_key = group_key
        self.declared = declared
        self.declared_pool = declared_pool
        self.declared_retry = declared_retry
        self.default_pool_key = thread_pool_key
        self.config_version = _config.version
        self.properties = _config.command_properties(command_key, declared)
        self.timeout_seconds = _timeout_seconds(self.properties)
        #: The timeout in force, in ms: the configured one, or the adaptive timeout's last value.
        self.timeout_ms = self.properties.execution_timeout_ms
        #: When an adaptive timeout is next recomputed (never, unless it is adaptive).
        self.adapt_at = _first_adaptation(self.properties)
        #: How run() is retried within one execution (``None``: it is attempted once).
        self.retry_policy = _retry_policy(self.properties, declared_retry)
        #: Checked before anything else; ``None``: the key has no rate limit.
        self.rate_limiter = _rate_limiter(self.properties, declared_rate_limiter, None)
        self.thread_pool_key = self.properties.thread_pool_key_override or thread_pool_key
        self.metrics = CommandMetrics(command_key, group_key, self.thread_pool_key, self.properties)
        self.circuit_breaker: CircuitBreaker | NoOpCircuitBreaker = self._new_breaker()
        self.execution_semaphore = SemaphoreBulkhead(
            self.properties.execution_isolation_semaphore_max_concurrent_requests
        )
        self.fallback_semaphore = SemaphoreBulkhead(
            self.properties.fallback_isolation_semaphore_max_concurrent_requests
        )
        self._pool: ThreadPoolBulkhead | None = None
        #: When an execution of this key last began (monotonic seconds), for evict_idle().
        self.last_used = clock.monotonic()

    def adapt_timeout(self, now: float) -> None:
        """Recompute an adaptive timeout from the successful run() latencies; see properties.

        Called by the first execution at or after :attr:`adapt_at`, so at most once
        per health snapshot interval. Until the window holds
        ``execution_timeout_min_samples`` successes the configured timeout applies.
        """
        properties = self.properties
        self.adapt_at = now + properties.metrics_health_snapshot_interval_ms / 1000.0
        latency_ms, samples = self.metrics.success_latency(
            properties.execution_timeout_percentile, now
        )
        if samples < properties.execution_timeout_min_samples:
            timeout_ms = properties.execution_timeout_ms
        else:
            timeout_ms = math.ceil(latency_ms * properties.execution_timeout_multiplier)
            timeout_ms = max(properties.execution_timeout_min_ms, timeout_ms)
            timeout_ms = min(properties.adaptive_timeout_ceiling_ms, timeout_ms)
        if timeout_ms != self.timeout_ms:
            _log.info(
                "adaptive_timeout_changed",
                command_key=self.command_key,
                timeout_ms=timeout_ms,
                previous_timeout_ms=self.timeout_ms,
                percentile_ms=latency_ms,
                samples=samples,
            )
            self.timeout_ms = timeout_ms
            self.timeout_seconds = timeout_ms / 1000.0

    def _new_breaker(self) -> CircuitBreaker | NoOpCircuitBreaker:
        if not self.properties.circuit_breaker_enabled:
            return NoOpCircuitBreaker(self.command_key)
        return CircuitBreaker(self.command_key, self.metrics, self.properties, self._breaker_moved)

    def _breaker_moved(self, command_key: str, old: CircuitState, new: CircuitState) -> None:
        if hooks.active:
            hooks.notify("on_circuit_state_change", command_key, old, new)
        log = _log.warning if new is CircuitState.OPEN else _log.info
        log(
            "circuit_" + new.name.lower(),
            command_key=command_key,
            group_key=self.group_key,
            thread_pool_key=self.thread_pool_key,
            previous_state=old.name,
        )

    def refresh(self) -> None:
        """Re-resolve the properties after a configuration change and hand them on."""
        self.config_version = _config.version
        properties = _config.command_properties(self.command_key, self.declared)
        self.properties = properties
        self.timeout_seconds = _timeout_seconds(properties)
        self.timeout_ms = properties.execution_timeout_ms
        self.adapt_at = _first_adaptation(properties)
        self.retry_policy = _retry_policy(properties, self.declared_retry)
        self.rate_limiter = _rate_limiter(properties, self.declared_rate_limiter, self.rate_limiter)
        self.thread_pool_key = properties.thread_pool_key_override or self.default_pool_key
        self.metrics.reconfigure(properties)
        if properties.circuit_breaker_enabled != isinstance(self.circuit_breaker, CircuitBreaker):
            self.circuit_breaker = self._new_breaker()
        else:
            self.circuit_breaker.reconfigure(properties)
        self.execution_semaphore.resize(
            properties.execution_isolation_semaphore_max_concurrent_requests
        )
        self.fallback_semaphore.resize(
            properties.fallback_isolation_semaphore_max_concurrent_requests
        )
        self._pool = None

    def pool(self, requested_key: str) -> ThreadPoolBulkhead:
        """The pool to run on: the configured override, else ``requested_key``."""
        pool_key = self.properties.thread_pool_key_override or requested_key
        if pool_key == self.thread_pool_key:
            pool = self._pool
            if pool is None:
                pool = self._pool = thread_pool(self.thread_pool_key, self.declared_pool)
            return pool
        return thread_pool(pool_key, self.declared_pool)


_lock = threading.RLock()
_config = Configuration()
#: The registered execution hooks (see :mod:`hystrixpy.hooks`).
hooks = HookRegistry()
_states: dict[str, CommandKeyState] = {}
_pools: dict[str, tuple[ThreadPoolBulkhead, ThreadPoolProperties, int]] = {}
_timer: DeadlineTimer | None = None
_deadline_pool: ThreadPoolBulkhead | None = None
# Fallbacks after a queued execution's deadline: a few workers, a deep queue (each key's
# fallback semaphore bounds what can wait), and the timer's own thread when even that is full.
_DEADLINE_POOL_PROPERTIES = ThreadPoolProperties(
    core_size=8, max_queue_size=10_000, queue_size_rejection_threshold=10_000
)
# The properties each command class declared for its key, kept across reset() (the classes
# still exist), so configure() can refuse an override that clashes with a class not yet used.
_declared: dict[str, list[Declaration]] = {}


@dataclass(frozen=True, slots=True)
class Declaration:
    """What a command class says about its key: its group, pool and properties."""

    command_key: str
    group_key: str
    thread_pool_key: str
    properties: CommandProperties
    thread_pool_properties: ThreadPoolProperties
    retry: RetryPolicy | None = None
    rate_limiter: RateLimiter | None = None


def declare(declaration: Declaration) -> None:
    """Note a command class's key and properties; fail now if the configuration clashes."""
    _resolve_all(
        _config,
        declaration.command_key,
        declaration.properties,
        declaration.thread_pool_key,
        declaration.thread_pool_properties,
    )
    known = _declared.setdefault(declaration.command_key, [])
    if declaration not in known:
        known.append(declaration)


def declared_states() -> list[CommandKeyState]:
    """The state of every command key in use or declared by a class (created if need be).

    Lets monitoring show every command from the start, before any has run.
    """
    for declarations in list(_declared.values()):
        _declared_state(declarations[0])
    return command_states()


def _declared_state(declaration: Declaration) -> CommandKeyState:
    """The state of a declared key, created with that declaration's properties if need be."""
    return command_state(
        declaration.command_key,
        declaration.group_key,
        declaration.thread_pool_key,
        declaration.properties,
        declaration.thread_pool_properties,
        declared_retry=declaration.retry,
        declared_rate_limiter=declaration.rate_limiter,
    )


def command_state(
    command_key: str,
    group_key: str,
    thread_pool_key: str,
    declared: CommandProperties,
    declared_pool: ThreadPoolProperties,
    *,
    declared_retry: RetryPolicy | None = None,
    declared_rate_limiter: RateLimiter | None = None,
) -> CommandKeyState:
    """The state of ``command_key``, created on first use (its first class's properties win)."""
    state = _states.get(command_key)
    if state is None:
        with _lock:
            state = _states.get(command_key)
            if state is None:
                state = CommandKeyState(
                    command_key,
                    group_key,
                    thread_pool_key,
                    declared,
                    declared_pool,
                    declared_retry=declared_retry,
                    declared_rate_limiter=declared_rate_limiter,
                )
                _states[command_key] = state
    if state.config_version != _config.version:
        state.refresh()
    return state


def state_of(command: Command[Any]) -> CommandKeyState:
    """The key state of ``command``'s key, with its class's properties for a key used first."""
    cls = type(command)
    return command_state(
        command.command_key,
        command.group_key,
        command.thread_pool_key,
        cls.properties,
        cls.thread_pool_properties,
        declared_retry=cls.retry,
        declared_rate_limiter=cls.rate_limiter,
    )


def thread_pool(pool_key: str, declared: ThreadPoolProperties | None = None) -> ThreadPoolBulkhead:
    """The pool for ``pool_key``, created on first use with the first user's properties."""
    entry = _pools.get(pool_key)
    if entry is not None and entry[2] == _config.version:
        return entry[0]
    with _lock:
        entry = _pools.get(pool_key)
        if entry is None:
            first_declared = declared or ThreadPoolProperties()
            properties = _config.pool_properties(pool_key, first_declared)
            pool = ThreadPoolBulkhead(pool_key, properties)
        else:
            pool, first_declared, _ = entry
            pool.reconfigure(_config.pool_properties(pool_key, first_declared))
        _pools[pool_key] = (pool, first_declared, _config.version)
        return pool


def deadline_pool() -> ThreadPoolBulkhead:
    """The pool on which queued executions that timed out run their fallbacks."""
    global _deadline_pool
    current = _deadline_pool
    if current is None:
        with _lock:
            if _deadline_pool is None:
                _deadline_pool = ThreadPoolBulkhead("HystrixTimeouts", _DEADLINE_POOL_PROPERTIES)
            current = _deadline_pool
    return current


def timer() -> DeadlineTimer:
    """The shared deadline timer for queued executions."""
    global _timer
    current = _timer
    if current is None:
        with _lock:
            if _timer is None:
                _timer = DeadlineTimer()
            current = _timer
    return current


def thread_pool_metrics(pool_key: str) -> ThreadPoolMetrics:
    """The metrics of the pool ``pool_key``; ``KeyError`` if no command has used it."""
    entry = _pools.get(pool_key)
    if entry is None:
        raise KeyError(f"no thread pool with key {pool_key!r} has been used")
    return thread_pool(pool_key).metrics


def known_pool_keys() -> list[str]:
    """The thread-pool keys in use, in the order they were first used."""
    return list(_pools)


def command_states() -> list[CommandKeyState]:
    """The state of every command key in use, refreshed to the current configuration."""
    states = list(_states.values())
    for state in states:
        if state.config_version != _config.version:
            state.refresh()
    return states


def thread_pools() -> list[ThreadPoolBulkhead]:
    """Every thread pool in use, refreshed to the current configuration."""
    return [
        entry[0] if entry[2] == _config.version else thread_pool(key)
        for key, entry in list(_pools.items())
    ]


def evict_idle(idle_seconds: float) -> list[str]:
    """Forget command keys unused for ``idle_seconds``, and pools idle as long that no key uses.

    A key with a run() still executing is kept. An evicted key starts afresh
    (closed breaker, empty metrics) if it is used again; a pool that is dropped
    is shut down after its queued work. Returns the evicted command keys.
    Call it now and then in processes that make command keys dynamically
    (per tenant, per host, ...), so their metrics do not pile up.
    """
    if idle_seconds < 0:
        raise ValueError(f"idle_seconds must be >= 0, got {idle_seconds!r}")
    cutoff = clock.monotonic() - idle_seconds
    with _lock:
        evicted = [
            key
            for key, state in _states.items()
            if state.last_used <= cutoff and state.metrics.current_concurrent_execution_count == 0
        ]
        for key in evicted:
            del _states[key]
        in_use = {state.thread_pool_key for state in _states.values()}
        idle_pools = [
            key
            for key, (pool, _, _) in _pools.items()
            if key not in in_use and pool.last_used <= cutoff and pool.admitted_count == 0
        ]
        dropped = [_pools.pop(key)[0] for key in idle_pools]
    for pool in dropped:
        pool.shutdown(wait=False)
    if evicted:
        _log.info("command_keys_evicted", count=len(evicted), pools=len(dropped))
    return evicted


def command_metrics(command_key: str) -> CommandMetrics:
    """The metrics of ``command_key``; ``KeyError`` if it has neither run nor been declared."""
    return _known_state(command_key).metrics


def circuit_breaker(command_key: str) -> CircuitBreaker | NoOpCircuitBreaker:
    """The breaker of ``command_key``; ``KeyError`` if it has neither run nor been declared."""
    return _known_state(command_key).circuit_breaker


def _known_state(command_key: str) -> CommandKeyState:
    state = _states.get(command_key)
    if state is None:
        declarations = _declared.get(command_key)
        if not declarations:
            raise KeyError(f"no command with key {command_key!r} has been used or declared")
        return _declared_state(declarations[0])
    if state.config_version != _config.version:
        state.refresh()
    return state


def known_command_keys() -> list[str]:
    """The command keys in use, in the order they were first used."""
    return list(_states)


def register_hook(hook: object) -> object:
    """Register an execution hook (see :mod:`hystrixpy.hooks`); returns it."""
    return hooks.register(hook)


def unregister_hook(hook: object) -> None:
    """Remove a hook registered with :func:`register_hook`."""
    hooks.unregister(hook)


def configure(settings: Mapping[str, object]) -> None:
    """Set configuration overrides by Hystrix or snake_case names (see :mod:`hystrixpy.config`).

    Everything is checked before anything changes: an unknown name or a bad
    value raises ``ValueError`` and leaves the configuration as it was.
    Changes apply from the next execution. Names that start with ``chaos.``
    are fault-injection settings (:mod:`hystrixpy.chaos`), stored for when it is enabled.
    """
    from hystrixpy import chaos  # noqa: PLC0415 - a pattern; the registry needs it only here

    chaos_settings = {name: value for name, value in settings.items() if name.startswith("chaos.")}
    with _lock:
        if not chaos_settings:
            _config.configure(settings, _validate_known_keys)
            return
        install_chaos = chaos.prepare(chaos_settings)
        if len(chaos_settings) < len(settings):
            rest = {name: value for name, value in settings.items() if name not in chaos_settings}
            _config.configure(rest, _validate_known_keys)
        install_chaos()


def _validate_known_keys(config: Configuration) -> None:
    for declarations in list(_declared.values()):
        for d in declarations:
            _resolve_all(
                config, d.command_key, d.properties, d.thread_pool_key, d.thread_pool_properties
            )
    for state in list(_states.values()):
        _resolve_all(
            config, state.command_key, state.declared, state.default_pool_key, state.declared_pool
        )
    for pool_key, (_, declared_pool, _) in list(_pools.items()):
        config.pool_properties(pool_key, declared_pool)


def _resolve_all(
    config: Configuration,
    command_key: str,
    declared: CommandProperties,
    pool_key: str,
    declared_pool: ThreadPoolProperties,
) -> None:
    """Resolve a command key's properties and those of the pool it would run on (or raise)."""
    properties = config.command_properties(command_key, declared)
    try:
        config.pool_properties(properties.thread_pool_key_override or pool_key, declared_pool)
    except ValueError as error:
        raise ValueError(f"{error} (thread_pool_properties of command {command_key!r})") from None


def configuration() -> Configuration:
    """The live configuration object."""
    return _config


def reset() -> None:
    """Forget every breaker, metric, pool (shut down), configuration override and hook.

    Standalone breakers (:mod:`hystrixpy.breakers`) are forgotten too, and fault
    injection (:mod:`hystrixpy.chaos`) is disabled, with its settings forgotten.
    Meant for tests and reloads. Work already queued on a pool still runs.
    """
    from hystrixpy import breakers, chaos  # noqa: PLC0415 - patterns; needed only here

    global _timer, _deadline_pool
    chaos.clear()
    breakers.clear()
    with _lock:
        pools = [entry[0] for entry in _pools.values()]
        if _deadline_pool is not None:
            pools.append(_deadline_pool)
            _deadline_pool = None
        _pools.clear()
        _states.clear()
        _config.clear()
        hooks.clear()
        _log.forget_cached_levels()
        old_timer, _timer = _timer, None
    for pool in pools:
        pool.shutdown(wait=False)
    if old_timer is not None:
        old_timer.stop()


def _after_fork_in_child() -> None:
    """Start the child clean: no pools, timer or held permits from the parent's threads."""
    global _lock, _timer, _deadline_pool
    _lock = threading.RLock()
    _pools.clear()
    _states.clear()
    _timer = None
    _deadline_pool = None
    _config.after_fork()


if hasattr(os, "register_at_fork"):  # pragma: no branch - every POSIX Python has it
    os.register_at_fork(after_in_child=_after_fork_in_child)
