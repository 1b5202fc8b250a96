"""Fallback chains and graceful degradation.

::

    from hystrixpy.fallback import degrade, fallback_chain

    profile = fallback_chain(from_db, from_cache, lambda: {"id": uid, "partial": True})

    page = degrade(
        product=GetProduct(pid),                          # critical: its failure raises
        optional={"reviews": GetReviews(pid)},            # optional: degraded to its default
        defaults={"reviews": []},
    )
    page.product, page.reviews, page.errors

:func:`fallback_chain` tries its levels in order and returns the first
answer; when every level fails it raises
:class:`~hystrixpy.exceptions.AllFallbacksFailed` with each level's error.
:class:`FallbackChain` is the same chain kept for reuse, its levels called
with the arguments of each call.

:func:`degrade` starts every part of a composite answer at once, each
command in its own bulkhead, and waits for them together: a critical part's
failure raises, an optional part that fails or runs late is replaced by its
default, and the result says which parts were degraded and why. See
``docs/fallbacks.md``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any, Generic, ParamSpec, TypeVar

from hystrixpy import _log
from hystrixpy._fallback_degrade import Part, run_degrade
from hystrixpy._fallback_result import Degradation, DegradeResult
from hystrixpy.command import Command
from hystrixpy.exceptions import AllFallbacksFailed, BadRequestError

__all__ = [
    "Degradation",
    "DegradeResult",
    "FallbackChain",
    "Part",
    "degrade",
    "fallback_chain",
]

T = TypeVar("T")
P = ParamSpec("P")


def fallback_chain(*levels: Callable[[], T] | Command[T]) -> T:
    """Try each level in order; return the first one's answer that does not raise.

    A level is a zero-argument callable or a :class:`~hystrixpy.Command`
    instance, which is executed (``.execute()``): a command that answers from
    its own ``get_fallback()`` has succeeded, and the chain stops there. Each
    level that raises an :class:`Exception` is logged (INFO
    ``fallback_level_failed``, with its position and error) and the next is
    tried. When every level failed, :class:`~hystrixpy.exceptions.AllFallbacksFailed`
    holds their errors in order.

    Two errors stop the chain at once and propagate as they are: a
    :class:`~hystrixpy.BadRequestError` (the caller's input is at fault, so no
    other source would do better) and a ``BaseException`` that is not an
    ``Exception`` (``KeyboardInterrupt``, ``SystemExit``).

    No levels is a :class:`ValueError`; a level that is neither callable nor a
    command is a :class:`TypeError` naming its position, raised before any
    level runs.
    """
    names = _check_levels(levels, "fallback_chain()", allow_commands=True)
    return _run_levels(levels, names, (), {})


class FallbackChain(Generic[P, T]):
    """A fallback chain to keep and call many times: each call tries the levels in order.

    ``FallbackChain(from_db, from_cache, skeleton)(user_id)`` calls
    ``from_db(user_id)``, then ``from_cache(user_id)`` if it raised, and so on,
    as :func:`fallback_chain` does. Every level takes the call's arguments. A
    command instance runs only once, so it cannot be a level here: use a
    function that makes and executes one, ``lambda uid: GetUser(uid).execute()``.
    The levels are checked when the chain is made.
    """

    __slots__ = ("_names", "levels")

    def __init__(self, *levels: Callable[P, T]) -> None:
        self._names = _check_levels(levels, "FallbackChain()", allow_commands=False)
        #: The levels, in the order they are tried.
        self.levels: tuple[Callable[P, T], ...] = levels

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> T:
        """Try the levels in order with these arguments; see :func:`fallback_chain`."""
        return _run_levels(self.levels, self._names, args, kwargs)

    def __repr__(self) -> str:
        return f"FallbackChain({', '.join(self._names)})"


def degrade(
    *,
    optional: Mapping[str, Part] | None = None,
    defaults: Mapping[str, object] | None = None,
    timeout_ms: float | None = None,
    grace_ms: float = 100.0,
    **critical: Part,
) -> DegradeResult:
    """Start every part at once and collect them; optional parts degrade to their defaults.

    A part is a :class:`~hystrixpy.Command` instance, queued at once with
    ``.queue()`` (so THREAD-isolated commands run concurrently, each in its own
    bulkhead), or a :class:`concurrent.futures.Future` already started. Plain
    callables are refused: wrap one in a command (``@command`` gives it a
    ``.queue()``), or submit it to an executor of your own.

    The keyword arguments are the critical parts: the first one to fail raises
    its error as it is (a :class:`~hystrixpy.HystrixRuntimeError`, a
    :class:`~hystrixpy.BadRequestError`...), at once, without waiting for the
    other parts; their commands run on to their own deadlines and their
    answers are dropped, and a part's future that has not started is cancelled.

    ``optional`` names the parts the answer can do without, and ``defaults``
    gives each one's stand-in. An optional part that fails, or has no answer
    ``grace_ms`` after its command's deadline (time for the command's own
    fallback), gets its default, and the degradation is recorded in
    ``result.errors`` and logged (INFO ``part_degraded``). A part whose
    command answered from its fallback has succeeded: it is listed in
    ``result.from_fallback``, not degraded.

    ``timeout_ms`` bounds the wait for a part with no deadline of its own: a
    future (an optional future requires it), or a command whose timeout is
    disabled. A critical part past it raises a
    :class:`~hystrixpy.CommandTimeoutError`.

    Mistakes are found before any part starts: no parts at all, a part that is
    neither a command nor a future, a name that is not an identifier or
    clashes with the result's own attributes, a critical part also listed as
    optional, an optional part without a default or a default without a part.
    """
    return run_degrade(
        critical,
        {} if optional is None else optional,
        {} if defaults is None else defaults,
        timeout_ms=timeout_ms,
        grace_ms=grace_ms,
    )


# -- the chain ------------------------------------------------------------------------


def _check_levels(
    levels: tuple[object, ...], caller: str, *, allow_commands: bool
) -> tuple[str, ...]:
    """Check every level before any runs; return their names for the logs."""
    if not levels:
        raise ValueError(f"{caller} needs at least one level")
    for position, level in enumerate(levels):
        if isinstance(level, type) and issubclass(level, Command):
            raise TypeError(
                f"{caller} levels[{position}] is the command class {level.__name__}: "
                f"pass an instance, {level.__name__}(...)"
                + ("" if allow_commands else ", made and executed by a function")
            )
        if isinstance(level, Command):
            if allow_commands:
                continue
            raise TypeError(
                f"{caller} levels[{position}] is a {type(level).__name__} instance, which runs "
                f"only once: use a function that makes and executes one, such as "
                f"lambda *args: {type(level).__name__}(*args).execute()"
            )
        if not callable(level):
            kind = "callable or a Command instance" if allow_commands else "callable"
            raise TypeError(f"{caller} levels[{position}] must be a {kind}, got {level!r}")
    return tuple(_name_of(level) for level in levels)


def _name_of(level: object) -> str:
    """A short name for a level: a command's key, a function's qualified name."""
    if isinstance(level, Command):
        return level.command_key
    if isinstance(level, functools.partial):
        return f"partial({_name_of(level.func)})"
    name = getattr(level, "__qualname__", None)
    return name if isinstance(name, str) else type(level).__name__


def _run_levels(
    levels: tuple[Callable[..., T] | Command[T], ...],
    names: tuple[str, ...],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> T:
    """Try each level; the first answer wins, or every error goes into one group."""
    errors: list[Exception] = []
    for position, level in enumerate(levels):
        try:
            if isinstance(level, Command):
                return level.execute()
            return level(*args, **kwargs)
        except BadRequestError:
            raise
        except Exception as error:
            _log.info(
                "fallback_level_failed",
                position=position,
                level=names[position],
                error=repr(error),
            )
            errors.append(error)
    message = f"all {len(levels)} levels of the fallback chain failed: {', '.join(names)}"
    raise AllFallbacksFailed(message, errors)
