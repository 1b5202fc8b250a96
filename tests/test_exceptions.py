"""hystrixpy's exceptions carry what callers need and survive pickling."""

from __future__ import annotations

import pickle

import pytest

from hystrixpy import (
    BadRequestError,
    Command,
    CommandTimeoutError,
    FailureType,
    HystrixError,
    HystrixRuntimeError,
    RejectedError,
    ShortCircuitedError,
)


class Lookup(Command[int]):
    group_key = "ExceptionsTest"

    def run(self) -> int:
        return 1


class TestHierarchy:
    def test_tree(self) -> None:
        """The exception tree is as drawn in the module docstring."""
        assert issubclass(HystrixRuntimeError, HystrixError)
        assert issubclass(ShortCircuitedError, HystrixError)
        assert issubclass(RejectedError, HystrixError)
        assert issubclass(CommandTimeoutError, TimeoutError)
        assert not issubclass(BadRequestError, HystrixError)


class TestHystrixRuntimeError:
    def test_carries_failure_details(self) -> None:
        """The error keeps its failure type, command class and fallback exception."""
        fallback_error = ValueError("fallback broke")
        error = HystrixRuntimeError(
            "Lookup failed",
            failure_type=FailureType.COMMAND_EXCEPTION,
            command_class=Lookup,
            fallback_exception=fallback_error,
        )
        assert str(error) == "Lookup failed"
        assert error.failure_type is FailureType.COMMAND_EXCEPTION
        assert error.command_class is Lookup
        assert error.fallback_exception is fallback_error

    def test_pickles(self) -> None:
        """The error crosses process boundaries (multiprocessing) with its details."""
        error = HystrixRuntimeError(
            "Lookup timed out",
            failure_type=FailureType.TIMEOUT,
            command_class=Lookup,
        )
        copy = pickle.loads(pickle.dumps(error))
        assert isinstance(copy, HystrixRuntimeError)
        assert str(copy) == "Lookup timed out"
        assert copy.failure_type is FailureType.TIMEOUT
        assert copy.command_class is Lookup
        assert copy.fallback_exception is None

    def test_raise_from_keeps_cause(self) -> None:
        """Raised from the original error, the cause is kept."""
        original = OSError("down")
        with pytest.raises(HystrixRuntimeError) as info:
            raise HystrixRuntimeError(
                "x", failure_type=FailureType.COMMAND_EXCEPTION, command_class=None
            ) from original
        assert info.value.__cause__ is original
