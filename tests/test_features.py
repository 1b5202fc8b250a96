"""Feature switches: a source that may fail or stall, safe defaults, a cache, local overrides."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from hystrixpy import deadline
from hystrixpy.features import FeatureSource, FeatureSwitches
from hystrixpy.testing import FakeClock, use_clock
from tests.gates import Caller
from tests.test_fallback import WAIT, WatchedClock, events

SAFE = {"recommendations": False, "checkout": True}


@pytest.fixture
def watched() -> Iterator[WatchedClock]:
    """A WatchedClock (which says when a thread waits on it) installed as hystrixpy's clock."""
    fake = WatchedClock()
    with use_clock(fake):
        yield fake


class Source:
    """A callable source: answers from ``flags``, or raises ``error``; counts its calls."""

    def __init__(self, **flags: bool | None) -> None:
        self.flags: dict[str, Any] = dict(flags)
        self.error: BaseException | None = None
        self.calls: list[str] = []
        self.hold: threading.Event | None = None
        self.entered = threading.Event()
        self.remaining: list[float | None] = []

    def __call__(self, name: str) -> bool | None:
        self.calls.append(name)
        self.remaining.append(deadline.remaining())
        self.entered.set()
        if self.hold is not None:
            assert self.hold.wait(WAIT), "the test never let the source answer"
        if self.error is not None:
            raise self.error
        return self.flags.get(name)


class FailingMapping(Mapping[str, bool]):
    """A mapping that raises ``error`` on every read while it is set."""

    def __init__(self, **flags: bool) -> None:
        self.flags = flags
        self.error: Exception | None = None

    def __getitem__(self, name: str) -> bool:
        if self.error is not None:
            raise self.error
        return self.flags[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.flags)

    def __len__(self) -> int:
        return len(self.flags)


@pytest.fixture
def switches_made() -> Iterator[list[FeatureSwitches]]:
    """Switches the test makes, closed afterwards."""
    made: list[FeatureSwitches] = []
    yield made
    for switches in made:
        switches.close()


@pytest.fixture
def make(switches_made: list[FeatureSwitches]) -> Any:
    """Make FeatureSwitches (with SAFE as safe defaults unless told), closed after the test."""

    def factory(source: Any, **options: Any) -> FeatureSwitches:
        options.setdefault("safe_defaults", SAFE)
        switches = FeatureSwitches(source, **options)
        switches_made.append(switches)
        return switches

    return factory


class TestMappingSource:
    def test_answers_from_the_mapping_and_the_safe_defaults(self, make: Any) -> None:
        """A mapping answers what it holds; else the safe default; else the feature is off."""
        switches = make({"recommendations": True, "search": False})

        assert switches.is_enabled("recommendations") is True
        assert switches.is_enabled("search") is False
        assert switches.is_enabled("checkout") is True  # not in the mapping: its safe default
        assert switches.is_enabled("unheard_of") is False

    def test_is_read_directly_each_time_with_no_thread(self, make: Any) -> None:
        """A change to the mapping is seen at once, and no worker thread is ever started."""
        flags = {"recommendations": True}
        switches = make(flags)
        assert switches.is_enabled("recommendations")

        flags["recommendations"] = False
        flags["reviews"] = True

        assert not switches.is_enabled("recommendations")
        assert switches.is_enabled("reviews")
        assert switches._pool is None

    def test_a_mapping_that_fails_answers_safe_defaults_and_logs_the_outage_once(
        self, make: Any, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Errors other than KeyError are an outage: safe defaults, one warning, one recovery."""
        caplog.set_level(logging.INFO, logger="hystrixpy")
        flags = FailingMapping(recommendations=True, checkout=False)
        switches = make(flags)
        flags.error = ConnectionError("store unreachable")

        answers = [switches.is_enabled(name) for name in ["recommendations", "checkout"] * 3]
        flags.error = None
        recovered = switches.is_enabled("recommendations")

        assert answers == [False, True] * 3
        assert recovered is True
        [failed] = events(caplog, "feature_source_failed")
        assert failed == {
            "feature": "recommendations",
            "error": "ConnectionError('store unreachable')",
        }
        [back] = events(caplog, "feature_source_recovered")
        assert back["failures"] == 6
        assert back["feature"] == "recommendations"
        levels = {r.hystrixpy_event: r.levelno for r in caplog.records}
        assert levels == {
            "feature_source_failed": logging.WARNING,
            "feature_source_recovered": logging.INFO,
        }

    def test_a_value_that_is_not_a_bool_is_a_source_failure(
        self, make: Any, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A value such as "yes" gets the safe default and is reported as a failure."""
        caplog.set_level(logging.INFO, logger="hystrixpy")
        switches = make({"checkout": "yes"})

        assert switches.is_enabled("checkout") is True  # its safe default
        [failed] = events(caplog, "feature_source_failed")
        assert "expected True, False or None" in failed["error"]

    def test_a_missing_name_during_an_outage_ends_it(
        self, make: Any, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A read that works, even of a name the mapping lacks, ends the outage."""
        caplog.set_level(logging.INFO, logger="hystrixpy")
        flags = FailingMapping()
        switches = make(flags)
        flags.error = ConnectionError("down")
        switches.is_enabled("checkout")
        flags.error = None

        assert switches.is_enabled("checkout") is True
        assert len(events(caplog, "feature_source_recovered")) == 1


class TestCallableSource:
    def test_answers_from_the_source_and_the_safe_defaults(self, make: Any) -> None:
        """True and False are the source's; None means the safe default, else off."""
        source = Source(recommendations=True, search=False, checkout=None)
        switches = make(source)

        assert switches.is_enabled("recommendations") is True
        assert switches.is_enabled("search") is False
        assert switches.is_enabled("checkout") is True
        assert switches.is_enabled("unheard_of") is False

    def test_answers_are_cached_for_refresh_seconds(self, make: Any, fake_clock: FakeClock) -> None:
        """The source is asked once per feature per refresh period, and a change shows after it."""
        source = Source(recommendations=True)
        switches = make(source, refresh_seconds=10)

        assert all(switches.is_enabled("recommendations") for _ in range(100))
        source.flags["recommendations"] = False
        fake_clock.advance(9.9)
        assert switches.is_enabled("recommendations") is True
        fake_clock.advance(0.1)

        assert switches.is_enabled("recommendations") is False
        assert source.calls == ["recommendations", "recommendations"]

    def test_refresh_seconds_zero_asks_every_time(self, make: Any) -> None:
        """With refresh_seconds=0 nothing is cached."""
        source = Source(reviews=True)
        switches = make(source, refresh_seconds=0)

        for _ in range(3):
            switches.is_enabled("reviews")

        assert source.calls == ["reviews"] * 3

    def test_the_source_runs_on_a_worker_with_a_deadline(self, make: Any) -> None:
        """The source is called on the switches' own thread, within source_timeout_ms."""
        threads: list[str] = []
        remaining: list[float | None] = []

        def source(name: str) -> bool:
            threads.append(threading.current_thread().name)
            remaining.append(deadline.remaining())
            return True

        switches = make(source, source_timeout_ms=80)
        assert switches.is_enabled("reviews")

        assert threads[0].startswith("hystrix-features-")
        assert remaining[0] is not None
        assert 0 < remaining[0] <= 0.08

    def test_a_raising_source_answers_safe_defaults_and_logs_once_per_outage(
        self, make: Any, fake_clock: FakeClock, caplog: pytest.LogCaptureFixture
    ) -> None:
        """One warning when failures start, none while they go on, one INFO when they end."""
        caplog.set_level(logging.INFO, logger="hystrixpy")
        source = Source(recommendations=True, checkout=False)
        source.error = ConnectionError("redis down")
        switches = make(source, refresh_seconds=1)

        answers = []
        for _ in range(3):
            answers += [switches.is_enabled("recommendations"), switches.is_enabled("checkout")]
            fake_clock.advance(1)
        source.error = None
        answers += [switches.is_enabled("recommendations"), switches.is_enabled("checkout")]
        source.error = ConnectionError("redis down again")
        fake_clock.advance(1)
        switches.is_enabled("checkout")

        assert answers == [False, True] * 3 + [True, False]
        assert len(source.calls) == 9  # once per feature per refresh period
        assert [f["error"] for f in events(caplog, "feature_source_failed")] == [
            "ConnectionError('redis down')",
            "ConnectionError('redis down again')",
        ]
        [back] = events(caplog, "feature_source_recovered")
        assert back == {"feature": "recommendations", "failures": 6, "outage_seconds": 3.0}

    def test_a_slow_source_answers_the_safe_default_and_is_not_called_again_meanwhile(
        self, make: Any, watched: WatchedClock, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Past source_timeout_ms the default answers; the call still running is not repeated."""
        caplog.set_level(logging.DEBUG, logger="hystrixpy")
        source = Source(checkout=False)
        source.hold = threading.Event()
        switches = make(source, source_timeout_ms=50, refresh_seconds=1)
        try:
            caller = Caller(lambda: switches.is_enabled("checkout"))
            assert source.entered.wait(WAIT)
            watched.wait_for_waiter(caller.thread)
            watched.advance(0.05)
            assert caller.outcome() is True  # the safe default, not the source's False
            watched.advance(1)  # the cached default runs out while the call still hangs
            assert switches.is_enabled("checkout") is True
            assert source.calls == ["checkout"]
        finally:
            source.hold.set()
        source.hold = None
        _wait_until(lambda: not switches._in_flight)
        assert switches.is_enabled("checkout") is True  # the late answer was dropped
        watched.advance(1)

        assert switches.is_enabled("checkout") is False  # asked again, and it answers
        assert source.calls == ["checkout", "checkout"]
        [failed] = events(caplog, "feature_source_failed")
        assert failed["error"].startswith('TimeoutError("the feature source gave no answer')
        assert events(caplog, "feature_source_late_answer_dropped")[0]["answer"] == "False"
        assert len(events(caplog, "feature_source_recovered")) == 1

    def test_callers_of_the_same_feature_share_one_source_call(
        self, make: Any, watched: WatchedClock
    ) -> None:
        """A second caller joins the call in flight instead of starting another."""
        source = Source(reviews=True)
        source.hold = threading.Event()
        switches = make(source, source_timeout_ms=50)
        try:
            first = Caller(lambda: switches.is_enabled("reviews"))
            assert source.entered.wait(WAIT)
            second = Caller(lambda: switches.is_enabled("reviews"))
            watched.wait_for_waiter(second.thread)
        finally:
            source.hold.set()

        assert (first.outcome(), second.outcome()) == (True, True)
        assert source.calls == ["reviews"]

    def test_a_caller_finding_every_worker_busy_gets_the_default_at_once(
        self, make: Any, watched: WatchedClock
    ) -> None:
        """With its one worker stuck, the switches answer another feature without asking."""
        source = Source(reviews=True, checkout=False)
        source.hold = threading.Event()
        switches = make(source, source_workers=1)
        try:
            stuck = Caller(lambda: switches.is_enabled("reviews"))
            assert source.entered.wait(WAIT)
            assert switches.is_enabled("checkout") is True  # its safe default, at once
            assert source.calls == ["reviews"]
        finally:
            source.hold.set()
        assert stuck.outcome() is True

    def test_an_answer_that_is_not_a_bool_is_a_source_failure(
        self, make: Any, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A source answering "on" gets the safe default and a warning."""
        caplog.set_level(logging.INFO, logger="hystrixpy")
        switches = make(Source(checkout="on"))  # type: ignore[arg-type]

        assert switches.is_enabled("checkout") is True
        [failed] = events(caplog, "feature_source_failed")
        assert "'on'" in failed["error"]

    def test_a_base_exception_from_the_source_is_a_failure_too(self, make: Any) -> None:
        """Even a SystemExit raised by the source (on a worker) answers the safe default."""
        source = Source()
        source.error = SystemExit(1)

        assert make(source).is_enabled("checkout") is True

    def test_close_stops_the_workers_and_a_later_lookup_starts_new_ones(self, make: Any) -> None:
        """After close() the switches still work."""
        source = Source(reviews=True)
        switches = make(source, refresh_seconds=0)
        switches.is_enabled("reviews")
        pool = switches._pool

        switches.close()
        switches.close()  # closing twice is harmless

        assert switches._pool is None
        assert switches.is_enabled("reviews") is True
        assert switches._pool is not pool

    def test_a_call_cancelled_by_a_shutdown_answers_the_default(self, make: Any) -> None:
        """A source call the pool drops unstarted settles as a failure with the safe default."""
        source = Source(checkout=False)
        switches = make(source)
        switches.is_enabled("warmup")  # makes the pool
        from hystrixpy._features_source import SourceCall

        call = SourceCall(switches, "checkout", deadline=0.0)
        switches._in_flight["checkout"] = call
        call.cancel()

        assert call.settled and call.value is True
        assert "checkout" not in switches._in_flight
        stray = SourceCall(switches, "reviews", deadline=0.0)  # never registered as in flight
        stray.cancel()
        assert stray.settled and stray.value is False

    def test_a_caller_finding_the_answer_refreshed_meanwhile_uses_it(self, make: Any) -> None:
        """Between its look at the cache and taking the lock, another caller refreshed it."""
        source = Source(reviews=True)
        switches = make(source)

        class RefreshedMeanwhile(dict[str, tuple[bool, float]]):
            """The first read misses; by the second, another caller has cached an answer."""

            misses = 1

            def get(self, name: str, default: Any = None) -> Any:
                if self.misses:
                    self.misses -= 1
                    self[name] = (False, float("inf"))
                    return None
                return super().get(name, default)

        switches._cache = RefreshedMeanwhile()

        assert switches.is_enabled("reviews") is False
        assert source.calls == []


def _wait_until(condition: Any) -> None:
    """Wait (at most 5 s, in real time) for a worker to finish what it is doing."""
    done = threading.Event()
    for _ in range(5000):
        if condition():
            return
        done.wait(0.001)
    raise AssertionError("the condition never held")


class TestOverrides:
    def test_disable_turns_a_feature_off_until_its_time_passes(
        self, make: Any, fake_clock: FakeClock, caplog: pytest.LogCaptureFixture
    ) -> None:
        """disable(name, for_seconds) wins over the source until that much clock time passes."""
        caplog.set_level(logging.INFO, logger="hystrixpy")
        switches = make({"recommendations": True})

        switches.disable("recommendations", for_seconds=300)
        assert switches.is_enabled("recommendations") is False
        assert switches.is_enabled("checkout") is True  # other features are untouched
        assert switches.overrides() == {"recommendations": 300.0}
        fake_clock.advance(299.9)
        assert switches.is_enabled("recommendations") is False
        fake_clock.advance(0.1)

        assert switches.is_enabled("recommendations") is True
        assert switches.overrides() == {}
        assert events(caplog, "feature_disabled") == [
            {"feature": "recommendations", "for_seconds": 300}
        ]

    def test_disable_defaults_to_five_minutes_and_again_replaces_the_time(
        self, make: Any, fake_clock: FakeClock
    ) -> None:
        """The default is 300 s; disabling again starts the time afresh."""
        switches = make(Source(reviews=True))
        switches.disable("reviews")
        fake_clock.advance(200)
        switches.disable("reviews", for_seconds=10)

        assert switches.overrides() == {"reviews": 10.0}
        fake_clock.advance(10)
        assert switches.is_enabled("reviews") is True

    def test_enable_again_ends_an_override_now(
        self, make: Any, caplog: pytest.LogCaptureFixture
    ) -> None:
        """enable_again() ends the override and says whether there was one."""
        caplog.set_level(logging.INFO, logger="hystrixpy")
        switches = make({"reviews": True})
        switches.disable("reviews")

        assert switches.enable_again("reviews") is True
        assert switches.enable_again("reviews") is False
        assert switches.is_enabled("reviews") is True
        assert len(events(caplog, "feature_enabled_again")) == 1

    def test_clear_overrides_ends_them_all(self, make: Any) -> None:
        """clear_overrides() ends every override."""
        switches = make({"reviews": True, "search": True})
        switches.disable("reviews")
        switches.disable("search")

        switches.clear_overrides()

        assert switches.is_enabled("reviews") and switches.is_enabled("search")

    def test_an_override_renewed_as_it_runs_out_is_kept(
        self, make: Any, fake_clock: FakeClock
    ) -> None:
        """An expired override is forgotten only if nobody disabled the feature again meanwhile."""
        switches = make({"search": True})
        renewed = fake_clock.monotonic() + 5

        class RenewedOnFirstRead(dict[str, float]):
            """Another thread disables the feature again just after the expired time is read."""

            def get(self, name: str, default: Any = None) -> Any:
                value = super().get(name, default)
                if name == "search" and value != renewed:
                    self[name] = renewed
                return value

        switches._overrides = RenewedOnFirstRead(search=fake_clock.monotonic() - 1)
        switches.is_enabled("search")

        assert switches._overrides["search"] == renewed
        assert switches.is_enabled("search") is False

    @pytest.mark.parametrize(
        ("name", "for_seconds", "error", "message"),
        [
            ("", 10, TypeError, "name must be a non-empty str, got ''"),
            (3, 10, TypeError, "name must be a non-empty str, got 3"),
            ("x", 0, ValueError, "for_seconds must be finite and > 0, got 0"),
            ("x", -5, ValueError, "for_seconds must be finite and > 0, got -5"),
            ("x", float("nan"), ValueError, "for_seconds must be finite"),
            ("x", "5m", TypeError, "for_seconds must be a number, got '5m'"),
        ],
    )
    def test_bad_arguments_are_refused(
        self, make: Any, name: Any, for_seconds: Any, error: type[Exception], message: str
    ) -> None:
        """A wrong name or duration names itself and its value."""
        with pytest.raises(error, match=re.escape(message)):
            make({}).disable(name, for_seconds=for_seconds)


class TestOptions:
    @pytest.mark.parametrize(
        ("options", "error", "message"),
        [
            (
                {"refresh_seconds": -1},
                ValueError,
                "refresh_seconds must be finite and >= 0, got -1",
            ),
            ({"refresh_seconds": None}, TypeError, "refresh_seconds must be a number, got None"),
            ({"source_timeout_ms": 0}, ValueError, "source_timeout_ms must be finite and > 0"),
            ({"source_workers": 0}, ValueError, "source_workers must be >= 1, got 0"),
            ({"source_workers": True}, TypeError, "source_workers must be an int, got True"),
            ({"safe_defaults": ["checkout"]}, TypeError, "safe_defaults must be a mapping"),
            ({"safe_defaults": {1: True}}, TypeError, "safe_defaults keys must be str, got 1"),
            (
                {"safe_defaults": {"checkout": "yes"}},
                TypeError,
                "safe_defaults['checkout'] must be True or False, got 'yes'",
            ),
        ],
    )
    def test_bad_options_are_refused(
        self, options: dict[str, Any], error: type[Exception], message: str
    ) -> None:
        """Each wrong option is refused when the switches are made, naming it and its value."""
        with pytest.raises(error, match=re.escape(message)):
            FeatureSwitches({}, **options)

    def test_a_source_must_be_callable_or_a_mapping(self) -> None:
        """A source of any other kind is a TypeError."""
        with pytest.raises(TypeError, match="source must be a callable"):
            FeatureSwitches(42)  # type: ignore[arg-type]

    def test_no_safe_defaults_means_unknown_is_off(self) -> None:
        """Without safe_defaults, a feature the source does not know is off."""
        switches = FeatureSwitches({})
        assert switches.is_enabled("checkout") is False
        assert switches.safe_default("checkout") is False

    def test_a_callable_object_is_a_feature_source(self, make: Any) -> None:
        """Any object with __call__(name) follows the FeatureSource protocol."""
        source: FeatureSource = Source(checkout=True)
        assert make(source).is_enabled("checkout")

    def test_repr_shows_the_state(self, make: Any) -> None:
        """The repr shows the source, the cache, the overrides and the health."""
        switches = make({"a": True})
        switches.disable("a")
        assert repr(switches) == (
            "<FeatureSwitches source={'a': True} cached=0 disabled=1 healthy>"
        )
        failing = FailingMapping()
        failing.error = OSError("x")
        broken = make(failing)
        broken.is_enabled("a")
        assert repr(broken).endswith("in outage>")


class TestThreadSafety:
    def test_many_threads_read_while_overrides_change(self, make: Any) -> None:
        """Concurrent reads, disables and enables never raise and always answer a bool."""
        switches = make(Source(a=True, b=False), refresh_seconds=0.0001)
        start = threading.Barrier(5)
        answers: list[bool] = []
        errors: list[BaseException] = []

        def reader() -> None:
            try:
                start.wait(WAIT)
                answers.extend(switches.is_enabled("a" if i % 2 else "b") for i in range(300))
            except BaseException as error:  # reported below
                errors.append(error)

        def toggler() -> None:
            start.wait(WAIT)
            for _ in range(300):
                switches.disable("a", for_seconds=1)
                switches.enable_again("a")

        threads = [threading.Thread(target=reader) for _ in range(4)]
        threads.append(threading.Thread(target=toggler))
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(WAIT * 4)

        assert errors == []
        assert len(answers) == 1200
        assert set(answers) <= {True, False}


# -- the page ------------------------------------------------------------------------------

PAGE = Path(__file__).resolve().parent.parent / "docs" / "feature-switches.md"
_PYTHON_BLOCK = re.compile(r"^```python\n(?P<body>.*?)^```$", re.MULTILINE | re.DOTALL)


class TestFeatureSwitchesPage:
    def test_every_example_runs_and_its_tests_pass(self) -> None:
        """The page's python blocks run in order in one namespace; the tests they define pass."""
        text = PAGE.read_text()
        namespace: dict[str, Any] = {"__name__": "docs_feature_switches"}
        blocks = list(_PYTHON_BLOCK.finditer(text))
        assert len(blocks) >= 4
        for match in blocks:
            first_line = text.count("\n", 0, match.start("body"))
            exec(compile("\n" * first_line + match.group("body"), str(PAGE), "exec"), namespace)
        tests = [value for name, value in namespace.items() if name.startswith("test_")]
        assert tests
        for test in tests:
            test()
        for value in list(namespace.values()):
            if isinstance(value, FeatureSwitches):
                value.close()
