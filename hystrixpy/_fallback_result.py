"""What :func:`hystrixpy.fallback.degrade` returns: the parts' values, and what was degraded."""

from __future__ import annotations

import reprlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal

__all__ = ["RESERVED_NAMES", "Degradation", "DegradeResult"]


@dataclass(frozen=True, slots=True)
class Degradation:
    """Why an optional part was replaced by its default.

    ``reason`` is ``"failed"`` (``error`` is what the part raised) or
    ``"timed out"`` (``error`` is a :class:`~hystrixpy.CommandTimeoutError`
    saying how long it was waited for).
    """

    reason: Literal["failed", "timed out"]
    error: Exception


class DegradeResult:
    """The parts' values, by name: ``result.reviews`` or ``result["reviews"]``.

    ``errors`` maps each degraded part's name to its :class:`Degradation`;
    ``degraded`` lists those names and ``from_fallback`` the parts whose
    command answered from its own fallback (a success, not a degradation).
    Iterating gives every part's name, critical parts first.
    """

    __slots__ = ("_errors", "_from_fallback", "_values")

    def __init__(
        self,
        values: dict[str, Any],
        errors: dict[str, Degradation],
        from_fallback: tuple[str, ...],
    ) -> None:
        self._values = values
        self._errors = errors
        self._from_fallback = from_fallback

    def __getattr__(self, name: str) -> Any:
        if not name.startswith("_"):
            try:
                return self._values[name]
            except KeyError:
                pass
        raise AttributeError(f"{type(self).__name__} has no part named {name!r}")

    def __getitem__(self, name: str) -> Any:
        return self._values[name]

    def __contains__(self, name: object) -> bool:
        return name in self._values

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    @property
    def errors(self) -> Mapping[str, Degradation]:
        """Each degraded part's name, and why it was degraded (read-only)."""
        return MappingProxyType(self._errors)

    @property
    def degraded(self) -> tuple[str, ...]:
        """The names of the optional parts that got their defaults, in the parts' order."""
        return tuple(self._errors)

    @property
    def from_fallback(self) -> tuple[str, ...]:
        """The names of the parts whose command answered from its own fallback."""
        return self._from_fallback

    def as_dict(self) -> dict[str, Any]:
        """A new dict of every part's value, by name."""
        return dict(self._values)

    def __repr__(self) -> str:
        shown = []
        for name, value in self._values.items():
            text = f"{name}={reprlib.repr(value)}"
            if name in self._errors:
                text += f" <{self._errors[name].reason}>"
            elif name in self._from_fallback:
                text += " <from fallback>"
            shown.append(text)
        return f"{type(self).__name__}({', '.join(shown)})"


#: Names a part cannot take: the result's own attributes.
RESERVED_NAMES = frozenset(name for name in dir(DegradeResult) if not name.startswith("_"))
