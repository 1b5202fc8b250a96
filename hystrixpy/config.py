"""Dynamic configuration: overrides by Hystrix's names or by snake_case names.

Precedence, highest first (as in Hystrix):

1. an override for the command (or pool) key,
2. a field the command class set in its ``properties``,
3. a global default override (``...default...``),
4. the library default.

Names accepted by :func:`configure`::

    hystrix.command.default.execution.isolation.thread.timeoutInMilliseconds
    hystrix.command.<CommandKey>.circuitBreaker.errorThresholdPercentage
    hystrix.threadpool.<PoolKey>.coreSize
    command.default.execution_timeout_ms
    command.<CommandKey>.circuit_breaker_error_threshold_percentage
    threadpool.<PoolKey>.core_size

Values may be strings as in a ``.properties`` file (``"true"``, ``"500"``).
A value of ``None`` removes the override. Hystrix names with no meaning in
Python (``interruptOnTimeout``, ``hystrix.collapser.*``, and global names such
as ``hystrix.plugin.<Plugin>.implementation``, ``hystrix.stream.*`` and
``hystrix.timer.threadpool.default.coreSize``) are accepted, logged once and
ignored; names Hystrix never had raise ``ValueError``, and so does a value out
of range, before anything changes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, cast

from hystrixpy import _log
from hystrixpy.events import IsolationStrategy
from hystrixpy.properties import CommandProperties, PropertySpec, ThreadPoolProperties

__all__ = ["Configuration"]

# Hystrix names that mean nothing here: accepted and ignored.
_IGNORED_COMMAND_NAMES = frozenset(
    {
        "execution.isolation.thread.interruptOnTimeout",
        "execution.isolation.thread.interruptOnFutureCancel",
        "execution.isolation.thread.interruptOnCancel",
    }
)
_COLLAPSER_NAMES = frozenset(
    {
        "maxRequestsInBatch",
        "timerDelayInMilliseconds",
        "requestCache.enabled",
        "metrics.rollingStats.timeInMilliseconds",
        "metrics.rollingStats.numBuckets",
        "metrics.rollingPercentile.enabled",
        "metrics.rollingPercentile.timeInMilliseconds",
        "metrics.rollingPercentile.numBuckets",
        "metrics.rollingPercentile.bucketSize",
    }
)

# Global Hystrix names (outside command/threadpool/collapser) that mean nothing here, with why.
_PLUGIN_REASON = "hystrixpy has no plugins; register execution hooks with hystrixpy.register_hook()"
_STREAM_REASON = (
    "set the stream's limits with hystrixpy.stream's own parameters (max_connections, delay_ms)"
)
_IGNORED_GLOBAL_NAMES = {
    **{
        f"hystrix.plugin.{plugin}.implementation": _PLUGIN_REASON
        for plugin in (
            "HystrixCommandExecutionHook",
            "HystrixConcurrencyStrategy",
            "HystrixDynamicProperties",
            "HystrixEventNotifier",
            "HystrixMetricsPublisher",
            "HystrixPropertiesStrategy",
        )
    },
    **{
        name: _STREAM_REASON
        for name in (
            "hystrix.stream.maxConcurrentConnections",
            "hystrix.stream.defaultMetricListenerQueueSize",
            "hystrix.stream.dashboard.intervalInMilliseconds",
            "hystrix.stream.utilization.intervalInMilliseconds",
            "hystrix.stream.config.intervalInMilliseconds",
            "hystrix.config.stream.maxConcurrentConnections",
            "hystrix.requests.stream.maxConcurrentConnections",
        )
    },
    "hystrix.timer.threadpool.default.coreSize": "hystrixpy's deadline timer is a single thread",
}

_COMMAND = "command"
_POOL = "threadpool"
_DEFAULT = "default"


@dataclass(frozen=True, slots=True)
class _Ignored:
    """A Hystrix name with no meaning here, and why."""

    name: str
    reason: str


@dataclass(frozen=True, slots=True)
class _Entry:
    """One parsed configuration line: where it applies, which field, what value."""

    scope: str
    key: str
    spec: PropertySpec
    value: Any


def _specs_by_hystrix_name(specs: Mapping[str, PropertySpec]) -> dict[str, PropertySpec]:
    return {spec.hystrix_name: spec for spec in specs.values()}


_HYSTRIX_NAMES = {
    _COMMAND: _specs_by_hystrix_name(CommandProperties.SPECS),
    _POOL: _specs_by_hystrix_name(ThreadPoolProperties.SPECS),
}
_SNAKE_NAMES = {_COMMAND: CommandProperties.SPECS, _POOL: ThreadPoolProperties.SPECS}


def _coerce(spec: PropertySpec, name: str, raw: object) -> object:
    """Turn a configured value (possibly a string) into the property's type, and check it."""
    value = raw
    if isinstance(raw, str):
        text = raw.strip()
        if spec.kind is bool:
            lowered = text.lower()
            if lowered not in ("true", "false"):
                raise ValueError(f"{name} must be true or false, got {raw!r}")
            value = lowered == "true"
        elif spec.kind is int:
            try:
                value = int(text)
            except ValueError:
                raise ValueError(f"{name} must be an integer, got {raw!r}") from None
        elif spec.kind is float:
            try:
                value = float(text)
            except ValueError:
                raise ValueError(f"{name} must be a number, got {raw!r}") from None
        elif spec.kind is IsolationStrategy:
            try:
                value = IsolationStrategy[text.upper()]
            except KeyError:
                raise ValueError(f"{name} must be THREAD or SEMAPHORE, got {raw!r}") from None
    try:
        spec.check(value)
    except ValueError as error:
        raise ValueError(f"{name}: {error}") from None
    return value


class Configuration:
    """The process's configuration overrides; one instance lives in the registry."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._overrides: dict[tuple[str, str], dict[str, Any]] = {}
        self._ignored_logged: set[str] = set()
        #: Bumped by every change, so cached resolutions know to refresh.
        self.version = 0

    # -- parsing -------------------------------------------------------------

    def _parse(self, name: str, raw: object) -> _Entry | _Ignored:
        if name.startswith("hystrix."):
            return self._parse_hystrix(name, raw)
        scope, _, rest = name.partition(".")
        key, _, field_name = rest.rpartition(".")
        if scope not in _SNAKE_NAMES or not key:
            raise ValueError(
                f"unknown configuration name {name!r}: expected 'command.<key>.<property>', "
                "'threadpool.<key>.<property>' or a Hystrix name 'hystrix.command.<key>.<name>'"
            )
        spec = _SNAKE_NAMES[scope].get(field_name)
        if spec is None:
            raise ValueError(
                f"unknown property {field_name!r} in {name!r}; "
                f"known: {', '.join(sorted(_SNAKE_NAMES[scope]))}"
            )
        return _Entry(scope, key, spec, None if raw is None else _coerce(spec, name, raw))

    def _parse_hystrix(self, name: str, raw: object) -> _Entry | _Ignored:
        reason = _IGNORED_GLOBAL_NAMES.get(name)
        if reason is not None:
            return _Ignored(name, reason)
        parts = name.split(".")
        scope = parts[1] if len(parts) > 2 else ""
        if scope == "collapser":
            if any(".".join(parts[split:]) in _COLLAPSER_NAMES for split in range(3, len(parts))):
                return _Ignored(name, "collapsers are not supported")
            raise ValueError(f"unknown Hystrix collapser property in {name!r}")
        if scope not in _HYSTRIX_NAMES:
            raise ValueError(f"unknown Hystrix configuration name {name!r}")
        known = _HYSTRIX_NAMES[scope]
        for split in range(3, len(parts)):
            key, hystrix_name = ".".join(parts[2:split]), ".".join(parts[split:])
            spec = known.get(hystrix_name)
            if spec is not None:
                return _Entry(scope, key, spec, None if raw is None else _coerce(spec, name, raw))
            if scope == _COMMAND and hystrix_name in _IGNORED_COMMAND_NAMES:
                return _Ignored(name, "Python threads cannot be interrupted")
        raise ValueError(f"unknown Hystrix property in {name!r}")

    def _log_ignored_once(self, ignored: list[_Ignored]) -> None:
        for item in ignored:
            if item.name not in self._ignored_logged:
                self._ignored_logged.add(item.name)
                _log.info("config_name_ignored", name=item.name, reason=item.reason)

    # -- changing ------------------------------------------------------------

    def configure(
        self,
        settings: Mapping[str, object],
        validate: Callable[[Configuration], None] | None = None,
    ) -> None:
        """Apply ``settings`` all at once, or none of them if any is invalid."""
        parsed = [self._parse(name, raw) for name, raw in settings.items()]
        entries = [entry for entry in parsed if isinstance(entry, _Entry)]
        with self._lock:
            saved = {scope: dict(values) for scope, values in self._overrides.items()}
            for entry in entries:
                values = self._overrides.setdefault((entry.scope, entry.key), {})
                if entry.value is None:
                    values.pop(entry.spec.name, None)
                else:
                    values[entry.spec.name] = entry.value
            try:
                self._check_combinations()
                if validate is not None:
                    validate(self)
            except ValueError:
                self._overrides = saved
                raise
            self.version += 1
        self._log_ignored_once([entry for entry in parsed if isinstance(entry, _Ignored)])

    def _check_combinations(self) -> None:
        for scope, key in self._overrides:
            if scope == _COMMAND:
                self.command_properties(key, CommandProperties())
            else:
                self.pool_properties(key, ThreadPoolProperties())

    def after_fork(self) -> None:
        """Replace the lock (a parent's thread may have held it) and refresh every resolution."""
        self._lock = threading.Lock()
        self.version += 1

    def clear(self) -> None:
        """Forget every override."""
        with self._lock:
            self._overrides.clear()
            self._ignored_logged.clear()
            self.version += 1

    # -- resolving -----------------------------------------------------------

    def command_properties(
        self, command_key: str, declared: CommandProperties
    ) -> CommandProperties:
        """The effective properties of ``command_key`` whose class declared ``declared``."""
        return cast(CommandProperties, self._resolve(_COMMAND, command_key, declared))

    def pool_properties(
        self, pool_key: str, declared: ThreadPoolProperties
    ) -> ThreadPoolProperties:
        """The effective properties of ``pool_key`` whose first command declared ``declared``."""
        return cast(ThreadPoolProperties, self._resolve(_POOL, pool_key, declared))

    def _resolve(self, scope: str, key: str, declared: Any) -> Any:
        values: dict[str, Any] = dict(self._overrides.get((scope, _DEFAULT), {}))
        if key != _DEFAULT:
            values.update(declared.set_values())
            values.update(self._overrides.get((scope, key), {}))
        try:
            return type(declared)(**values)
        except ValueError as error:
            kind = "command" if scope == _COMMAND else "thread pool"
            raise ValueError(f"{kind} {key!r}: {error}") from None

    def overrides(self) -> Iterable[tuple[str, str, dict[str, Any]]]:
        """Every override, as (scope, key, values)."""
        return [(scope, key, dict(values)) for (scope, key), values in self._overrides.items()]
