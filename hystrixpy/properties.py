"""Command and thread-pool properties: frozen, validated, with Hystrix's defaults.

Each field is the snake_case form of a Hystrix property; its metadata holds
the Hystrix name, so configuration written for Hystrix carries over.

A properties object remembers which fields were set by name
(``explicit_fields``): ``CommandProperties(execution_timeout_ms=500)`` sets
one field, and the other fields, though they show the library defaults, still
give way to global configuration (see :mod:`hystrixpy.config`).
``dataclasses.replace`` keeps that record: the new object's explicit fields
are the old ones plus every field the change moved away from its default.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from hystrixpy.events import IsolationStrategy

__all__ = ["CommandProperties", "PropertySpec", "ThreadPoolProperties"]


@dataclass(frozen=True, slots=True)
class PropertySpec:
    """How one property is named in Hystrix, its kind, and its allowed range."""

    name: str
    hystrix_name: str
    kind: type
    minimum: int | None = None
    maximum: int | None = None
    nullable: bool = False

    def check(self, value: object) -> None:
        """Raise ``ValueError`` naming the property and the value if it is not allowed."""
        if value is None and self.nullable:
            return
        if self.kind is bool:
            ok = isinstance(value, bool)
        elif self.kind is int:
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif self.kind is float:
            ok = (
                isinstance(value, (int, float))
                and not isinstance(value, bool)
                and math.isfinite(value)
            )
        else:
            ok = isinstance(value, self.kind)
        if not ok:
            raise ValueError(
                f"{self.name} ({self.hystrix_name}) must be {_kind_name(self.kind)}, got {value!r}"
            )
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if self.minimum is not None and value < self.minimum:
                raise ValueError(
                    f"{self.name} ({self.hystrix_name}) must be >= {self.minimum}, got {value!r}"
                )
            if self.maximum is not None and value > self.maximum:
                raise ValueError(
                    f"{self.name} ({self.hystrix_name}) must be <= {self.maximum}, got {value!r}"
                )


def _kind_name(kind: type) -> str:
    if kind is bool:
        return "a bool"
    if kind is int:
        return "an int"
    if kind is str:
        return "a str"
    if kind is float:
        return "a finite number"
    return f"an {kind.__name__}"


def _prop(
    default: Any, hystrix: str, *, minimum: int | None = None, maximum: int | None = None
) -> Any:
    return field(
        default=default,
        metadata={"hystrix": hystrix, "minimum": minimum, "maximum": maximum},
    )


_P = TypeVar("_P", bound="_PropertiesBase")


class _PropertiesBase:
    """Behaviour shared by both properties classes (validation, explicit fields)."""

    __slots__ = ()
    SPECS: ClassVar[Mapping[str, PropertySpec]]
    explicit_fields: frozenset[str]

    def _validate(self) -> None:
        for name, spec in self.SPECS.items():
            spec.check(getattr(self, name))

    @classmethod
    def defaults(cls: type[_P]) -> _P:
        """The library defaults, with no field set."""
        return cls()

    def set_values(self) -> dict[str, Any]:
        """The fields set by the user, by name."""
        return {name: getattr(self, name) for name in self.explicit_fields}


def _build_specs(cls: type[_PropertiesBase], types: Mapping[str, type]) -> dict[str, PropertySpec]:
    specs = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name == "explicit_fields":
            continue
        specs[f.name] = PropertySpec(
            name=f.name,
            hystrix_name=f.metadata["hystrix"],
            kind=types[f.name],
            minimum=f.metadata["minimum"],
            maximum=f.metadata["maximum"],
            nullable=f.default is None,
        )
    return specs


def _track_explicit_fields(cls: type[_P]) -> type[_P]:
    """Wrap the dataclass ``__init__`` so the object records which fields were named."""
    generated: Callable[..., None] = cls.__init__
    defaults = {f.name: f.default for f in dataclasses.fields(cls)}  # type: ignore[arg-type]

    @functools.wraps(generated)
    def __init__(self: _P, **values: Any) -> None:
        unknown = sorted(set(values) - set(defaults))
        if unknown:
            raise ValueError(
                f"{cls.__name__} has no property {unknown[0]!r}; "
                f"known properties: {', '.join(sorted(cls.SPECS))}"
            )
        inherited = values.get("explicit_fields")
        if inherited is None:
            named = frozenset(values)
        else:
            # dataclasses.replace(): keep the old record, add what moved off its default.
            moved = {
                name
                for name, value in values.items()
                if name != "explicit_fields" and value != defaults[name]
            }
            named = frozenset(inherited) | moved
        values["explicit_fields"] = named - {"explicit_fields"}
        generated(self, **values)

    setattr(cls, "__init__", __init__)  # noqa: B010 - mypy keeps the generated signature
    return cls


@_track_explicit_fields
@dataclass(frozen=True, slots=True, kw_only=True)
class CommandProperties(_PropertiesBase):
    """A command's properties, with Hystrix's defaults.

    Set only what differs: ``CommandProperties(execution_timeout_ms=500)``.
    Invalid values raise ``ValueError`` naming the property and the value.
    """

    execution_isolation_strategy: IsolationStrategy = _prop(
        IsolationStrategy.THREAD, "execution.isolation.strategy"
    )
    execution_timeout_ms: int = _prop(
        1000, "execution.isolation.thread.timeoutInMilliseconds", minimum=1
    )
    execution_timeout_enabled: bool = _prop(True, "execution.timeout.enabled")
    # hystrixpy's own: a timeout that follows the key's successful run() latencies.
    execution_timeout_adaptive: bool = _prop(False, "execution.timeout.adaptive.enabled")
    execution_timeout_percentile: float = _prop(
        99, "execution.timeout.adaptive.percentile", minimum=0, maximum=100
    )
    execution_timeout_multiplier: float = _prop(
        1.5, "execution.timeout.adaptive.multiplier", minimum=1
    )
    execution_timeout_min_ms: int = _prop(
        10, "execution.timeout.adaptive.minInMilliseconds", minimum=1
    )
    execution_timeout_max_ms: int | None = _prop(
        None, "execution.timeout.adaptive.maxInMilliseconds", minimum=1
    )
    execution_timeout_min_samples: int = _prop(
        10, "execution.timeout.adaptive.minSamples", minimum=1
    )
    execution_isolation_semaphore_max_concurrent_requests: int = _prop(
        10, "execution.isolation.semaphore.maxConcurrentRequests", minimum=0
    )
    fallback_isolation_semaphore_max_concurrent_requests: int = _prop(
        10, "fallback.isolation.semaphore.maxConcurrentRequests", minimum=0
    )
    fallback_enabled: bool = _prop(True, "fallback.enabled")
    circuit_breaker_enabled: bool = _prop(True, "circuitBreaker.enabled")
    circuit_breaker_request_volume_threshold: int = _prop(
        20, "circuitBreaker.requestVolumeThreshold", minimum=0
    )
    circuit_breaker_sleep_window_ms: int = _prop(
        5000, "circuitBreaker.sleepWindowInMilliseconds", minimum=0
    )
    circuit_breaker_error_threshold_percentage: int = _prop(
        50, "circuitBreaker.errorThresholdPercentage", minimum=0, maximum=100
    )
    circuit_breaker_force_open: bool = _prop(False, "circuitBreaker.forceOpen")
    circuit_breaker_force_closed: bool = _prop(False, "circuitBreaker.forceClosed")
    metrics_rolling_stats_time_ms: int = _prop(
        10000, "metrics.rollingStats.timeInMilliseconds", minimum=1
    )
    metrics_rolling_stats_num_buckets: int = _prop(10, "metrics.rollingStats.numBuckets", minimum=1)
    metrics_rolling_percentile_enabled: bool = _prop(True, "metrics.rollingPercentile.enabled")
    metrics_rolling_percentile_time_ms: int = _prop(
        60000, "metrics.rollingPercentile.timeInMilliseconds", minimum=1
    )
    metrics_rolling_percentile_num_buckets: int = _prop(
        6, "metrics.rollingPercentile.numBuckets", minimum=1
    )
    metrics_rolling_percentile_bucket_size: int = _prop(
        100, "metrics.rollingPercentile.bucketSize", minimum=1
    )
    metrics_health_snapshot_interval_ms: int = _prop(
        500, "metrics.healthSnapshot.intervalInMilliseconds", minimum=1
    )
    request_cache_enabled: bool = _prop(True, "requestCache.enabled")
    request_log_enabled: bool = _prop(True, "requestLog.enabled")
    thread_pool_key_override: str | None = _prop(None, "threadPoolKeyOverride")
    # hystrixpy's own: a token bucket checked before anything else (None: no limit by key).
    rate_limit_per_second: float | None = _prop(None, "rateLimit.permitsPerSecond", minimum=0)
    rate_limit_burst: int | None = _prop(None, "rateLimit.burst", minimum=1)
    # hystrixpy's own: retries of run() inside the bulkhead and the timeout (1 attempt: none).
    retry_max_attempts: int = _prop(1, "retry.maxAttempts", minimum=1)
    retry_initial_delay_ms: float = _prop(100, "retry.initialDelayInMilliseconds", minimum=0)
    retry_backoff_multiplier: float = _prop(2.0, "retry.backoffMultiplier", minimum=1)
    retry_max_delay_ms: float = _prop(30000, "retry.maxDelayInMilliseconds", minimum=0)
    retry_jitter: bool = _prop(True, "retry.jitter")
    explicit_fields: frozenset[str] = field(default=frozenset(), repr=False, compare=False)

    SPECS: ClassVar[Mapping[str, PropertySpec]]

    def __post_init__(self) -> None:
        self._validate()
        _check_divides(self, "metrics_rolling_stats_time_ms", "metrics_rolling_stats_num_buckets")
        _check_divides(
            self,
            "metrics_rolling_percentile_time_ms",
            "metrics_rolling_percentile_num_buckets",
        )
        if self.rate_limit_per_second is not None and self.rate_limit_per_second <= 0:
            raise ValueError(
                f"rate_limit_per_second (rateLimit.permitsPerSecond) must be > 0 or None, "
                f"got {self.rate_limit_per_second!r}"
            )
        ceiling = self.adaptive_timeout_ceiling_ms
        if self.execution_timeout_adaptive and self.execution_timeout_min_ms > ceiling:
            raise ValueError(
                f"execution_timeout_min_ms={self.execution_timeout_min_ms!r} must be <= the "
                f"adaptive timeout's ceiling, execution_timeout_max_ms or else "
                f"execution_timeout_ms ({ceiling!r})"
            )

    @property
    def adaptive_timeout_ceiling_ms(self) -> int:
        """The longest an adaptive timeout may be: the max if set, else ``execution_timeout_ms``."""
        if self.execution_timeout_max_ms is None:
            return self.execution_timeout_ms
        return self.execution_timeout_max_ms


@_track_explicit_fields
@dataclass(frozen=True, slots=True, kw_only=True)
class ThreadPoolProperties(_PropertiesBase):
    """A thread pool's properties, with Hystrix's defaults.

    ``max_queue_size`` -1 or 0 means no queue: a task is rejected when every
    worker is busy. A positive ``max_queue_size`` gives a bounded queue that
    rejects once ``queue_size_rejection_threshold`` tasks wait (or it is full).
    ``maximum_size`` counts only with ``allow_maximum_size_to_diverge_from_core_size``,
    and then must be at least ``core_size`` (Hystrix would log and use ``core_size``).
    """

    core_size: int = _prop(10, "coreSize", minimum=1)
    maximum_size: int = _prop(10, "maximumSize", minimum=1)
    allow_maximum_size_to_diverge_from_core_size: bool = _prop(
        False, "allowMaximumSizeToDivergeFromCoreSize"
    )
    max_queue_size: int = _prop(-1, "maxQueueSize", minimum=-1)
    queue_size_rejection_threshold: int = _prop(5, "queueSizeRejectionThreshold", minimum=0)
    keep_alive_time_minutes: int = _prop(1, "keepAliveTimeMinutes", minimum=0)
    metrics_rolling_stats_time_ms: int = _prop(
        10000, "metrics.rollingStats.timeInMilliseconds", minimum=1
    )
    metrics_rolling_stats_num_buckets: int = _prop(10, "metrics.rollingStats.numBuckets", minimum=1)
    explicit_fields: frozenset[str] = field(default=frozenset(), repr=False, compare=False)

    SPECS: ClassVar[Mapping[str, PropertySpec]]

    def __post_init__(self) -> None:
        self._validate()
        _check_divides(self, "metrics_rolling_stats_time_ms", "metrics_rolling_stats_num_buckets")
        if self.allow_maximum_size_to_diverge_from_core_size and self.maximum_size < self.core_size:
            raise ValueError(
                f"maximum_size (maximumSize)={self.maximum_size!r} must be >= "
                f"core_size (coreSize)={self.core_size!r} when "
                "allow_maximum_size_to_diverge_from_core_size is true"
            )

    @property
    def effective_maximum_size(self) -> int:
        """How many workers the pool may run: ``maximum_size`` only when allowed to diverge."""
        if self.allow_maximum_size_to_diverge_from_core_size:
            return self.maximum_size
        return self.core_size

    @property
    def queue_capacity(self) -> int:
        """How many tasks may wait for a worker before the next is rejected."""
        if self.max_queue_size <= 0:
            return 0
        return min(self.max_queue_size, self.queue_size_rejection_threshold)


def _check_divides(props: object, time_field: str, buckets_field: str) -> None:
    window = getattr(props, time_field)
    buckets = getattr(props, buckets_field)
    if window % buckets:
        raise ValueError(f"{buckets_field}={buckets!r} must divide {time_field}={window!r} evenly")


# The command properties that take any finite number (the others of int type take whole ones).
_FLOAT_FIELDS = frozenset(
    {
        "retry_initial_delay_ms",
        "retry_backoff_multiplier",
        "retry_max_delay_ms",
        "execution_timeout_percentile",
        "execution_timeout_multiplier",
        "rate_limit_per_second",
    }
)
CommandProperties.SPECS = _build_specs(
    CommandProperties,
    {
        name: (
            IsolationStrategy
            if name == "execution_isolation_strategy"
            else str
            if name == "thread_pool_key_override"
            else float
            if name in _FLOAT_FIELDS
            else bool
            if isinstance(default, bool)
            else int
        )
        for name, default in ((f.name, f.default) for f in dataclasses.fields(CommandProperties))
    },
)
ThreadPoolProperties.SPECS = _build_specs(
    ThreadPoolProperties,
    {
        f.name: bool if isinstance(f.default, bool) else int
        for f in dataclasses.fields(ThreadPoolProperties)
    },
)
