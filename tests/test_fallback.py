"""Fallback chains and degrade(): levels tried in order, parts started together and degraded."""

from __future__ import annotations

import functools
import logging
import pickle
import re
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import CancelledError, Future
from pathlib import Path
from typing import Any, TypeVar

import pytest

from hystrixpy import (
    BadRequestError,
    Command,
    CommandProperties,
    CommandTimeoutError,
    EventType,
    HystrixError,
    HystrixRuntimeError,
    IsolationStrategy,
    ThreadPoolProperties,
    clock,
    registry,
)
from hystrixpy.exceptions import AllFallbacksFailed
from hystrixpy.fallback import Degradation, DegradeResult, FallbackChain, degrade, fallback_chain
from hystrixpy.testing import FakeClock, use_clock
from tests.gates import Caller

T = TypeVar("T")
WAIT = 5.0
SEMAPHORE = IsolationStrategy.SEMAPHORE
THREAD = IsolationStrategy.THREAD
Behaviour = Callable[[Any], Any]


# -- helpers ----------------------------------------------------------------------------


class WatchedClock(FakeClock):
    """A fake clock that tells the test when a thread has begun a timed wait on it.

    Each wait's deadline is fixed before the thread is marked as waiting, so a
    test that advances time once it sees the waiter cannot push that deadline on.
    """

    def __init__(self) -> None:
        super().__init__()
        self._changed = threading.Condition()
        self._waiting: set[threading.Thread] = set()

    def wait(self, lock: threading.Lock, timeout: float) -> bool:
        deadline = self.monotonic() + timeout
        me = threading.current_thread()
        with self._changed:
            self._waiting.add(me)
            self._changed.notify_all()
        try:
            while True:
                if lock.acquire(True, 0.001):
                    return True
                if self.monotonic() >= deadline:
                    return lock.acquire(False)
        finally:
            with self._changed:
                self._waiting.discard(me)

    def wait_for_waiter(self, thread: threading.Thread | None) -> None:
        """Block (at most 5 s) until ``thread`` waits on this clock."""
        with self._changed:
            assert self._changed.wait_for(lambda: thread in self._waiting, WAIT)


@pytest.fixture
def watched() -> Iterator[WatchedClock]:
    """A WatchedClock installed as hystrixpy's clock for the test."""
    fake = WatchedClock()
    with use_clock(fake):
        yield fake


class Gate:
    """Holds a run() or a get_fallback() until the test opens it."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.opened = threading.Event()

    def hold(self, then: Behaviour = lambda command: "held") -> Behaviour:
        def behaviour(command: Any) -> Any:
            self.entered.set()
            assert self.opened.wait(WAIT), "the test never opened the gate"
            return then(command)

        return behaviour


def returns(value: Any) -> Behaviour:
    return lambda command: value


def raises(error: BaseException) -> Behaviour:
    def behaviour(command: Any) -> Any:
        raise error

    return behaviour


class Scripted(Command[Any]):
    """A command whose run() does what it is told; ``scripted()`` makes configured subclasses."""

    group_key = "FallbackScripted"

    def __init__(self, run: Behaviour | None = None, fallback: Behaviour | None = None) -> None:
        super().__init__()
        self.behaviour = run or returns("value")
        self.fallback_behaviour = fallback or returns("fallback")
        self.run_threads: list[threading.Thread] = []

    def run(self) -> Any:
        self.run_threads.append(threading.current_thread())
        return self.behaviour(self)


class ScriptedWithFallback(Scripted):
    """A scripted command with a get_fallback()."""

    def get_fallback(self) -> Any:
        return self.fallback_behaviour(self)


def scripted(
    name: str,
    *,
    isolation: IsolationStrategy = SEMAPHORE,
    fallback: bool = False,
    pool: ThreadPoolProperties | None = None,
    **settings: Any,
) -> type[Scripted]:
    """A command class named ``name`` (its command, group and pool key) with these properties."""
    namespace = {
        "group_key": name,
        "properties": CommandProperties(execution_isolation_strategy=isolation, **settings),
        "thread_pool_properties": pool or ThreadPoolProperties(),
    }
    return type(name, (ScriptedWithFallback if fallback else Scripted,), namespace)


def events(caplog: pytest.LogCaptureFixture, name: str) -> list[dict[str, Any]]:
    """The fields of each ``name`` event hystrixpy logged."""
    return [r.hystrixpy for r in caplog.records if getattr(r, "hystrixpy_event", None) == name]


class Recorder:
    """Levels that record their calls: ``answer(x)`` returns x, ``fail(e)`` raises e."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def answer(self, name: str, value: Any) -> Callable[..., Any]:
        def level(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            return value if not args else (value, args, kwargs)

        level.__qualname__ = name
        return level

    def fail(self, name: str, error: BaseException) -> Callable[..., Any]:
        def level(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            raise error

        level.__qualname__ = name
        return level


# -- fallback_chain -------------------------------------------------------------------


class TestFallbackChain:
    def test_returns_the_first_answer_and_tries_no_further(self) -> None:
        """The first level that answers wins; the levels after it are never called."""
        levels = Recorder()
        value = fallback_chain(levels.answer("db", "fresh"), levels.answer("cache", "stale"))

        assert value == "fresh"
        assert levels.calls == ["db"]

    def test_tries_the_levels_in_order_until_one_answers(self) -> None:
        """Failed levels are passed over in order, and the first that answers wins."""
        levels = Recorder()
        value = fallback_chain(
            levels.fail("db", ConnectionError("down")),
            levels.fail("cache", KeyError("user:7")),
            levels.answer("backup", "older"),
            levels.answer("skeleton", "partial"),
        )

        assert value == "older"
        assert levels.calls == ["db", "cache", "backup"]

    def test_each_failed_level_is_logged_with_its_position_and_error(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Every failed level is an INFO fallback_level_failed with position, name and error."""
        caplog.set_level(logging.INFO, logger="hystrixpy")
        levels = Recorder()
        fallback_chain(
            levels.fail("db", ConnectionError("down")),
            levels.fail("cache", KeyError("user:7")),
            levels.answer("skeleton", "partial"),
        )

        assert events(caplog, "fallback_level_failed") == [
            {"position": 0, "level": "db", "error": "ConnectionError('down')"},
            {"position": 1, "level": "cache", "error": "KeyError('user:7')"},
        ]
        assert all(r.levelno == logging.INFO for r in caplog.records)

    def test_all_levels_failing_raise_every_error_in_order(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """AllFallbacksFailed holds each level's error in the chain's order, and names them."""
        caplog.set_level(logging.INFO, logger="hystrixpy")
        errors = [ConnectionError("down"), KeyError("user:7"), ValueError("corrupt")]
        levels = Recorder()

        with pytest.raises(AllFallbacksFailed) as caught:
            fallback_chain(*(levels.fail(f"l{i}", e) for i, e in enumerate(errors)))

        assert caught.value.exceptions == tuple(errors)
        assert all(a is b for a, b in zip(caught.value.exceptions, errors, strict=True))
        assert str(caught.value) == (
            "all 3 levels of the fallback chain failed: l0, l1, l2 (3 sub-exceptions)"
        )
        assert isinstance(caught.value, HystrixError)
        assert caught.value.__context__ is None
        assert len(events(caplog, "fallback_level_failed")) == 3

    @pytest.mark.skipif(sys.version_info < (3, 11), reason="except* is Python 3.11+")
    def test_except_star_catches_the_errors_of_a_kind(self) -> None:
        """On Python 3.11+ except* picks out the levels' errors by type."""
        code = (
            "def run(chain):\n"
            "    seen = []\n"
            "    try:\n"
            "        chain()\n"
            "    except* ConnectionError as group:\n"
            "        seen.append(('connection', group.exceptions))\n"
            "    except* KeyError as group:\n"
            "        seen.append(('key', group.exceptions))\n"
            "    return seen\n"
        )
        namespace: dict[str, Any] = {}
        exec(code, namespace)
        down, missing, reset = ConnectionError("down"), KeyError("k"), ConnectionError("reset")
        levels = Recorder()

        seen = namespace["run"](
            lambda: fallback_chain(
                levels.fail("a", down), levels.fail("b", missing), levels.fail("c", reset)
            )
        )

        assert seen == [("connection", (down, reset)), ("key", (missing,))]

    def test_a_command_level_is_executed(self) -> None:
        """A command instance is executed, and its value is the chain's."""
        command = scripted("ChainPrimary")(run=returns("from the command"))

        assert fallback_chain(command, lambda: "unused") == "from the command"
        assert command.execution_events == [EventType.SUCCESS]

    def test_a_command_answering_from_its_fallback_ends_the_chain(self) -> None:
        """A command's own fallback counts as its level succeeding: the next level is not tried."""
        levels = Recorder()
        command = scripted("ChainFallsBack", fallback=True)(
            run=raises(ConnectionError("down")), fallback=returns("from its fallback")
        )

        assert fallback_chain(command, levels.answer("next", "unused")) == "from its fallback"
        assert command.is_response_from_fallback
        assert levels.calls == []

    def test_a_command_with_no_fallback_fails_its_level(self) -> None:
        """A command with no fallback fails with HystrixRuntimeError; the next level answers."""
        command = scripted("ChainNoFallback")(run=raises(ConnectionError("down")))

        assert fallback_chain(command, lambda: "next") == "next"

        with pytest.raises(AllFallbacksFailed) as caught:
            fallback_chain(scripted("ChainNoFallback2")(run=raises(ConnectionError("down"))))
        [error] = caught.value.exceptions
        assert isinstance(error, HystrixRuntimeError)
        assert isinstance(error.__cause__, ConnectionError)

    def test_a_thread_isolated_command_level_runs_on_its_pool(self) -> None:
        """A THREAD command level runs on a worker of its own pool."""
        command = scripted("ChainThreaded", isolation=THREAD)(run=returns("threaded"))

        assert fallback_chain(command) == "threaded"
        assert command.is_executed_in_thread
        assert command.run_threads[0].name.startswith("hystrix-ChainThreaded")

    @pytest.mark.parametrize("error", [KeyboardInterrupt(), SystemExit(3)])
    def test_a_non_exception_stops_the_chain_at_once(
        self, error: BaseException, caplog: pytest.LogCaptureFixture
    ) -> None:
        """KeyboardInterrupt and SystemExit propagate at once: no later level runs or is logged."""
        caplog.set_level(logging.INFO, logger="hystrixpy")
        levels = Recorder()

        with pytest.raises(type(error)):
            fallback_chain(
                levels.fail("db", ConnectionError("down")),
                levels.fail("cache", error),
                levels.answer("skeleton", "partial"),
            )

        assert levels.calls == ["db", "cache"]
        assert len(events(caplog, "fallback_level_failed")) == 1

    def test_a_bad_request_stops_the_chain(self) -> None:
        """A BadRequestError is the caller's mistake: it propagates, and no later level runs."""
        levels = Recorder()
        bad = BadRequestError("no such user id: -1")

        with pytest.raises(BadRequestError) as caught:
            fallback_chain(levels.fail("db", bad), levels.answer("skeleton", "partial"))

        assert caught.value is bad
        assert levels.calls == ["db"]

    def test_no_levels_is_a_value_error(self) -> None:
        """A chain needs at least one level."""
        with pytest.raises(ValueError, match="at least one level"):
            fallback_chain()

    def test_a_level_that_cannot_be_called_is_refused_before_any_runs(self) -> None:
        """A level that is neither callable nor a command is a TypeError naming its position."""
        levels = Recorder()

        with pytest.raises(TypeError, match=r"levels\[1\] must be a callable or a Command"):
            fallback_chain(levels.answer("db", "fresh"), {"id": 7})  # type: ignore[arg-type]

        assert levels.calls == []

    def test_a_command_class_is_refused(self) -> None:
        """A command class (callable, but making an instance) is refused with the fix."""
        command_class = scripted("ChainClass")

        with pytest.raises(TypeError, match=r"levels\[0\] is the command class ChainClass"):
            fallback_chain(command_class)

    def test_levels_are_named_for_the_logs(self, caplog: pytest.LogCaptureFixture) -> None:
        """Logs name a command by its key, a partial by its function, other callables by type."""
        caplog.set_level(logging.INFO, logger="hystrixpy")

        class Source:
            def __call__(self) -> str:
                raise LookupError("nothing")

        def lookup(key: str) -> str:
            raise LookupError(key)

        with pytest.raises(AllFallbacksFailed):
            fallback_chain(
                scripted("NamedLevel")(run=raises(ConnectionError("down"))),
                functools.partial(lookup, "k"),
                Source(),
                lambda: 1 / 0,
            )

        names = [fields["level"] for fields in events(caplog, "fallback_level_failed")]
        assert names == [
            "NamedLevel",
            "partial(TestFallbackChain.test_levels_are_named_for_the_logs.<locals>.lookup)",
            "Source",
            "TestFallbackChain.test_levels_are_named_for_the_logs.<locals>.<lambda>",
        ]


class TestFallbackChainObject:
    def test_each_call_tries_the_levels_with_its_arguments(self) -> None:
        """A kept chain passes each call's arguments to every level it tries, call after call."""
        calls: list[tuple[str, int]] = []

        def from_db(user_id: int) -> dict[str, Any]:
            calls.append(("db", user_id))
            if user_id == 7:
                raise ConnectionError("down")
            return {"id": user_id}

        def skeleton(user_id: int) -> dict[str, Any]:
            calls.append(("skeleton", user_id))
            return {"id": user_id, "partial": True}

        get_profile = FallbackChain(from_db, skeleton)

        assert get_profile(7) == {"id": 7, "partial": True}
        assert get_profile(user_id=8) == {"id": 8}
        assert calls == [("db", 7), ("skeleton", 7), ("db", 8)]

    def test_all_failing_raise_all_fallbacks_failed(self) -> None:
        """A kept chain whose levels all fail raises AllFallbacksFailed, as fallback_chain does."""
        chain = FallbackChain(raises(KeyError("a")), raises(KeyError("b")))

        with pytest.raises(AllFallbacksFailed) as caught:
            chain(None)

        assert [str(e) for e in caught.value.exceptions] == ["'a'", "'b'"]

    def test_a_command_instance_is_refused(self) -> None:
        """A command runs once, so a kept chain refuses one, saying how to make one per call."""
        command = scripted("KeptCommand")()

        with pytest.raises(TypeError, match=r"levels\[1\] is a KeptCommand instance.*execute\(\)"):
            FallbackChain(lambda: 1, command)  # type: ignore[arg-type]

    def test_a_command_class_is_refused(self) -> None:
        """A command class is refused by a kept chain too."""
        with pytest.raises(TypeError, match="made and executed by a function"):
            FallbackChain(scripted("KeptClass"))

    def test_bad_levels_are_refused_when_it_is_made(self) -> None:
        """No levels, or one that is not callable, fail when the chain is made."""
        with pytest.raises(ValueError, match=r"FallbackChain\(\) needs at least one level"):
            FallbackChain()
        with pytest.raises(TypeError, match=r"levels\[0\] must be a callable, got 3"):
            FallbackChain(3)  # type: ignore[arg-type]

    def test_repr_names_its_levels(self) -> None:
        """The repr lists the levels by name."""

        def from_db() -> int:
            return 1

        chain = FallbackChain(from_db, functools.partial(from_db))
        assert repr(chain) == (
            "FallbackChain(TestFallbackChainObject.test_repr_names_its_levels.<locals>.from_db, "
            "partial(TestFallbackChainObject.test_repr_names_its_levels.<locals>.from_db))"
        )
        assert chain.levels[0] is from_db


class TestAllFallbacksFailed:
    def test_is_an_exception_group_and_a_hystrix_error(self) -> None:
        """It is a HystrixError, and on 3.11+ an ExceptionGroup."""
        error = AllFallbacksFailed("all failed", [ValueError("x")])

        assert isinstance(error, HystrixError)
        assert isinstance(error, Exception)
        if sys.version_info >= (3, 11):
            assert isinstance(error, ExceptionGroup)  # noqa: F821
        assert error.message == "all failed"

    def test_str_counts_its_errors(self) -> None:
        """Its str() is the message and the number of errors."""
        assert str(AllFallbacksFailed("m", [KeyError(1)])) == "m (1 sub-exception)"
        assert str(AllFallbacksFailed("m", [KeyError(1), KeyError(2)])) == "m (2 sub-exceptions)"

    def test_pickles_with_its_errors(self) -> None:
        """It survives pickling with its message and errors."""
        error = AllFallbacksFailed("all failed", [ValueError("x"), KeyError("y")])
        copy = pickle.loads(pickle.dumps(error))

        assert type(copy) is AllFallbacksFailed
        assert copy.message == "all failed"
        assert [repr(e) for e in copy.exceptions] == ["ValueError('x')", "KeyError('y')"]


class TestFallbackViaNetwork:
    def test_a_fallback_command_on_its_own_pool_answers_when_the_primary_pool_is_full(
        self,
    ) -> None:
        """get_fallback() executing a command with its own pool key still answers a rejection."""
        gate = Gate()
        cache = scripted("ProfileCache", isolation=THREAD)
        fallback_commands: list[Scripted] = []

        def from_cache(command: Any) -> Any:
            nested = cache(run=returns({"id": 7, "from": "cache"}))
            fallback_commands.append(nested)
            return nested.execute()

        profile = scripted(
            "ProfileService",
            isolation=THREAD,
            fallback=True,
            pool=ThreadPoolProperties(core_size=1, maximum_size=1),
        )
        busy = profile(run=gate.hold())
        busy_future = busy.queue()
        assert gate.entered.wait(WAIT)
        try:
            rejected = profile(run=returns("unused"), fallback=from_cache)
            value = rejected.execute()
        finally:
            gate.opened.set()

        assert value == {"id": 7, "from": "cache"}
        assert rejected.is_response_thread_pool_rejected
        assert rejected.is_response_from_fallback
        [nested] = fallback_commands
        assert nested.run_threads[0].name.startswith("hystrix-ProfileCache")
        assert busy_future.result(WAIT) == "held"


# -- degrade ----------------------------------------------------------------------------


class TestDegrade:
    def test_every_part_answering_gives_every_value(self) -> None:
        """Each part's value is an attribute and an item; nothing is degraded."""
        part = scripted("PagePart")
        page = degrade(
            product=part(run=returns({"id": 1})),
            optional={"reviews": part(run=returns(["good"]))},
            defaults={"reviews": []},
        )

        assert page.product == {"id": 1}
        assert page.reviews == ["good"]
        assert page["reviews"] == ["good"]
        assert list(page) == ["product", "reviews"]
        assert len(page) == 2
        assert "reviews" in page
        assert page.as_dict() == {"product": {"id": 1}, "reviews": ["good"]}
        assert page.errors == {}
        assert page.degraded == ()
        assert page.from_fallback == ()

    def test_a_failing_critical_part_raises_its_error(self) -> None:
        """A critical part's HystrixRuntimeError is raised as it is."""
        with pytest.raises(HystrixRuntimeError) as caught:
            degrade(product=scripted("CriticalFails")(run=raises(ConnectionError("down"))))

        assert isinstance(caught.value.__cause__, ConnectionError)

    def test_a_bad_request_from_a_critical_part_is_raised_as_it_is(self) -> None:
        """A critical part's BadRequestError reaches the caller unwrapped."""
        bad = BadRequestError("no such product")

        with pytest.raises(BadRequestError) as caught:
            degrade(product=scripted("CriticalBadRequest")(run=raises(bad)))

        assert caught.value is bad

    def test_a_critical_part_failing_at_once_stops_later_parts_from_starting(self) -> None:
        """A critical part that failed while being queued: the later parts are never started."""
        later = scripted("NeverStarted")()

        with pytest.raises(HystrixRuntimeError):
            degrade(
                product=scripted("FailsAtOnce")(run=raises(ConnectionError("down"))),
                optional={"reviews": later},
                defaults={"reviews": []},
            )

        assert later.run_threads == []
        assert later.execution_events == []

    def test_the_caller_does_not_wait_for_optional_parts_once_a_critical_one_failed(
        self,
    ) -> None:
        """A critical part failing on its worker raises while an optional part is still running."""
        held = Gate()
        critical_gate = Gate()
        optional = scripted("StillRunning", isolation=THREAD)(run=held.hold())
        critical = scripted("FailsLater", isolation=THREAD)(
            run=critical_gate.hold(raises(ConnectionError("down")))
        )
        try:
            caller = Caller(
                lambda: degrade(
                    product=critical, optional={"reviews": optional}, defaults={"reviews": []}
                )
            )
            assert held.entered.wait(WAIT)
            critical_gate.opened.set()
            with pytest.raises(HystrixRuntimeError):
                caller.outcome()
            assert optional.execution_events == []  # still in run()
        finally:
            held.opened.set()

    def test_a_failing_optional_part_gets_its_default_and_is_recorded(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """An optional part that fails: its default, the error in errors, a part_degraded event."""
        caplog.set_level(logging.INFO, logger="hystrixpy")
        page = degrade(
            product=scripted("Product")(run=returns({"id": 1})),
            optional={
                "reviews": scripted("Reviews")(run=raises(ConnectionError("down"))),
                "inventory": scripted("Inventory")(run=returns({"available": 3})),
            },
            defaults={"reviews": [], "inventory": {"available": True}},
        )

        assert page.reviews == []
        assert page.inventory == {"available": 3}
        assert page.degraded == ("reviews",)
        degradation = page.errors["reviews"]
        assert degradation.reason == "failed"
        assert isinstance(degradation.error, HystrixRuntimeError)
        [fields] = events(caplog, "part_degraded")
        assert fields["part"] == "reviews"
        assert fields["reason"] == "failed"
        assert fields["error"].startswith("HystrixRuntimeError('Reviews failed")

    def test_an_optional_part_answering_from_its_fallback_is_a_success(self) -> None:
        """A part whose command fell back is not degraded; it is listed in from_fallback."""
        page = degrade(
            optional={
                "reviews": scripted("ReviewsFallBack", fallback=True)(
                    run=raises(ConnectionError("down")), fallback=returns(["cached"])
                )
            },
            defaults={"reviews": []},
        )

        assert page.reviews == ["cached"]
        assert page.degraded == ()
        assert page.from_fallback == ("reviews",)

    def test_an_optional_part_timing_out_into_its_fallback_is_a_success(
        self, watched: WatchedClock
    ) -> None:
        """A queued command's future completes at its deadline with its fallback: not degraded."""
        gate = Gate()
        slow = scripted("SlowReviews", isolation=THREAD, fallback=True, execution_timeout_ms=100)
        command = slow(run=gate.hold(), fallback=returns(["cached"]))
        try:
            caller = Caller(
                lambda: degrade(optional={"reviews": command}, defaults={"reviews": []})
            )
            assert gate.entered.wait(WAIT)
            watched.wait_for_waiter(caller.thread)
            watched.wait_for_waiter(registry.timer()._thread)
            watched.advance(0.1)  # the deadline: the timer runs the fallback
            page = caller.outcome()
        finally:
            gate.opened.set()

        assert page.reviews == ["cached"]
        assert page.from_fallback == ("reviews",)
        assert command.is_response_timed_out

    def test_an_optional_part_with_no_answer_after_its_deadline_and_grace_gets_its_default(
        self, watched: WatchedClock, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A part whose fallback is still running grace_ms after the deadline is timed out."""
        caplog.set_level(logging.INFO, logger="hystrixpy")
        run_gate, fallback_gate = Gate(), Gate()
        slow = scripted("StuckReviews", isolation=THREAD, fallback=True, execution_timeout_ms=100)
        command = slow(run=run_gate.hold(), fallback=fallback_gate.hold())
        try:
            caller = Caller(
                lambda: degrade(
                    optional={"reviews": command}, defaults={"reviews": []}, grace_ms=50
                )
            )
            assert run_gate.entered.wait(WAIT)
            watched.wait_for_waiter(caller.thread)
            watched.wait_for_waiter(registry.timer()._thread)
            watched.advance(0.1)  # the deadline: the fallback starts, and is held
            assert fallback_gate.entered.wait(WAIT)
            watched.advance(0.05)  # the grace passes too
            page = caller.outcome()
        finally:
            run_gate.opened.set()
            fallback_gate.opened.set()

        assert page.reviews == []
        degradation = page.errors["reviews"]
        assert degradation.reason == "timed out"
        assert isinstance(degradation.error, CommandTimeoutError)
        assert str(degradation.error) == (
            "optional part 'reviews' (StuckReviews) had no answer 50 ms after its deadline"
        )
        [fields] = events(caplog, "part_degraded")
        assert fields["reason"] == "timed out"

    def test_parts_run_at_once_and_the_total_time_is_the_slowest(
        self, watched: WatchedClock
    ) -> None:
        """All three parts are in run() together, and one advance of 300 ms finishes them all."""
        barrier = threading.Barrier(4)

        def work(seconds: float) -> Behaviour:
            def behaviour(command: Any) -> Any:
                barrier.wait(WAIT)
                clock.sleep(seconds)
                return seconds

            return behaviour

        part = scripted("Concurrent", isolation=THREAD, execution_timeout_ms=5000)
        commands = [part(run=work(0.1)), part(run=work(0.2)), part(run=work(0.3))]
        started = watched.monotonic()
        caller = Caller(
            lambda: degrade(
                product=commands[0],
                optional={"reviews": commands[1], "recommendations": commands[2]},
                defaults={"reviews": [], "recommendations": []},
            )
        )
        barrier.wait(WAIT)  # every part is inside run() at the same time
        for command in commands:
            watched.wait_for_waiter(command.run_threads[0])
        watched.wait_for_waiter(caller.thread)
        watched.advance(0.3)
        page = caller.outcome()

        assert (page.product, page.reviews, page.recommendations) == (0.1, 0.2, 0.3)
        assert watched.monotonic() - started == pytest.approx(0.3)
        assert len({command.run_threads[0] for command in commands}) == 3

    def test_futures_are_parts_too(self) -> None:
        """A Future already started is waited for like a command's."""
        product: Future[Any] = Future()
        product.set_result({"id": 1})
        reviews: Future[Any] = Future()
        reviews.set_exception(ConnectionError("down"))

        page = degrade(
            product=product,
            optional={"reviews": reviews},
            defaults={"reviews": []},
            timeout_ms=100,
        )

        assert page.product == {"id": 1}
        assert page.errors["reviews"] == Degradation("failed", reviews.exception())  # type: ignore[arg-type]

    def test_an_optional_future_past_timeout_ms_gets_its_default(
        self, watched: WatchedClock
    ) -> None:
        """A Future with no answer after timeout_ms is timed out, and cancelled if not started."""
        never: Future[Any] = Future()
        caller = Caller(
            lambda: degrade(optional={"reviews": never}, defaults={"reviews": []}, timeout_ms=200)
        )
        watched.wait_for_waiter(caller.thread)
        watched.advance(0.2)
        page = caller.outcome()

        assert page.reviews == []
        assert page.errors["reviews"].reason == "timed out"
        assert str(page.errors["reviews"].error) == (
            "optional part 'reviews' had no answer within 200 ms"
        )

    def test_a_critical_future_past_timeout_ms_raises_and_pending_futures_are_cancelled(
        self, watched: WatchedClock
    ) -> None:
        """A critical Future past timeout_ms raises; futures not yet started are cancelled."""
        critical: Future[Any] = Future()
        critical.set_running_or_notify_cancel()
        pending: Future[Any] = Future()
        caller = Caller(
            lambda: degrade(
                product=critical,
                optional={"reviews": pending},
                defaults={"reviews": []},
                timeout_ms=200,
            )
        )
        watched.wait_for_waiter(caller.thread)
        watched.advance(0.2)

        with pytest.raises(CommandTimeoutError, match="critical part 'product' had no answer"):
            caller.outcome()
        assert pending.cancelled()
        assert not critical.cancelled()  # running: it cannot be

    def test_a_critical_future_without_timeout_ms_is_waited_for_until_it_answers(
        self, watched: WatchedClock
    ) -> None:
        """With no limit to wait for, degrade() sleeps until the future completes."""
        product: Future[Any] = Future()
        caller = Caller(lambda: degrade(product=product))
        watched.wait_for_waiter(caller.thread)
        product.set_result({"id": 1})

        assert caller.outcome().product == {"id": 1}

    def test_a_command_with_its_timeout_disabled_is_bounded_by_timeout_ms(
        self, watched: WatchedClock
    ) -> None:
        """A command with no deadline of its own is waited for timeout_ms."""
        gate = Gate()
        command = scripted("NoTimeout", isolation=THREAD, execution_timeout_enabled=False)(
            run=gate.hold()
        )
        try:
            caller = Caller(
                lambda: degrade(
                    optional={"inventory": command},
                    defaults={"inventory": {"available": True}},
                    timeout_ms=300,
                )
            )
            assert gate.entered.wait(WAIT)
            watched.wait_for_waiter(caller.thread)
            watched.advance(0.3)
            page = caller.outcome()
        finally:
            gate.opened.set()

        assert page.inventory == {"available": True}
        assert str(page.errors["inventory"].error) == (
            "optional part 'inventory' had no answer within 300 ms"
        )

    def test_a_keyboard_interrupt_in_a_part_propagates(self) -> None:
        """An optional part's KeyboardInterrupt is never turned into a default."""
        interrupted: Future[Any] = Future()
        interrupted.set_exception(KeyboardInterrupt())

        with pytest.raises(KeyboardInterrupt):
            degrade(optional={"reviews": interrupted}, defaults={"reviews": []}, timeout_ms=10)

    def test_a_cancelled_future_is_a_failed_part(self) -> None:
        """An optional part whose future was cancelled is degraded, with CancelledError."""
        cancelled: Future[Any] = Future()
        cancelled.cancel()

        page = degrade(optional={"reviews": cancelled}, defaults={"reviews": []}, timeout_ms=10)

        assert isinstance(page.errors["reviews"].error, CancelledError)

    def test_the_repr_shows_values_and_degradations(self) -> None:
        """The repr shows each part's value, marking the degraded and fallen-back ones."""
        page = degrade(
            product=scripted("ReprProduct")(run=returns({"id": 1})),
            optional={
                "reviews": scripted("ReprReviews")(run=raises(ConnectionError("down"))),
                "tags": scripted("ReprTags", fallback=True)(run=raises(KeyError("t"))),
            },
            defaults={"reviews": [], "tags": ()},
        )

        assert repr(page) == (
            "DegradeResult(product={'id': 1}, reviews=[] <failed>, tags='fallback' <from fallback>)"
        )

    def test_an_unknown_attribute_is_an_attribute_error(self) -> None:
        """Reading a part that is not there raises AttributeError (and KeyError as an item)."""
        page = degrade(product=scripted("OnlyProduct")())

        with pytest.raises(AttributeError, match="no part named 'reviews'"):
            page.reviews  # noqa: B018
        with pytest.raises(AttributeError):
            page._values_missing  # noqa: B018
        with pytest.raises(KeyError):
            page["reviews"]
        assert isinstance(page, DegradeResult)


class TestDegradeChecks:
    def test_no_parts_is_a_value_error(self) -> None:
        """degrade() with no part at all is refused."""
        with pytest.raises(ValueError, match="at least one part"):
            degrade()

    @pytest.mark.parametrize(
        "part", [lambda: 1, 42, "GetReviews"], ids=["callable", "number", "string"]
    )
    def test_a_part_that_is_neither_a_command_nor_a_future_is_refused(self, part: Any) -> None:
        """A plain callable (or anything else) is a TypeError naming the part."""
        with pytest.raises(TypeError, match="part 'reviews' must be a Command instance or a"):
            degrade(optional={"reviews": part}, defaults={"reviews": []}, timeout_ms=10)

    def test_a_command_class_is_refused(self) -> None:
        """A command class is refused with the fix."""
        with pytest.raises(TypeError, match="is the command class CheckClass: pass an instance"):
            degrade(product=scripted("CheckClass"))  # type: ignore[arg-type]

    @pytest.mark.parametrize("name", ["not-a-name", "class", "9lives", ""])
    def test_a_name_that_is_not_an_identifier_is_refused(self, name: str) -> None:
        """A part name must be usable as an attribute."""
        with pytest.raises(ValueError, match="must be a Python identifier"):
            degrade(optional={name: scripted("BadName")()}, defaults={name: None})

    @pytest.mark.parametrize("name", ["errors", "degraded", "from_fallback", "as_dict", "_x"])
    def test_a_name_clashing_with_the_result_is_refused(self, name: str) -> None:
        """A part cannot take the name of one of the result's own attributes."""
        with pytest.raises(ValueError, match="clashes with the result's own attributes"):
            degrade(**{name: scripted("Clash")()})

    def test_a_part_both_critical_and_optional_is_refused(self) -> None:
        """The same name cannot be critical and optional."""
        with pytest.raises(ValueError, match="'reviews' is given as both critical and optional"):
            degrade(
                reviews=scripted("Both1")(),
                optional={"reviews": scripted("Both2")()},
                defaults={"reviews": []},
            )

    def test_an_optional_part_without_a_default_is_refused(self) -> None:
        """Every optional part needs a default, named in the error."""
        command = scripted("NoDefault")()
        with pytest.raises(ValueError, match="'reviews', 'tags' have no default"):
            degrade(
                optional={"reviews": command, "tags": scripted("NoDefault2")()},
                defaults={},
            )
        assert command.execution_events == []  # refused before anything started

    def test_a_default_for_no_optional_part_is_refused(self) -> None:
        """A default whose name is no optional part (a typo) is refused."""
        with pytest.raises(ValueError, match="defaults has 'review', which is not an optional"):
            degrade(
                optional={"reviews": scripted("Typo")()},
                defaults={"reviews": [], "review": []},
            )

    def test_a_default_for_a_critical_part_is_refused(self) -> None:
        """A critical part has no default: its failure raises."""
        with pytest.raises(ValueError, match="'product', a critical part"):
            degrade(product=scripted("CriticalDefault")(), defaults={"product": None})

    def test_the_same_command_twice_is_refused(self) -> None:
        """One command instance cannot be two parts: it runs once."""
        command = scripted("Twice")()
        with pytest.raises(ValueError, match="parts 'product' and 'reviews' are the same object"):
            degrade(product=command, optional={"reviews": command}, defaults={"reviews": []})

    def test_an_optional_future_needs_timeout_ms(self) -> None:
        """A Future has no deadline of its own, so an optional one needs timeout_ms."""
        with pytest.raises(ValueError, match=r"optional part 'reviews' is a Future.*timeout_ms"):
            degrade(optional={"reviews": Future()}, defaults={"reviews": []})

    @pytest.mark.parametrize(
        ("options", "error", "message"),
        [
            ({"timeout_ms": 0}, ValueError, "timeout_ms must be finite and > 0, got 0"),
            ({"timeout_ms": float("inf")}, ValueError, "timeout_ms must be finite"),
            ({"timeout_ms": "1s"}, TypeError, "timeout_ms must be a number, got '1s'"),
            ({"grace_ms": -1}, ValueError, "grace_ms must be finite and >= 0, got -1"),
            ({"grace_ms": True}, TypeError, "grace_ms must be a number, got True"),
            ({"optional": [1]}, TypeError, "optional must be a mapping of names, got"),
            ({"defaults": [1]}, TypeError, "defaults must be a mapping of names, got"),
        ],
    )
    def test_bad_options_are_refused(
        self, options: dict[str, Any], error: type[Exception], message: str
    ) -> None:
        """A wrong option names itself and its value."""
        with pytest.raises(error, match=re.escape(message)):
            degrade(product=scripted("Options")(), **options)


# -- the page ------------------------------------------------------------------------------

PAGE = Path(__file__).resolve().parent.parent / "docs" / "fallbacks.md"
_PYTHON_BLOCK = re.compile(r"^```python\n(?P<body>.*?)^```$", re.MULTILINE | re.DOTALL)


class TestFallbacksPage:
    def test_every_example_runs_and_its_tests_pass(self) -> None:
        """The page's python blocks run in order in one namespace; the tests they define pass."""
        text = PAGE.read_text()
        namespace: dict[str, Any] = {"__name__": "docs_fallbacks"}
        blocks = list(_PYTHON_BLOCK.finditer(text))
        assert len(blocks) >= 6
        for match in blocks:
            if "except*" in match.group("body") and sys.version_info < (3, 11):
                continue  # except* is Python 3.11+ syntax
            first_line = text.count("\n", 0, match.start("body"))
            code = compile("\n" * first_line + match.group("body"), str(PAGE), "exec")
            exec(code, namespace)
        tests = [value for name, value in namespace.items() if name.startswith("test_")]
        assert tests
        for test in tests:
            test()
