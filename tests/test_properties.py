"""Tests for hystrixpy.properties: frozen, validated command and thread-pool properties."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from hystrixpy import CommandProperties, IsolationStrategy, ThreadPoolProperties

# Hystrix's documented defaults, by Hystrix name, with the field each one maps to.
COMMAND_DEFAULTS: dict[str, tuple[str, object]] = {
    "execution.isolation.strategy": ("execution_isolation_strategy", IsolationStrategy.THREAD),
    "execution.isolation.thread.timeoutInMilliseconds": ("execution_timeout_ms", 1000),
    "execution.timeout.enabled": ("execution_timeout_enabled", True),
    "execution.isolation.semaphore.maxConcurrentRequests": (
        "execution_isolation_semaphore_max_concurrent_requests",
        10,
    ),
    "fallback.isolation.semaphore.maxConcurrentRequests": (
        "fallback_isolation_semaphore_max_concurrent_requests",
        10,
    ),
    "fallback.enabled": ("fallback_enabled", True),
    "circuitBreaker.enabled": ("circuit_breaker_enabled", True),
    "circuitBreaker.requestVolumeThreshold": ("circuit_breaker_request_volume_threshold", 20),
    "circuitBreaker.sleepWindowInMilliseconds": ("circuit_breaker_sleep_window_ms", 5000),
    "circuitBreaker.errorThresholdPercentage": ("circuit_breaker_error_threshold_percentage", 50),
    "circuitBreaker.forceOpen": ("circuit_breaker_force_open", False),
    "circuitBreaker.forceClosed": ("circuit_breaker_force_closed", False),
    "metrics.rollingStats.timeInMilliseconds": ("metrics_rolling_stats_time_ms", 10000),
    "metrics.rollingStats.numBuckets": ("metrics_rolling_stats_num_buckets", 10),
    "metrics.rollingPercentile.enabled": ("metrics_rolling_percentile_enabled", True),
    "metrics.rollingPercentile.timeInMilliseconds": ("metrics_rolling_percentile_time_ms", 60000),
    "metrics.rollingPercentile.numBuckets": ("metrics_rolling_percentile_num_buckets", 6),
    "metrics.rollingPercentile.bucketSize": ("metrics_rolling_percentile_bucket_size", 100),
    "metrics.healthSnapshot.intervalInMilliseconds": ("metrics_health_snapshot_interval_ms", 500),
    "requestCache.enabled": ("request_cache_enabled", True),
    "requestLog.enabled": ("request_log_enabled", True),
    "threadPoolKeyOverride": ("thread_pool_key_override", None),
    # hystrixpy's own, named in Hystrix's style.
    "execution.timeout.adaptive.enabled": ("execution_timeout_adaptive", False),
    "execution.timeout.adaptive.percentile": ("execution_timeout_percentile", 99),
    "execution.timeout.adaptive.multiplier": ("execution_timeout_multiplier", 1.5),
    "execution.timeout.adaptive.minInMilliseconds": ("execution_timeout_min_ms", 10),
    "execution.timeout.adaptive.maxInMilliseconds": ("execution_timeout_max_ms", None),
    "execution.timeout.adaptive.minSamples": ("execution_timeout_min_samples", 10),
    "rateLimit.permitsPerSecond": ("rate_limit_per_second", None),
    "rateLimit.burst": ("rate_limit_burst", None),
    "retry.maxAttempts": ("retry_max_attempts", 1),
    "retry.initialDelayInMilliseconds": ("retry_initial_delay_ms", 100),
    "retry.backoffMultiplier": ("retry_backoff_multiplier", 2.0),
    "retry.maxDelayInMilliseconds": ("retry_max_delay_ms", 30000),
    "retry.jitter": ("retry_jitter", True),
}

POOL_DEFAULTS: dict[str, tuple[str, object]] = {
    "coreSize": ("core_size", 10),
    "maximumSize": ("maximum_size", 10),
    "allowMaximumSizeToDivergeFromCoreSize": (
        "allow_maximum_size_to_diverge_from_core_size",
        False,
    ),
    "maxQueueSize": ("max_queue_size", -1),
    "queueSizeRejectionThreshold": ("queue_size_rejection_threshold", 5),
    "keepAliveTimeMinutes": ("keep_alive_time_minutes", 1),
    "metrics.rollingStats.timeInMilliseconds": ("metrics_rolling_stats_time_ms", 10000),
    "metrics.rollingStats.numBuckets": ("metrics_rolling_stats_num_buckets", 10),
}


class TestCommandProperties:
    @pytest.mark.parametrize(
        ("hystrix_name", "field_name", "default"),
        [(name, field_name, default) for name, (field_name, default) in COMMAND_DEFAULTS.items()],
    )
    def test_default_matches_hystrix(
        self, hystrix_name: str, field_name: str, default: object
    ) -> None:
        """Each property defaults to Hystrix's value and carries Hystrix's name."""
        props = CommandProperties()

        assert getattr(props, field_name) == default
        assert CommandProperties.SPECS[field_name].hystrix_name == hystrix_name

    def test_every_field_is_a_known_hystrix_property(self) -> None:
        """The properties are Hystrix's command properties and the retry ones, no more or fewer."""
        assert {spec.hystrix_name for spec in CommandProperties.SPECS.values()} == set(
            COMMAND_DEFAULTS
        )

    def test_defaults_sets_no_field(self) -> None:
        """defaults() gives the library defaults with nothing marked as set."""
        props = CommandProperties.defaults()

        assert props == CommandProperties()
        assert props.explicit_fields == frozenset()
        assert props.set_values() == {}

    def test_explicit_fields_records_the_fields_named(self) -> None:
        """Only the fields passed by name count as set, whatever their values."""
        props = CommandProperties(execution_timeout_ms=500, fallback_enabled=True)

        assert props.explicit_fields == frozenset({"execution_timeout_ms", "fallback_enabled"})
        assert props.set_values() == {"execution_timeout_ms": 500, "fallback_enabled": True}

    def test_naming_a_field_with_its_default_value_still_marks_it_set(self) -> None:
        """Passing the default value by name is a choice that is remembered."""
        props = CommandProperties(execution_timeout_ms=1000)

        assert props.explicit_fields == frozenset({"execution_timeout_ms"})

    def test_explicit_fields_do_not_affect_equality(self) -> None:
        """Two objects with the same values are equal however their fields were set."""
        assert CommandProperties(execution_timeout_ms=1000) == CommandProperties()
        assert hash(CommandProperties(execution_timeout_ms=1000)) == hash(CommandProperties())

    def test_replace_keeps_the_old_record_and_adds_changed_fields(self) -> None:
        """dataclasses.replace keeps earlier set fields and adds those moved off their default."""
        props = CommandProperties(execution_timeout_ms=500)

        changed = dataclasses.replace(props, circuit_breaker_force_open=True)

        assert changed.execution_timeout_ms == 500
        assert changed.circuit_breaker_force_open is True
        assert changed.explicit_fields == frozenset(
            {"execution_timeout_ms", "circuit_breaker_force_open"}
        )

    def test_replace_with_a_default_value_does_not_mark_the_field(self) -> None:
        """dataclasses.replace to a field's default value does not count that field as set."""
        props = CommandProperties(fallback_enabled=False)

        changed = dataclasses.replace(props, execution_timeout_ms=1000)

        assert changed.explicit_fields == frozenset({"fallback_enabled"})

    def test_replace_back_to_the_default_keeps_a_field_that_was_set(self) -> None:
        """A field set before stays set after dataclasses.replace returns it to its default."""
        props = CommandProperties(execution_timeout_ms=500)

        changed = dataclasses.replace(props, execution_timeout_ms=1000)

        assert changed.execution_timeout_ms == 1000
        assert changed.explicit_fields == frozenset({"execution_timeout_ms"})

    def test_replace_validates_the_new_values(self) -> None:
        """dataclasses.replace with a bad value fails like the constructor does."""
        with pytest.raises(ValueError, match=r"execution_timeout_ms.*-5"):
            dataclasses.replace(CommandProperties(), execution_timeout_ms=-5)

    def test_is_frozen(self) -> None:
        """Properties cannot be changed in place; dataclasses.replace makes a new object."""
        props = CommandProperties()

        with pytest.raises(dataclasses.FrozenInstanceError):
            props.execution_timeout_ms = 5  # type: ignore[misc]
        with pytest.raises(dataclasses.FrozenInstanceError):
            props.explicit_fields = frozenset()  # type: ignore[misc]
        assert props.execution_timeout_ms == 1000

    def test_cannot_gain_new_attributes(self) -> None:
        """Misspelt attributes cannot be attached to a properties object."""
        props = CommandProperties()

        with pytest.raises((AttributeError, TypeError)):
            props.execution_timeout = 5  # type: ignore[attr-defined]

    def test_positional_arguments_are_refused(self) -> None:
        """Properties are given by name only."""
        with pytest.raises(TypeError):
            CommandProperties(IsolationStrategy.SEMAPHORE)  # type: ignore[misc]

    @pytest.mark.parametrize(
        ("field_name", "value", "hystrix_name"),
        [
            ("execution_timeout_ms", -1, "execution.isolation.thread.timeoutInMilliseconds"),
            ("execution_timeout_ms", 0, "execution.isolation.thread.timeoutInMilliseconds"),
            (
                "execution_isolation_semaphore_max_concurrent_requests",
                -3,
                "execution.isolation.semaphore.maxConcurrentRequests",
            ),
            (
                "fallback_isolation_semaphore_max_concurrent_requests",
                -1,
                "fallback.isolation.semaphore.maxConcurrentRequests",
            ),
            (
                "circuit_breaker_request_volume_threshold",
                -1,
                "circuitBreaker.requestVolumeThreshold",
            ),
            ("circuit_breaker_sleep_window_ms", -10, "circuitBreaker.sleepWindowInMilliseconds"),
            (
                "circuit_breaker_error_threshold_percentage",
                -1,
                "circuitBreaker.errorThresholdPercentage",
            ),
            ("metrics_rolling_stats_time_ms", 0, "metrics.rollingStats.timeInMilliseconds"),
            ("metrics_rolling_stats_num_buckets", 0, "metrics.rollingStats.numBuckets"),
            ("metrics_rolling_percentile_bucket_size", 0, "metrics.rollingPercentile.bucketSize"),
            (
                "metrics_health_snapshot_interval_ms",
                -500,
                "metrics.healthSnapshot.intervalInMilliseconds",
            ),
        ],
    )
    def test_rejects_values_below_the_minimum(
        self, field_name: str, value: int, hystrix_name: str
    ) -> None:
        """A value below a property's minimum raises ValueError naming the property and value."""
        with pytest.raises(ValueError, match=r">=") as raised:
            CommandProperties(**{field_name: value})

        message = str(raised.value)
        assert field_name in message
        assert hystrix_name in message
        assert f"got {value}" in message

    @pytest.mark.parametrize("value", [-1, 101, 1000])
    def test_rejects_a_percentage_outside_0_to_100(self, value: int) -> None:
        """The error threshold must be a percentage; the error names the property and value."""
        with pytest.raises(ValueError) as raised:
            CommandProperties(circuit_breaker_error_threshold_percentage=value)

        message = str(raised.value)
        assert "circuit_breaker_error_threshold_percentage" in message
        assert f"got {value}" in message

    @pytest.mark.parametrize("value", [0, 100])
    def test_accepts_percentages_at_the_bounds(self, value: int) -> None:
        """0 and 100 are valid error thresholds."""
        props = CommandProperties(circuit_breaker_error_threshold_percentage=value)

        assert props.circuit_breaker_error_threshold_percentage == value

    def test_accepts_zero_where_zero_is_meaningful(self) -> None:
        """Zero permits, zero volume threshold and a zero sleep window are allowed."""
        props = CommandProperties(
            execution_isolation_semaphore_max_concurrent_requests=0,
            fallback_isolation_semaphore_max_concurrent_requests=0,
            circuit_breaker_request_volume_threshold=0,
            circuit_breaker_sleep_window_ms=0,
        )

        assert props.execution_isolation_semaphore_max_concurrent_requests == 0
        assert props.circuit_breaker_sleep_window_ms == 0

    @pytest.mark.parametrize(
        ("field_name", "value", "expected_kind"),
        [
            ("fallback_enabled", 1, "a bool"),
            ("circuit_breaker_force_open", "true", "a bool"),
            ("execution_timeout_ms", True, "an int"),
            ("execution_timeout_ms", 500.0, "an int"),
            ("execution_timeout_ms", "500", "an int"),
            ("metrics_rolling_stats_num_buckets", False, "an int"),
            ("execution_isolation_strategy", "SEMAPHORE", "an IsolationStrategy"),
            ("thread_pool_key_override", 5, "a str"),
            ("execution_timeout_ms", None, "an int"),
            ("retry_backoff_multiplier", True, "a finite number"),
            ("retry_backoff_multiplier", "2", "a finite number"),
            ("retry_backoff_multiplier", float("inf"), "a finite number"),
        ],
    )
    def test_rejects_values_of_the_wrong_type(
        self, field_name: str, value: object, expected_kind: str
    ) -> None:
        """A wrong type (even 1 for a bool, True for an int) is refused, naming field and value."""
        with pytest.raises(ValueError) as raised:
            CommandProperties(**{field_name: value})

        message = str(raised.value)
        assert field_name in message
        assert f"must be {expected_kind}" in message
        assert repr(value) in message

    def test_thread_pool_key_override_accepts_a_string_or_none(self) -> None:
        """The pool key override is a string, and None means no override."""
        assert CommandProperties(thread_pool_key_override="Other").thread_pool_key_override == (
            "Other"
        )
        assert CommandProperties(thread_pool_key_override=None).thread_pool_key_override is None

    def test_rejects_an_unknown_property_name(self) -> None:
        """A misspelt property name raises ValueError naming it and listing the known ones."""
        with pytest.raises(ValueError) as raised:
            CommandProperties(execution_timeout=500)  # type: ignore[call-arg]

        message = str(raised.value)
        assert "'execution_timeout'" in message
        assert "execution_timeout_ms" in message

    def test_unknown_names_are_reported_in_sorted_order(self) -> None:
        """With several unknown names, the error names the first in alphabetical order."""
        with pytest.raises(ValueError, match="'alpha'"):
            CommandProperties(zulu=1, alpha=2)  # type: ignore[call-arg]

    @pytest.mark.parametrize(
        ("time_field", "time_ms", "buckets_field", "buckets"),
        [
            ("metrics_rolling_stats_time_ms", 10000, "metrics_rolling_stats_num_buckets", 3),
            ("metrics_rolling_stats_time_ms", 5, "metrics_rolling_stats_num_buckets", 10),
            (
                "metrics_rolling_percentile_time_ms",
                60000,
                "metrics_rolling_percentile_num_buckets",
                7,
            ),
        ],
    )
    def test_rejects_buckets_that_do_not_divide_the_window(
        self, time_field: str, time_ms: int, buckets_field: str, buckets: int
    ) -> None:
        """A bucket count that does not divide its window is refused, naming both values."""
        with pytest.raises(ValueError) as raised:
            CommandProperties(**{time_field: time_ms, buckets_field: buckets})

        message = str(raised.value)
        assert f"{buckets_field}={buckets}" in message
        assert f"{time_field}={time_ms}" in message

    def test_changing_only_the_bucket_count_is_checked_against_the_default_window(self) -> None:
        """A bucket count alone must divide the default window."""
        with pytest.raises(ValueError, match=r"metrics_rolling_stats_num_buckets=3"):
            CommandProperties(metrics_rolling_stats_num_buckets=3)
        assert CommandProperties(
            metrics_rolling_stats_num_buckets=20
        ).metrics_rolling_stats_time_ms == (10000)

    def test_accepts_a_window_split_into_dividing_buckets(self) -> None:
        """Windows whose bucket count divides them evenly are accepted."""
        props = CommandProperties(
            metrics_rolling_stats_time_ms=2000,
            metrics_rolling_stats_num_buckets=4,
            metrics_rolling_percentile_time_ms=30000,
            metrics_rolling_percentile_num_buckets=3,
        )

        assert props.metrics_rolling_stats_time_ms == 2000
        assert props.metrics_rolling_percentile_num_buckets == 3


class TestThreadPoolProperties:
    @pytest.mark.parametrize(
        ("hystrix_name", "field_name", "default"),
        [(name, field_name, default) for name, (field_name, default) in POOL_DEFAULTS.items()],
    )
    def test_default_matches_hystrix(
        self, hystrix_name: str, field_name: str, default: object
    ) -> None:
        """Each pool property defaults to Hystrix's value and carries Hystrix's name."""
        props = ThreadPoolProperties()

        assert getattr(props, field_name) == default
        assert ThreadPoolProperties.SPECS[field_name].hystrix_name == hystrix_name

    def test_every_field_is_a_known_hystrix_property(self) -> None:
        """The pool properties are exactly Hystrix's thread-pool properties."""
        assert {spec.hystrix_name for spec in ThreadPoolProperties.SPECS.values()} == set(
            POOL_DEFAULTS
        )

    def test_explicit_fields_records_the_fields_named(self) -> None:
        """Only the pool fields passed by name count as set."""
        props = ThreadPoolProperties(core_size=4)

        assert props.explicit_fields == frozenset({"core_size"})
        assert props.set_values() == {"core_size": 4}
        assert ThreadPoolProperties.defaults().explicit_fields == frozenset()

    def test_replace_keeps_and_extends_the_record(self) -> None:
        """dataclasses.replace keeps set pool fields and adds those moved off their default."""
        props = ThreadPoolProperties(core_size=4)

        changed = dataclasses.replace(props, max_queue_size=20, keep_alive_time_minutes=1)

        assert changed.explicit_fields == frozenset({"core_size", "max_queue_size"})

    @pytest.mark.parametrize(
        ("field_name", "value"),
        [
            ("core_size", 0),
            ("core_size", -4),
            ("maximum_size", 0),
            ("max_queue_size", -2),
            ("queue_size_rejection_threshold", -1),
            ("keep_alive_time_minutes", -1),
            ("metrics_rolling_stats_time_ms", 0),
            ("metrics_rolling_stats_num_buckets", 0),
        ],
    )
    def test_rejects_values_below_the_minimum(self, field_name: str, value: int) -> None:
        """A pool size below 1 (or another value below its minimum) names property and value."""
        with pytest.raises(ValueError) as raised:
            ThreadPoolProperties(**{field_name: value})

        message = str(raised.value)
        assert field_name in message
        assert f"got {value}" in message

    @pytest.mark.parametrize(
        ("field_name", "value", "expected_kind"),
        [
            ("allow_maximum_size_to_diverge_from_core_size", 1, "a bool"),
            ("core_size", True, "an int"),
            ("max_queue_size", "10", "an int"),
        ],
    )
    def test_rejects_values_of_the_wrong_type(
        self, field_name: str, value: Any, expected_kind: str
    ) -> None:
        """A pool value of the wrong type raises ValueError naming the property and the value."""
        with pytest.raises(ValueError) as raised:
            ThreadPoolProperties(**{field_name: value})

        message = str(raised.value)
        assert field_name in message
        assert f"must be {expected_kind}" in message
        assert repr(value) in message

    def test_rejects_an_unknown_property_name(self) -> None:
        """A misspelt pool property raises ValueError naming it."""
        with pytest.raises(ValueError, match="'coresize'"):
            ThreadPoolProperties(coresize=3)  # type: ignore[call-arg]

    def test_rejects_buckets_that_do_not_divide_the_window(self) -> None:
        """A pool's bucket count must divide its rolling window."""
        with pytest.raises(ValueError) as raised:
            ThreadPoolProperties(
                metrics_rolling_stats_time_ms=1000, metrics_rolling_stats_num_buckets=3
            )

        message = str(raised.value)
        assert "metrics_rolling_stats_num_buckets=3" in message
        assert "metrics_rolling_stats_time_ms=1000" in message

    def test_is_frozen(self) -> None:
        """Pool properties cannot be changed in place."""
        props = ThreadPoolProperties()

        with pytest.raises(dataclasses.FrozenInstanceError):
            props.core_size = 2  # type: ignore[misc]
        assert props.core_size == 10

    def test_maximum_size_is_ignored_unless_allowed_to_diverge(self) -> None:
        """Without allow_maximum_size_to_diverge_from_core_size, the pool runs core_size workers."""
        props = ThreadPoolProperties(core_size=3, maximum_size=8)

        assert props.effective_maximum_size == 3

    def test_maximum_size_applies_when_allowed_to_diverge(self) -> None:
        """When allowed to diverge, the pool may grow to maximum_size workers."""
        props = ThreadPoolProperties(
            core_size=3, maximum_size=8, allow_maximum_size_to_diverge_from_core_size=True
        )

        assert props.effective_maximum_size == 8

    def test_maximum_size_below_core_size_is_refused_when_allowed_to_diverge(self) -> None:
        """Asking to grow to a maximum_size below core_size is a ValueError naming both values."""
        with pytest.raises(ValueError) as raised:
            ThreadPoolProperties(
                core_size=10, maximum_size=5, allow_maximum_size_to_diverge_from_core_size=True
            )

        message = str(raised.value)
        assert "maximum_size (maximumSize)=5" in message
        assert "core_size (coreSize)=10" in message
        assert "allow_maximum_size_to_diverge_from_core_size" in message

    def test_divergence_flag_with_the_default_maximum_below_core_size_is_refused(self) -> None:
        """Turning divergence on without raising maximum_size past core_size is caught too."""
        with pytest.raises(ValueError, match=r"maximum_size \(maximumSize\)=10"):
            ThreadPoolProperties(core_size=20, allow_maximum_size_to_diverge_from_core_size=True)

    @pytest.mark.parametrize(("core", "maximum", "allow"), [(6, 2, False), (6, 6, True)])
    def test_maximum_size_not_below_core_size_or_unused_is_accepted(
        self, core: int, maximum: int, allow: bool
    ) -> None:
        """maximum_size equal to core_size, or below it but unused, is fine."""
        props = ThreadPoolProperties(
            core_size=core,
            maximum_size=maximum,
            allow_maximum_size_to_diverge_from_core_size=allow,
        )

        assert props.effective_maximum_size == 6

    def test_replace_into_maximum_below_core_size_is_refused(self) -> None:
        """dataclasses.replace() is checked like the constructor."""
        props = ThreadPoolProperties(
            core_size=2, maximum_size=4, allow_maximum_size_to_diverge_from_core_size=True
        )

        with pytest.raises(ValueError, match="maximum_size"):
            dataclasses.replace(props, core_size=5)

    @pytest.mark.parametrize("max_queue_size", [-1, 0])
    def test_no_queue_when_max_queue_size_is_not_positive(self, max_queue_size: int) -> None:
        """max_queue_size -1 or 0 means no task may wait, whatever the rejection threshold."""
        props = ThreadPoolProperties(
            max_queue_size=max_queue_size, queue_size_rejection_threshold=50
        )

        assert props.queue_capacity == 0

    @pytest.mark.parametrize(
        ("max_queue_size", "threshold", "capacity"),
        [(100, 5, 5), (3, 5, 3), (10, 10, 10), (10, 0, 0)],
    )
    def test_queue_capacity_is_the_smaller_of_size_and_threshold(
        self, max_queue_size: int, threshold: int, capacity: int
    ) -> None:
        """With a queue, tasks may wait up to the smaller of threshold and queue size."""
        props = ThreadPoolProperties(
            max_queue_size=max_queue_size, queue_size_rejection_threshold=threshold
        )

        assert props.queue_capacity == capacity
