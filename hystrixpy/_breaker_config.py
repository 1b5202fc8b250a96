"""The options of a standalone circuit breaker (:mod:`hystrixpy.breakers`), validated and frozen.

:class:`BreakerConfig` holds them; :class:`BreakerOptions` types them as the
keyword arguments of :func:`hystrixpy.breakers.get_or_create` and
:func:`~hystrixpy.breakers.protect`. A config also knows the
:class:`~hystrixpy.properties.CommandProperties` that describe its breaker to
the shared machinery (metrics windows, sleep window) and to monitoring.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypedDict

from hystrixpy.circuit_breaker import CircuitState
from hystrixpy.events import IsolationStrategy
from hystrixpy.properties import CommandProperties, ThreadPoolProperties

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["BreakerConfig", "BreakerOptions"]

#: Exception types, as ``exclude`` and ``include`` take them: one type or several.
ExceptionTypes = type[BaseException] | Iterable[type[BaseException]]
StateChangeListener = Callable[[CircuitState, CircuitState], object]
OpenListener = Callable[[BaseException | None], object]
CloseListener = Callable[[], object]
FailurePredicate = Callable[[BaseException], object]

CONSECUTIVE, ROLLING = "consecutive", "rolling"
_DEFAULT_FAILURE_THRESHOLD = 5
_DEFAULT_ERROR_THRESHOLD_PERCENTAGE = 50
_DEFAULT_REQUEST_VOLUME_THRESHOLD = 20
_DEFAULT_TIMEOUT_POOL_SIZE = 10
_MAX_BUCKETS = 10


class BreakerOptions(TypedDict, total=False):
    """The keyword options of a standalone breaker (each described in :class:`BreakerConfig`)."""

    failure_threshold: int
    monitoring_period_ms: int | None
    error_threshold_percentage: int
    request_volume_threshold: int
    rolling_window_ms: int
    recovery_timeout_ms: int
    success_threshold: int
    half_open_max_calls: int
    request_timeout_ms: int | None
    timeout_pool_size: int
    exclude: ExceptionTypes
    include: ExceptionTypes | None
    is_failure: FailurePredicate | None
    on_state_change: StateChangeListener | None
    on_open: OpenListener | None
    on_close: CloseListener | None
    group: str


@dataclass(frozen=True, slots=True, kw_only=True)
class BreakerConfig:
    """A standalone breaker's options; every bad value raises ``ValueError`` naming it.

    Trip modes (give the options of one, not both):

    * consecutive (the default): ``failure_threshold`` failures in a row (5)
      open the circuit; with ``monitoring_period_ms``, only if the newest and
      the oldest of them lie at most that far apart. Any success ends the run.
    * rolling (Hystrix's): ``error_threshold_percentage`` (50) of at least
      ``request_volume_threshold`` (20) calls over the rolling window failed.

    ``rolling_window_ms`` (10000) is the window of the rolling counts in both
    modes (in up to 10 buckets). ``recovery_timeout_ms`` (60000) is how long the
    circuit stays open before a trial; ``half_open_max_calls`` (1) trials may run
    at once and ``success_threshold`` (1) trial successes close it.
    ``request_timeout_ms`` (None) gives each call a deadline, running it on a
    pool of ``timeout_pool_size`` (10) workers of the breaker's own.
    ``exclude``, ``include`` and ``is_failure`` decide which errors count as
    failures. ``on_state_change(old, new)``, ``on_open(error)`` and
    ``on_close()`` are told of transitions. ``group`` ("breakers") is the group
    monitoring shows the breaker in.

    After validation the fields of the other mode read ``None`` and
    ``timeout_pool_size`` is ``None`` without a timeout, so two configs asking
    for the same thing compare equal.
    """

    failure_threshold: int | None = None
    monitoring_period_ms: int | None = None
    error_threshold_percentage: int | None = None
    request_volume_threshold: int | None = None
    rolling_window_ms: int = 10_000
    recovery_timeout_ms: int = 60_000
    success_threshold: int = 1
    half_open_max_calls: int = 1
    request_timeout_ms: int | None = None
    timeout_pool_size: int | None = None
    exclude: tuple[type[BaseException], ...] = ()
    include: tuple[type[BaseException], ...] | None = None
    is_failure: FailurePredicate | None = None
    on_state_change: StateChangeListener | None = None
    on_open: OpenListener | None = None
    on_close: CloseListener | None = None
    group: str = "breakers"

    def __post_init__(self) -> None:
        rolling = self.error_threshold_percentage is not None or (
            self.request_volume_threshold is not None
        )
        if rolling:
            if self.failure_threshold is not None:
                raise ValueError(
                    f"failure_threshold={self.failure_threshold!r} (the consecutive mode) "
                    "cannot be combined with error_threshold_percentage / "
                    "request_volume_threshold (the rolling mode): choose one mode"
                )
            if self.monitoring_period_ms is not None:
                raise ValueError(
                    f"monitoring_period_ms={self.monitoring_period_ms!r} applies to the "
                    "consecutive mode only, not with error_threshold_percentage / "
                    "request_volume_threshold"
                )
            self._fill("error_threshold_percentage", _DEFAULT_ERROR_THRESHOLD_PERCENTAGE)
            self._fill("request_volume_threshold", _DEFAULT_REQUEST_VOLUME_THRESHOLD)
            _check_int("error_threshold_percentage", self.error_threshold_percentage, 0, 100)
            _check_int("request_volume_threshold", self.request_volume_threshold, 1)
        else:
            self._fill("failure_threshold", _DEFAULT_FAILURE_THRESHOLD)
            _check_int("failure_threshold", self.failure_threshold, 1)
            if self.monitoring_period_ms is not None:
                _check_int("monitoring_period_ms", self.monitoring_period_ms, 1)
        _check_int("rolling_window_ms", self.rolling_window_ms, 1)
        _check_int("recovery_timeout_ms", self.recovery_timeout_ms, 0)
        _check_int("success_threshold", self.success_threshold, 1)
        _check_int("half_open_max_calls", self.half_open_max_calls, 1)
        if self.request_timeout_ms is None:
            if self.timeout_pool_size is not None:
                raise ValueError(
                    f"timeout_pool_size={self.timeout_pool_size!r} needs request_timeout_ms: "
                    "only calls with a timeout run on the breaker's pool"
                )
        else:
            _check_int("request_timeout_ms", self.request_timeout_ms, 1)
            self._fill("timeout_pool_size", _DEFAULT_TIMEOUT_POOL_SIZE)
            _check_int("timeout_pool_size", self.timeout_pool_size, 1)
        object.__setattr__(self, "exclude", _exception_types("exclude", self.exclude))
        if self.include is not None:
            include = _exception_types("include", self.include)
            if not include:
                raise ValueError("include=() would count no error as a failure; leave it None")
            object.__setattr__(self, "include", include)
        for name in ("is_failure", "on_state_change", "on_open", "on_close"):
            value = getattr(self, name)
            if value is not None and not callable(value):
                raise ValueError(f"{name} must be callable or None, got {value!r}")
        if not isinstance(self.group, str) or not self.group:
            raise ValueError(f"group must be a non-empty str, got {self.group!r}")

    def _fill(self, name: str, default: int) -> None:
        if getattr(self, name) is None:
            object.__setattr__(self, name, default)

    @classmethod
    def of(cls, **options: Unpack[BreakerOptions]) -> BreakerConfig:
        """A config from keyword options; an unknown name raises ``TypeError`` listing the known."""
        unknown = sorted(set(options) - OPTION_NAMES)
        if unknown:
            raise TypeError(
                f"unknown circuit breaker option {unknown[0]!r}; "
                f"known options: {', '.join(sorted(OPTION_NAMES))}"
            )
        values: dict[str, Any] = dict(options)
        return cls(**values)

    @property
    def mode(self) -> str:
        """``"consecutive"`` or ``"rolling"``: what trips the circuit."""
        return CONSECUTIVE if self.failure_threshold is not None else ROLLING

    def difference(self, other: BreakerConfig) -> str | None:
        """The name of the first option on which ``other`` differs, or ``None``."""
        for field in dataclasses.fields(self):
            if getattr(self, field.name) != getattr(other, field.name):
                return field.name
        return None

    def command_properties(self) -> CommandProperties:
        """The command properties that describe this breaker to the metrics and to monitoring.

        In the consecutive mode the volume threshold shows ``failure_threshold`` and
        the error threshold 100%, which is what a run of that many failures is.
        """
        timeout = self.request_timeout_ms
        window = self.rolling_window_ms
        volume = self.request_volume_threshold
        percentage = self.error_threshold_percentage
        if self.failure_threshold is not None:
            volume, percentage = self.failure_threshold, 100
        assert volume is not None and percentage is not None
        return CommandProperties(
            execution_isolation_strategy=(
                IsolationStrategy.SEMAPHORE if timeout is None else IsolationStrategy.THREAD
            ),
            execution_timeout_enabled=timeout is not None,
            execution_timeout_ms=1000 if timeout is None else timeout,
            circuit_breaker_request_volume_threshold=volume,
            circuit_breaker_error_threshold_percentage=percentage,
            circuit_breaker_sleep_window_ms=self.recovery_timeout_ms,
            metrics_rolling_stats_time_ms=window,
            metrics_rolling_stats_num_buckets=_buckets_of(window),
        )

    def pool_properties(self) -> ThreadPoolProperties:
        """The timeout pool's properties: ``timeout_pool_size`` workers and no queue."""
        size = self.timeout_pool_size or _DEFAULT_TIMEOUT_POOL_SIZE
        return ThreadPoolProperties(core_size=size, maximum_size=size)


#: Every option's name.
OPTION_NAMES = frozenset(field.name for field in dataclasses.fields(BreakerConfig))


def _check_int(name: str, value: object, minimum: int, maximum: int | None = None) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{name} must be an int, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value!r}")


def _exception_types(name: str, value: object) -> tuple[type[BaseException], ...]:
    """``value`` as a tuple of exception types (from one type or an iterable of them)."""
    items = (value,) if isinstance(value, type) else value
    if isinstance(items, (str, bytes)) or not isinstance(items, Iterable):
        raise ValueError(f"{name} must be an exception type or several, got {value!r}")
    found = tuple(items)
    for item in found:
        if not (isinstance(item, type) and issubclass(item, BaseException)):
            raise ValueError(f"{name} must hold exception types only, got {item!r} in {value!r}")
    return found


def _buckets_of(window_ms: int) -> int:
    """The most buckets, up to 10, that split ``window_ms`` evenly."""
    return max(count for count in range(1, _MAX_BUCKETS + 1) if window_ms % count == 0)
