"""The settings of :mod:`hystrixpy.chaos`: their names, their checks, how a key resolves them.

A setting is named ``chaos.command.<key>.<setting>``, where ``<key>`` is a
command key or ``default`` (every key). A key's own value of a setting wins
over the default's, setting by setting, as command properties do.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "DEFAULT_KEY",
    "PREFIX",
    "SETTING_NAMES",
    "FaultSettings",
    "Overrides",
    "check_all",
    "parse",
    "resolve",
]

#: What every chaos name starts with; hystrixpy.configure() hands these names to chaos.
PREFIX = "chaos."
_COMMAND_PREFIX = "chaos.command."
#: The key whose settings apply to every command key without its own.
DEFAULT_KEY = "default"
# Sums of rates may carry a rounding error: 0.1 + 0.2 + 0.7 is 1.0000000000000002.
_ROUNDING = 1e-9

#: (command key or "default", setting name) -> value.
Overrides = dict[tuple[str, str], float]


@dataclass(frozen=True, slots=True, kw_only=True)
class FaultSettings:
    """The faults injected into one command key's attempts (rates are in ``[0, 1]``).

    ``latency_ms`` of extra delay before ``latency_rate`` of the attempts; of
    each attempt, ``hang_rate`` hangs (until the deadline, or ``hang_ms``
    without one), ``exception_rate`` raises :class:`~hystrixpy.chaos.InjectedFault`
    and ``result_rate`` returns ``result`` instead of calling run(). The three
    fault rates share one draw, so their sum may not exceed 1.
    """

    exception_rate: float = 0.0
    latency_ms: float = 0.0
    latency_rate: float = 1.0
    hang_rate: float = 0.0
    hang_ms: float = 10_000.0
    result_rate: float = 0.0
    result: Any = field(default=None, compare=False)

    def __post_init__(self) -> None:
        for name in ("exception_rate", "latency_rate", "hang_rate", "result_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:  # also refuses NaN
                raise ValueError(f"{name} must be a rate from 0 to 1, got {value!r}")
        if not (math.isfinite(self.latency_ms) and self.latency_ms >= 0.0):
            raise ValueError(f"latency_ms must be a finite number >= 0, got {self.latency_ms!r}")
        if not (math.isfinite(self.hang_ms) and self.hang_ms > 0.0):
            raise ValueError(f"hang_ms must be a finite number > 0, got {self.hang_ms!r}")
        if self.fault_rate > 1.0 + _ROUNDING:
            raise ValueError(
                "hang_rate + exception_rate + result_rate must not exceed 1 (one draw decides "
                f"between them), got {self.hang_rate!r} + {self.exception_rate!r} + "
                f"{self.result_rate!r}"
            )

    @property
    def fault_rate(self) -> float:
        """The share of attempts that hang, raise or return the replacement result."""
        return self.hang_rate + self.exception_rate + self.result_rate

    @property
    def injects(self) -> bool:
        """Whether these settings inject anything at all."""
        return self.fault_rate > 0.0 or (self.latency_ms > 0.0 and self.latency_rate > 0.0)


#: The settings configure() accepts (result_rate is set in code, with its value).
SETTING_NAMES = ("exception_rate", "latency_ms", "latency_rate", "hang_rate", "hang_ms")


def _number(name: str, raw: object) -> float:
    """A configured value (possibly a string from a file) as a float."""
    if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
        raise ValueError(f"{name} must be a number, got {raw!r}")
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number, got {raw!r}") from None


def parse(settings: Mapping[str, object]) -> dict[tuple[str, str], float | None]:
    """Check every ``chaos.*`` name and value; ``None`` values mean remove the override."""
    parsed: dict[tuple[str, str], float | None] = {}
    for name, raw in settings.items():
        key, _, setting = name.removeprefix(_COMMAND_PREFIX).rpartition(".")
        if not name.startswith(_COMMAND_PREFIX) or not key:
            raise ValueError(
                f"unknown chaos setting {name!r}: expected 'chaos.command.<key>.<setting>' "
                "(<key> a command key or 'default')"
            )
        if setting in ("result", "result_rate"):
            raise ValueError(
                f"{name}: a replacement result is set in code, with its value: "
                "hystrixpy.chaos.set_result(command_key, value, rate=...)"
            )
        if setting not in SETTING_NAMES:
            raise ValueError(
                f"unknown chaos setting {setting!r} in {name!r}; "
                f"known: {', '.join(sorted(SETTING_NAMES))}"
            )
        value = None if raw is None else _number(name, raw)
        if value is not None:
            try:
                FaultSettings(**{setting: value})
            except ValueError as error:
                raise ValueError(f"{name}: {error}") from None
        parsed[(key, setting)] = value
    return parsed


def resolve(
    overrides: Overrides, results: Mapping[str, tuple[object, float]], command_key: str
) -> FaultSettings:
    """The settings in force for ``command_key``: its own, else the default's, else none."""
    values: dict[str, Any] = {}
    for key in (DEFAULT_KEY, command_key):
        for (owner, setting), value in overrides.items():
            if owner == key:
                values[setting] = value
        found = results.get(key)
        if found is not None:
            values["result"], values["result_rate"] = found
    return FaultSettings(**values)


def check_all(overrides: Overrides, results: Mapping[str, tuple[object, float]]) -> None:
    """Resolve every key that has settings of its own (or raise ``ValueError`` naming it)."""
    keys = {DEFAULT_KEY} | {key for key, _ in overrides} | set(results)
    for key in sorted(keys):
        try:
            resolve(overrides, results, key)
        except ValueError as error:
            raise ValueError(f"chaos settings of {key!r}: {error}") from None
