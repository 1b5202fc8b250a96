"""Prometheus export: a collector that reads hystrixpy's metrics at scrape time.

Needs prometheus_client (``pip install 'hystrixpy[prometheus]'``)::

    from hystrixpy.contrib.prometheus import register

    register()  # then serve prometheus_client's registry as usual

Each scrape exports every command key in use or declared by a command class,
labelled ``command_key`` and ``group_key``, and every thread pool, labelled
``thread_pool_key``. Event and task counts are counters; the rest are gauges,
the rolling ones over the command's (or pool's) rolling windows. Latencies
are in seconds. The collector keeps nothing between scrapes.
"""

from __future__ import annotations

from collections.abc import Iterator

try:
    from prometheus_client.core import (
        REGISTRY,
        CollectorRegistry,
        CounterMetricFamily,
        GaugeMetricFamily,
        Metric,
    )
except ImportError as error:
    raise ImportError(
        "hystrixpy.contrib.prometheus needs prometheus_client: "
        "install it with pip install 'hystrixpy[prometheus]'"
    ) from error

from hystrixpy import breakers as _breakers
from hystrixpy import registry as _registry
from hystrixpy.breakers import Monitored
from hystrixpy.bulkhead import ThreadPoolBulkhead
from hystrixpy.circuit_breaker import CircuitState
from hystrixpy.events import EventType, IsolationStrategy

__all__ = ["HystrixCollector", "register"]

# The latency quantiles exported: the ``quantile`` label, and the percentile read from the metrics.
_QUANTILES = (("0.5", 50.0), ("0.9", 90.0), ("0.99", 99.0), ("0.995", 99.5), ("1", 100.0))
_PERCENTS = [percent for _, percent in _QUANTILES]
_COMMAND = ("command_key", "group_key")
_POOL = ("thread_pool_key",)
_EVENTS = [(event, event.name.lower()) for event in EventType]
_STATES = [(state, state.name.lower()) for state in CircuitState]


class HystrixCollector:
    """A prometheus_client collector of every command key's and thread pool's metrics.

    It holds no state: each :meth:`collect` reads hystrixpy's registry afresh,
    so it survives :func:`hystrixpy.reset` and sees keys made after it was
    registered.
    """

    def describe(self) -> list[Metric]:
        """The families :meth:`collect` yields, without samples; reads no metrics.

        prometheus_client calls this on registration (to refuse clashing names
        and to serve ``?name[]=`` filters) instead of calling :meth:`collect`.
        """
        return _Families().families

    def collect(self) -> Iterator[Metric]:
        """Every family, with samples for each command key, standalone breaker and pool, read now.

        A standalone breaker (:mod:`hystrixpy.breakers`) is exported as a command
        key named after it, in its group (``breakers`` unless it says otherwise).
        """
        families = _Families()
        for state in _registry.declared_states():
            if state.properties.execution_isolation_strategy is IsolationStrategy.THREAD:
                state.pool(state.thread_pool_key)  # so a pool shows before its first task
            families.add_command(state)
        for view in _breakers.monitored():
            families.add_command(view)
        for pool in _registry.thread_pools():
            families.add_pool(pool)
        return iter(families.families)


def register(registry: CollectorRegistry = REGISTRY) -> HystrixCollector:
    """Register a new :class:`HystrixCollector` with ``registry`` and return it.

    ``registry`` defaults to prometheus_client's global one, which its
    ``start_http_server`` and ``make_wsgi_app`` serve. Registering twice in
    the same registry raises ``ValueError`` (the names clash).
    """
    collector = HystrixCollector()
    registry.register(collector)
    return collector


def _seconds(milliseconds: int) -> float:
    return milliseconds / 1000.0


class _Families:
    """One scrape's metric families, filled in command key by command key and pool by pool."""

    def __init__(self) -> None:
        self.families: list[Metric] = []
        counter, gauge, command, pool = self._counter, self._gauge, _COMMAND, _POOL
        self.events = counter(
            "hystrix_command_events_total",
            "Events of the command key since its metrics were created, by event type.",
            (*command, "event"),
        )
        self.circuit_open = gauge(
            "hystrix_command_circuit_open",
            "1 if the circuit breaker short-circuits requests (open or half-open), else 0.",
            command,
        )
        self.circuit_state = gauge(
            "hystrix_command_circuit_state",
            "1 for the circuit breaker's state now (closed, open or half_open), 0 for the others.",
            (*command, "state"),
        )
        self.timeout = gauge(
            "hystrix_command_timeout_seconds",
            "The execution timeout in force (an adaptive timeout's current value).",
            command,
        )
        self.error_percentage = gauge(
            "hystrix_command_error_percentage",
            "Percentage of the rolling window's requests that were errors, as the breaker sees it.",
            command,
        )
        self.requests = gauge(
            "hystrix_command_requests",
            "Requests in the rolling window counted towards the breaker's health.",
            command,
        )
        self.concurrent = gauge(
            "hystrix_command_concurrent_executions",
            "run() calls of the command key executing now.",
            command,
        )
        self.rolling_max_concurrent = gauge(
            "hystrix_command_rolling_max_concurrent_executions",
            "The most run() calls of the command key executing at once in the rolling window.",
            command,
        )
        self.execution_latency = gauge(
            "hystrix_command_execution_latency_seconds",
            "Latency of run() alone at each quantile over the rolling percentile window.",
            (*command, "quantile"),
        )
        self.execution_mean = gauge(
            "hystrix_command_execution_latency_mean_seconds",
            "Mean latency of run() alone over the rolling percentile window.",
            command,
        )
        self.total_latency = gauge(
            "hystrix_command_total_latency_seconds",
            "Latency the caller saw at each quantile over the rolling percentile window.",
            (*command, "quantile"),
        )
        self.total_mean = gauge(
            "hystrix_command_total_latency_mean_seconds",
            "Mean latency the caller saw over the rolling percentile window.",
            command,
        )
        self.active_threads = gauge(
            "hystrix_thread_pool_active_threads", "Tasks running on a worker now.", pool
        )
        self.queue_size = gauge(
            "hystrix_thread_pool_queue_size", "Tasks admitted and waiting for a worker.", pool
        )
        self.size = gauge("hystrix_thread_pool_size", "Worker threads alive now.", pool)
        self.largest_size = gauge(
            "hystrix_thread_pool_largest_size", "The most worker threads alive at once.", pool
        )
        self.core_size = gauge(
            "hystrix_thread_pool_core_size", "The configured core number of workers.", pool
        )
        self.maximum_size = gauge(
            "hystrix_thread_pool_maximum_size", "The most workers the pool may run.", pool
        )
        self.completed = counter(
            "hystrix_thread_pool_completed_tasks_total",
            "Tasks finished since the pool was created.",
            pool,
        )
        self.executed = counter(
            "hystrix_thread_pool_executed_tasks_total",
            "Tasks started on a worker since the pool was created.",
            pool,
        )
        self.rejected = counter(
            "hystrix_thread_pool_rejected_tasks_total",
            "Tasks the pool refused since it was created.",
            pool,
        )
        self.rolling_max_active = gauge(
            "hystrix_thread_pool_rolling_max_active_threads",
            "The most tasks running at once in the pool's rolling window.",
            pool,
        )

    def _counter(
        self, name: str, documentation: str, labels: tuple[str, ...]
    ) -> CounterMetricFamily:
        family = CounterMetricFamily(name, documentation, labels=labels)
        self.families.append(family)
        return family

    def _gauge(self, name: str, documentation: str, labels: tuple[str, ...]) -> GaugeMetricFamily:
        family = GaugeMetricFamily(name, documentation, labels=labels)
        self.families.append(family)
        return family

    def add_command(self, state: Monitored) -> None:
        """Add the samples of one command key."""
        labels = [state.command_key, state.group_key]
        metrics = state.metrics
        for event, event_name in _EVENTS:
            self.events.add_metric([*labels, event_name], metrics.cumulative_count(event))
        current = state.circuit_breaker.state
        self.circuit_open.add_metric(labels, 0 if current is CircuitState.CLOSED else 1)
        for circuit_state, state_name in _STATES:
            self.circuit_state.add_metric(
                [*labels, state_name], 1 if circuit_state is current else 0
            )
        self.timeout.add_metric(labels, _seconds(state.timeout_ms))
        snapshot = metrics.snapshot(_PERCENTS)
        self.error_percentage.add_metric(labels, snapshot.health.error_percentage)
        self.requests.add_metric(labels, snapshot.health.total_requests)
        self.concurrent.add_metric(labels, snapshot.concurrent_executions)
        self.rolling_max_concurrent.add_metric(labels, snapshot.rolling_max_concurrent_executions)
        for (quantile, _), execution_ms, total_ms in zip(
            _QUANTILES, snapshot.execution_percentiles, snapshot.total_percentiles, strict=True
        ):
            self.execution_latency.add_metric([*labels, quantile], _seconds(execution_ms))
            self.total_latency.add_metric([*labels, quantile], _seconds(total_ms))
        self.execution_mean.add_metric(labels, _seconds(snapshot.execution_mean))
        self.total_mean.add_metric(labels, _seconds(snapshot.total_mean))

    def add_pool(self, pool: ThreadPoolBulkhead) -> None:
        """Add the samples of one thread pool."""
        labels = [pool.pool_key]
        metrics = pool.metrics
        self.active_threads.add_metric(labels, metrics.current_active_count)
        self.queue_size.add_metric(labels, metrics.current_queue_size)
        self.size.add_metric(labels, metrics.current_pool_size)
        self.largest_size.add_metric(labels, metrics.current_largest_pool_size)
        self.core_size.add_metric(labels, metrics.current_core_pool_size)
        self.maximum_size.add_metric(labels, metrics.current_maximum_pool_size)
        self.completed.add_metric(labels, metrics.current_completed_task_count)
        self.executed.add_metric(labels, metrics.cumulative_count_threads_executed)
        self.rejected.add_metric(labels, metrics.cumulative_count_threads_rejected)
        self.rolling_max_active.add_metric(labels, metrics.rolling_max_active_threads)
