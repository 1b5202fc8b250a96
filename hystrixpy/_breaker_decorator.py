"""The wrappers :func:`hystrixpy.breakers.protect` makes (wrapt, imported on first use).

wrapt keeps the function's name, docstring and signature, and binds the
wrapper to an instance or class as the function itself would be bound.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import wrapt

if TYPE_CHECKING:
    from hystrixpy._breaker_config import BreakerConfig
    from hystrixpy.breakers import Breaker

__all__ = ["protected"]


class _ProtectedMixin:
    """``breaker`` on the unbound and the bound wrappers alike."""

    _self_breaker_of: Callable[[], Breaker]
    _self_parent: Any

    @property
    def breaker(self) -> Breaker:
        """The breaker guarding the function (made afresh if the registry was cleared)."""
        return self._self_breaker_of()


class _BoundProtected(_ProtectedMixin, wrapt.BoundFunctionWrapper[..., Any]):
    """The wrapper of a protected method, bound to its instance (or class)."""


class _Protected(_ProtectedMixin, wrapt.FunctionWrapper[..., Any]):
    """The wrapper ``@protect`` returns."""

    __bound_function_wrapper__ = _BoundProtected


def protected(
    function: Callable[..., Any],
    name: str,
    config: BreakerConfig,
    find: Callable[[str], Breaker | None],
    create: Callable[[str, BreakerConfig], Breaker],
) -> Any:
    """Wrap ``function`` so each call goes through the breaker ``name``.

    The breaker is looked up at each call (``find``), and made again with
    ``config`` (``create``) if the registry has forgotten it.
    """
    target = getattr(function, "__func__", function)  # a classmethod or staticmethod
    if not callable(target):
        raise TypeError(f"@protect decorates a function or method, got {function!r}")

    def breaker_of() -> Breaker:
        found = find(name)
        return create(name, config) if found is None else found

    def call(
        wrapped: Callable[..., Any],
        instance: object,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> Any:
        # breaker_of(), written out: this runs on every call.
        breaker = find(name)
        if breaker is None:
            breaker = create(name, config)
        return breaker.call(wrapped, *args, **kwargs)

    wrapper = _Protected(function, call)
    wrapper._self_breaker_of = breaker_of
    return wrapper
