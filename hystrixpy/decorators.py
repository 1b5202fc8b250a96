"""``@command``: protect a function with a command, without writing the class.

::

    from hystrixpy import command

    @command(group_key="UserService", timeout_ms=500, fallback=lambda user_id: {"id": user_id})
    def get_user(user_id: int) -> dict: ...

    get_user(42)            # execute(): the value, or the fallback's
    get_user.queue(42)      # a Future, at once
    get_user.command_class  # the generated Command subclass (its metrics, breaker, key)

The decorator builds one :class:`~hystrixpy.Command` subclass per function,
when it is applied, and every call executes a new instance of it. The
command key defaults to the function's qualified name. Any
:class:`~hystrixpy.CommandProperties` or :class:`~hystrixpy.ThreadPoolProperties`
field may be given by name; an unknown name is a ``TypeError`` and a bad
value a ``ValueError``, both raised when the decorator is applied.

It works on functions, methods, classmethods and staticmethods (put it
above ``@classmethod`` / ``@staticmethod``), and keeps the function's name,
docstring and signature (wrapt). A fallback receives the same arguments as
the function, the instance (or class) first for methods (and classmethods).
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar, cast, overload

import wrapt

from hystrixpy import execution
from hystrixpy.command import Command
from hystrixpy.events import IsolationStrategy
from hystrixpy.properties import CommandProperties, ThreadPoolProperties
from hystrixpy.retry import RetryPolicy

__all__ = ["CommandFunction", "command"]

P = ParamSpec("P")
Q = ParamSpec("Q")
R = TypeVar("R")
S = TypeVar("S")

_new_instance = object.__new__
_execute = execution.execute
_queue = execution.queue
_COMMAND_FIELDS = frozenset(CommandProperties.SPECS)
_POOL_FIELDS = frozenset(ThreadPoolProperties.SPECS)


class CommandFunction(Protocol[P, R]):
    """What ``@command`` makes of a function: call it to execute, ``queue()`` it for a future."""

    @property
    def command_class(self) -> type[Command[Any]]:
        """The generated :class:`~hystrixpy.Command` subclass."""

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Execute the command: the function's value, or the fallback's."""

    def queue(self, *args: P.args, **kwargs: P.kwargs) -> Future[R]:
        """Start the command and return a future of its value at once."""

    @overload
    def __get__(self, instance: None, owner: type[Any]) -> CommandFunction[P, R]: ...

    @overload
    def __get__(
        self: CommandFunction[Concatenate[S, Q], R], instance: S, owner: type[Any]
    ) -> CommandFunction[Q, R]: ...

    def __get__(self, instance: Any, owner: type[Any]) -> Any:
        """Bind to an instance, as a method does."""


class _Call(Command[Any]):
    """The base of the generated commands: one call of the function, with its arguments.

    ``_call`` holds the function, the instance or class it is bound to (``None``
    for a function), and the arguments. The base has no ``run()`` of its own, so
    it stays abstract (with no key to register); each generated class gets
    :func:`_run_the_call` as its run().
    """

    _call: tuple[Callable[..., Any], object, tuple[Any, ...], dict[str, Any]]


def _run_the_call(self: _Call) -> Any:
    """A generated command's run(): call the function with the call's arguments."""
    function, _, args, kwargs = self._call
    return function(*args, **kwargs)


class _CallWithFallback(_Call):
    """A generated command whose fallback is a callable given to the decorator."""

    _fallback: Callable[..., Any]

    def get_fallback(self) -> Any:
        """Call the fallback with the call's arguments (the instance or class first)."""
        _, instance, args, kwargs = self._call
        if instance is None:
            return self._fallback(*args, **kwargs)
        return self._fallback(instance, *args, **kwargs)


def _new_call(
    cls: type[_Call],
    wrapped: Callable[..., Any],
    instance: object,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> _Call:
    """One call's command instance, made without ``__init__`` (this is every call's cost)."""
    call: _Call = _new_instance(cls)
    call._call = (wrapped, instance, args, kwargs)
    return call


class _CommandFunctionMixin:
    """``queue()`` and ``command_class`` on the unbound and the bound wrappers alike."""

    _self_command_class: type[_Call]
    _self_queue: Any
    _self_parent: Any
    _self_instance: Any
    _self_owner: Any

    @property
    def command_class(self) -> type[Command[Any]]:
        """The generated :class:`~hystrixpy.Command` subclass."""
        return self._self_command_class

    def queue(self, *args: Any, **kwargs: Any) -> Future[Any]:
        """Start the command and return a future of its value at once."""
        queue: Callable[..., Future[Any]] = self._self_queue
        if self._self_parent is not None:  # bound: bind the queueing wrapper the same way
            queue = self._self_queue.__get__(self._self_instance, self._self_owner)
        return queue(*args, **kwargs)


class _BoundCommandFunction(_CommandFunctionMixin, wrapt.BoundFunctionWrapper[Any, Any]):
    """The wrapper of a decorated method, bound to its instance (or class)."""


class _CommandFunction(_CommandFunctionMixin, wrapt.FunctionWrapper[Any, Any]):
    """The wrapper ``@command`` returns."""

    __bound_function_wrapper__ = _BoundCommandFunction


def _wrapper_of(cls: type[_Call], function: Callable[..., Any]) -> _CommandFunction:
    """The wrapper of ``function``, whose calls execute instances of ``cls``.

    wrapt's own call path looks for ``__self__`` on the function first, which for
    a plain function costs a raised and cleared AttributeError per call (about a
    third of an execution). A plain function's wrapper therefore gets a class of
    its own whose ``__call__`` goes straight to the command; bound methods,
    classmethods and staticmethods take wrapt's path, through ``__get__``.
    """

    def execute_call(
        wrapped: Callable[..., Any],
        instance: object,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> Any:
        return _execute(_new_call(cls, wrapped, instance, args, kwargs))

    def queue_call(
        wrapped: Callable[..., Any],
        instance: object,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> Future[Any]:
        return _queue(_new_call(cls, wrapped, instance, args, kwargs))

    wrapper_class: type[_CommandFunction] = _CommandFunction
    if inspect.isfunction(function):

        def __call__(self: _CommandFunction, *args: Any, **kwargs: Any) -> Any:
            call: _Call = _new_instance(cls)  # _new_call(), written out: every call runs this
            call._call = (function, None, args, kwargs)
            return _execute(call)

        wrapper_class = type(cls.__name__, (_CommandFunction,), {"__call__": __call__})
    wrapper = wrapper_class(function, execute_call)
    wrapper._self_command_class = cls
    wrapper._self_queue = wrapt.FunctionWrapper(cast(Any, function), queue_call)
    return wrapper


def command(
    *,
    group_key: str,
    command_key: str | None = None,
    thread_pool_key: str | None = None,
    timeout_ms: int | None = None,
    isolation: IsolationStrategy | str | None = None,
    fallback: Callable[..., Any] | None = None,
    retry: RetryPolicy | None = None,
    properties: CommandProperties | None = None,
    thread_pool_properties: ThreadPoolProperties | None = None,
    **options: Any,
) -> Callable[[Callable[P, R]], CommandFunction[P, R]]:
    """Protect the decorated function with a command of its own.

    ``timeout_ms`` sets ``execution_timeout_ms`` and ``isolation``
    (``"THREAD"`` or ``"SEMAPHORE"``) ``execution_isolation_strategy``;
    ``properties`` and ``thread_pool_properties`` give a base that the
    named fields in ``options`` change. A field both kinds of properties have
    (the rolling window's) is a command property here; set the pool's in
    ``thread_pool_properties``. ``retry`` retries the function inside the
    command (see :class:`~hystrixpy.RetryPolicy`).
    """
    command_changes, pool_changes = _split_options(options)
    if timeout_ms is not None:
        command_changes["execution_timeout_ms"] = timeout_ms
    if isolation is not None:
        command_changes["execution_isolation_strategy"] = _isolation(isolation)
    command_properties = _built(properties, CommandProperties, command_changes, "properties")
    pool_properties = _built(
        thread_pool_properties, ThreadPoolProperties, pool_changes, "thread_pool_properties"
    )
    if fallback is not None and not callable(fallback):
        raise TypeError(f"fallback must be callable, got {fallback!r}")
    if retry is not None and not isinstance(retry, RetryPolicy):
        raise TypeError(f"retry must be a RetryPolicy, got {retry!r}")

    def decorate(function: Callable[P, R]) -> CommandFunction[P, R]:
        target = getattr(function, "__func__", function)  # a classmethod or staticmethod
        if not callable(target):
            raise TypeError(f"@command decorates a function or method, got {function!r}")
        namespace: dict[str, Any] = {
            "__module__": getattr(target, "__module__", __name__),
            "__qualname__": getattr(target, "__qualname__", repr(target)),
            "__doc__": getattr(target, "__doc__", None),
            "group_key": group_key,
            "command_key": command_key or getattr(target, "__qualname__", repr(target)),
            "properties": command_properties,
            "thread_pool_properties": pool_properties,
            "retry": retry,
            "run": _run_the_call,
        }
        if thread_pool_key is not None:
            namespace["thread_pool_key"] = thread_pool_key
        base: type[_Call] = _Call
        if fallback is not None:
            base = _CallWithFallback
            namespace["_fallback"] = staticmethod(fallback)
        cls = type(getattr(target, "__name__", "command"), (base,), namespace)

        wrapper = _wrapper_of(cls, function)
        return cast("CommandFunction[P, R]", wrapper)

    return decorate


def _split_options(options: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Sort named fields into command and thread-pool properties; refuse unknown names."""
    command_changes: dict[str, Any] = {}
    pool_changes: dict[str, Any] = {}
    for name, value in options.items():
        if name in _COMMAND_FIELDS:
            command_changes[name] = value
        elif name in _POOL_FIELDS:
            pool_changes[name] = value
        else:
            known = ", ".join(sorted(_COMMAND_FIELDS | _POOL_FIELDS))
            raise TypeError(f"@command got an unknown option {name!r}; known properties: {known}")
    return command_changes, pool_changes


_Props = TypeVar("_Props", CommandProperties, ThreadPoolProperties)


def _built(base: _Props | None, kind: type[_Props], changes: dict[str, Any], name: str) -> _Props:
    """``base`` (or the defaults) with ``changes``; validated now, so errors name the field."""
    if base is None:
        return kind(**changes)
    if not isinstance(base, kind):
        raise TypeError(f"{name} must be a {kind.__name__}, got {base!r}")
    return dataclasses.replace(base, **changes) if changes else base


def _isolation(value: IsolationStrategy | str) -> IsolationStrategy:
    if isinstance(value, IsolationStrategy):
        return value
    try:
        return IsolationStrategy[str(value).upper()]
    except KeyError:
        raise ValueError(f"isolation must be THREAD or SEMAPHORE, got {value!r}") from None
