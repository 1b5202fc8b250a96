"""``hystrixpy demo``: a simulated service under load, with a live table of its commands.

Four commands call a simulated downstream (no network needed):

* ``GetProduct`` (group Catalog, THREAD): fast and healthy.
* ``SearchProducts`` (group Search, THREAD, a small pool with a short queue):
  slow, so it times out, fills its pool and gets rejected. Its breaker is
  forced closed: left to itself it would trip within the first second and
  short-circuit for the rest of the run, hiding the timeouts and rejections
  this command is there to show.
* ``ChargeCard`` (group Payments, SEMAPHORE): fails in bursts, so its circuit
  opens, short-circuits, lets a trial through and closes again. Its outage
  spans the same share of any run, but its sleep window is a fixed 1.5 s, so
  a run needs about three seconds or more for the whole cycle to fit.
* ``CheckStock`` (group Inventory, SEMAPHORE): a flaky call, one try in three
  dropped, whose retry policy tries again after a few milliseconds, so almost
  every call succeeds; the ``retries`` column counts the extra attempts.

Concurrent callers drive them for ``--duration`` seconds while a table of
each command's breaker state and rolling counts refreshes every second. At
the end a summary gives each command's counts over the whole run and what
its circuit went through.

With ``--chaos``, faults are injected into the healthy ``GetProduct`` during
the middle part of the run (:mod:`hystrixpy.chaos`): exceptions, and latency
past its timeout, so its fallbacks answer and its circuit may open, then recover.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import random
import sys
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

import hystrixpy
from hystrixpy import (
    Command,
    CommandProperties,
    EventType,
    HystrixRuntimeError,
    IsolationStrategy,
    RetryPolicy,
    ThreadPoolProperties,
    clock,
)
from hystrixpy import chaos as _chaos
from hystrixpy.stream import start_http_server

__all__ = ["main", "run_demo"]


@dataclass
class Downstream:
    """The simulated dependency: its latency and failures follow the demo's timeline."""

    started: float
    duration: float
    rng: random.Random = field(default_factory=random.Random)

    def elapsed_fraction(self) -> float:
        """How far through the demo we are, from 0.0 to 1.0."""
        return (clock.monotonic() - self.started) / self.duration

    def payments_down(self) -> bool:
        """Payments fail for a stretch in the first half of the run."""
        return 0.15 <= self.elapsed_fraction() < 0.45


_downstream: Downstream | None = None


def _dependency() -> Downstream:
    assert _downstream is not None, "the demo's downstream is not running"
    return _downstream


class GetProduct(Command[dict[str, object]]):
    """A healthy lookup: a few milliseconds each."""

    group_key = "Catalog"
    properties = CommandProperties(execution_timeout_ms=250)
    thread_pool_properties = ThreadPoolProperties(core_size=8)

    def run(self) -> dict[str, object]:
        """Fetch a product."""
        clock.sleep(_dependency().rng.uniform(0.002, 0.015))
        return {"id": 1, "name": "teapot"}

    def get_fallback(self) -> dict[str, object]:
        """A cached product."""
        return {"id": 1, "name": "teapot", "stale": True}


class SearchProducts(Command[list[str]]):
    """A slow search: often slower than its timeout, with a pool too small for the load.

    Most of its calls time out or are rejected, so its error percentage stays
    high; the breaker is forced closed so that every call still reaches the
    pool, and the run shows timeouts and rejections rather than short-circuits.
    """

    group_key = "Search"
    properties = CommandProperties(execution_timeout_ms=100, circuit_breaker_force_closed=True)
    thread_pool_properties = ThreadPoolProperties(
        core_size=3, max_queue_size=5, queue_size_rejection_threshold=2
    )

    def run(self) -> list[str]:
        """Search the catalogue."""
        clock.sleep(_dependency().rng.uniform(0.01, 0.16))
        return ["teapot", "kettle"]

    def get_fallback(self) -> list[str]:
        """No results rather than an error page."""
        return []


class ChargeCard(Command[str]):
    """A payment call whose provider goes down for a while and comes back."""

    group_key = "Payments"
    properties = CommandProperties(
        execution_isolation_strategy=IsolationStrategy.SEMAPHORE,
        execution_isolation_semaphore_max_concurrent_requests=20,
        circuit_breaker_request_volume_threshold=10,
        circuit_breaker_sleep_window_ms=1500,
        metrics_rolling_stats_time_ms=5000,
        metrics_rolling_stats_num_buckets=10,
    )

    def run(self) -> str:
        """Charge a card."""
        downstream = _dependency()
        clock.sleep(downstream.rng.uniform(0.001, 0.005))
        if downstream.payments_down():
            raise ConnectionError("payment provider unavailable")
        return "charged"

    def get_fallback(self) -> str:
        """Accept the order and charge later."""
        return "queued for later"


class CheckStock(Command[int]):
    """A flaky stock lookup: a third of its attempts are dropped, and retried."""

    group_key = "Inventory"
    properties = CommandProperties(
        execution_isolation_strategy=IsolationStrategy.SEMAPHORE,
        execution_isolation_semaphore_max_concurrent_requests=20,
        execution_timeout_ms=200,
    )
    retry = RetryPolicy(max_attempts=4, initial_delay_ms=2, max_delay_ms=20)

    def run(self) -> int:
        """Count the stock; the connection drops now and then."""
        downstream = _dependency()
        clock.sleep(downstream.rng.uniform(0.001, 0.004))
        if downstream.rng.random() < 1 / 3:
            raise ConnectionError("inventory service dropped the connection")
        return 7

    def get_fallback(self) -> int:
        """Unknown stock: let the order through."""
        return -1


_COMMANDS: list[type[Command[Any]]] = [GetProduct, SearchProducts, ChargeCard, CheckStock]
_WEIGHTS = [5, 3, 3, 3]
# --chaos: the faults injected into GetProduct, and the part of the run they last.
_CHAOS_SETTINGS = {
    "chaos.command.GetProduct.exception_rate": 0.3,
    "chaos.command.GetProduct.latency_ms": 300,
    "chaos.command.GetProduct.latency_rate": 0.4,
}
_CHAOS_WINDOW = (0.3, 0.6)
_CHAOS_WORDS = "GetProduct gets 30% exceptions and 300 ms latency on 40% of attempts"
_COLUMNS = (
    ("command", 16),
    ("group", 10),
    ("circuit", 9),
    ("req/s", 7),
    ("error %", 8),
    ("success", 8),
    ("timeout", 8),
    ("rejected", 9),
    ("short-circ", 11),
    ("fallback", 9),
    ("retries", 8),
    ("p50 ms", 7),
    ("p99 ms", 7),
)


class _EventFeed(logging.Handler):
    """Collects hystrixpy's circuit transitions for the demo's 'recent events' lines."""

    def __init__(self, started: float) -> None:
        super().__init__(logging.INFO)
        self.started = started
        self.lines: list[str] = []
        #: Per command key, how often its circuit entered each state.
        self.entered: dict[str, Counter[str]] = {}
        self._lock_lines = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        event = getattr(record, "hystrixpy_event", "")
        fields = getattr(record, "hystrixpy", {})
        if not event.startswith("circuit_"):
            return
        state = event.removeprefix("circuit_").upper()
        key = fields.get("command_key", "?")
        with self._lock_lines:
            self.entered.setdefault(key, Counter())[state] += 1
            self.lines.append(f"{clock.monotonic() - self.started:5.1f}s  {key}: circuit {state}")
            del self.lines[:-5]

    def recent(self) -> list[str]:
        """The last few transitions."""
        with self._lock_lines:
            return list(self.lines)

    def history(self, key: str) -> str:
        """What ``key``'s circuit went through, in words (empty if it never left CLOSED)."""
        with self._lock_lines:
            entered = Counter(self.entered.get(key, {}))
        if not entered:
            return ""
        return (
            f"opened {entered['OPEN']}x, half-open {entered['HALF_OPEN']}x, "
            f"closed again {entered['CLOSED']}x"
        )


def _caller(stop: threading.Event, rng: random.Random) -> None:
    while not stop.is_set():
        command_class = rng.choices(_COMMANDS, _WEIGHTS)[0]
        with contextlib.suppress(HystrixRuntimeError):  # counted in the metrics and shown
            command_class().execute()
        clock.sleep(rng.uniform(0.005, 0.02))


def _chaos_phase(fraction: float, seed: int | None) -> str:
    """Turn chaos on inside the chaos window, off outside it; say which it is now."""
    start, end = _CHAOS_WINDOW
    if start <= fraction < end:
        if not _chaos.enabled():
            _chaos.enable(seed=seed)
        return f"chaos: ON, {_CHAOS_WORDS}\n"
    _chaos.disable()
    return "chaos: off\n"


def _row(command_class: type[Command[Any]], previous: dict[str, int]) -> list[str]:
    key = command_class.command_key
    try:
        metrics = hystrixpy.command_metrics(key)
        breaker = hystrixpy.circuit_breaker(key)
    except KeyError:
        return [key, command_class.group_key, "-", *(["0"] * (len(_COLUMNS) - 3))]
    answered = sum(
        metrics.cumulative_count(event)
        for event in EventType
        if event.is_terminal or event is EventType.SHORT_CIRCUITED
    )
    rate = answered - previous.get(key, answered)
    previous[key] = answered
    rolling = metrics.rolling_count
    return [
        key,
        command_class.group_key,
        breaker.state.name,
        str(rate),
        str(metrics.health_counts().error_percentage),
        str(rolling(EventType.SUCCESS)),
        str(rolling(EventType.TIMEOUT)),
        str(rolling(EventType.THREAD_POOL_REJECTED) + rolling(EventType.SEMAPHORE_REJECTED)),
        str(rolling(EventType.SHORT_CIRCUITED)),
        str(rolling(EventType.FALLBACK_SUCCESS)),
        str(rolling(EventType.RETRY)),
        *(str(value) for value in metrics.total_time_percentiles([50, 99])),
    ]


def _table(rows: list[list[str]]) -> str:
    header = "".join(name.ljust(width) for name, width in _COLUMNS)
    lines = [header, "-" * len(header)]
    lines.extend(
        "".join(cell.ljust(width) for cell, (_, width) in zip(row, _COLUMNS, strict=True))
        for row in rows
    )
    return "\n".join(lines)


def run_demo(
    duration: float,
    callers: int,
    out: TextIO,
    *,
    clear: bool,
    seed: int | None,
    stream_port: int | None = 0,
    chaos: bool = False,
) -> int:
    """Drive the demo for ``duration`` seconds, writing a table to ``out`` every second.

    Unless ``stream_port`` is ``None``, the metrics stream is served on that
    loopback port (0: any free port) while the demo runs. With ``chaos``, faults
    are injected into ``GetProduct`` during the middle part of the run.
    """
    global _downstream
    hystrixpy.reset()
    server = None if stream_port is None else start_http_server(stream_port)
    stream_line = "" if server is None else f"metrics stream: {server.url}\n"
    if chaos:
        hystrixpy.configure(_CHAOS_SETTINGS)  # stored; injected only while enabled
        out.write(f"chaos mode: for the middle part of the run, {_CHAOS_WORDS}\n")
    started = clock.monotonic()
    _downstream = Downstream(started=started, duration=duration, rng=random.Random(seed))
    feed = _EventFeed(started)
    logger = logging.getLogger("hystrixpy")
    logger.addHandler(feed)
    previous_level = logger.level
    logger.setLevel(logging.INFO)
    propagate = logger.propagate
    logger.propagate = False
    stop = threading.Event()
    threads = [
        threading.Thread(
            target=_caller, args=(stop, random.Random(i if seed is None else seed + i)), daemon=True
        )
        for i in range(callers)
    ]
    previous: dict[str, int] = {}
    try:
        for thread in threads:
            thread.start()
        ticks = max(round(duration), 1)
        for tick in range(1, ticks + 1):
            clock.sleep(max(started + tick * duration / ticks - clock.monotonic(), 0.0))
            rows = [_row(command_class, previous) for command_class in _COMMANDS]
            if clear:
                out.write("\033[H\033[2J")
            out.write(f"hystrixpy demo: {tick * duration / ticks:4.1f}s of {duration:.0f}s\n")
            if chaos:
                out.write(_chaos_phase(tick / ticks, seed))
            out.write(stream_line + "\n")
            out.write(_table(rows) + "\n\nrecent circuit events:\n")
            out.write("".join(f"  {line}\n" for line in feed.recent()) or "  (none yet)\n")
            out.write("\n")
            out.flush()
    finally:
        stop.set()
        _chaos.disable()
        for thread in threads:
            thread.join(timeout=5)
        logger.removeHandler(feed)
        logger.setLevel(previous_level)
        logger.propagate = propagate
        if server is not None:
            server.close()
    out.write(_summary(feed))
    out.flush()
    hystrixpy.reset()
    _downstream = None
    return 0


_SUMMARY_COLUMNS = (
    ("command", 16),
    ("success", 9),
    ("failure", 9),
    ("timeout", 9),
    ("rejected", 10),
    ("short-circ", 12),
    ("fallback", 10),
    ("retries", 9),
    ("circuit", 0),
)


def _summary_row(command_class: type[Command[Any]], feed: _EventFeed) -> list[str]:
    key = command_class.command_key
    state = hystrixpy.circuit_breaker(key).state.name
    count = hystrixpy.command_metrics(key).cumulative_count
    history = feed.history(key)
    if history:
        circuit = f"{history}; ends {state}"
    elif command_class.properties.circuit_breaker_force_closed:
        circuit = f"stayed {state} (forced closed)"
    else:
        circuit = f"stayed {state}"
    return [
        key,
        str(count(EventType.SUCCESS)),
        str(count(EventType.FAILURE)),
        str(count(EventType.TIMEOUT)),
        str(count(EventType.THREAD_POOL_REJECTED) + count(EventType.SEMAPHORE_REJECTED)),
        str(count(EventType.SHORT_CIRCUITED)),
        str(count(EventType.FALLBACK_SUCCESS)),
        str(count(EventType.RETRY)),
        circuit,
    ]


def _summary(feed: _EventFeed) -> str:
    rows = [
        [name for name, _ in _SUMMARY_COLUMNS],
        *(_summary_row(command_class, feed) for command_class in _COMMANDS),
    ]
    lines = ["summary of the whole run:"]
    lines.extend(
        "  "
        + "".join(cell.ljust(width) for cell, (_, width) in zip(row, _SUMMARY_COLUMNS, strict=True))
        for row in rows
    )
    return "\n".join(line.rstrip() for line in lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the demo's command line and run it."""
    parser = argparse.ArgumentParser(prog="hystrixpy demo", description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=20.0, help="seconds to run (20)")
    parser.add_argument("--callers", type=int, default=8, help="concurrent caller threads (8)")
    parser.add_argument("--seed", type=int, default=None, help="seed for repeatable runs")
    parser.add_argument(
        "--no-clear", action="store_true", help="print tables one after another (no screen clear)"
    )
    parser.add_argument(
        "--stream-port",
        type=int,
        default=0,
        help="loopback port for the Hystrix metrics stream (0: any free port; -1: none)",
    )
    parser.add_argument(
        "--chaos",
        action="store_true",
        help="inject faults into the healthy GetProduct during the middle of the run",
    )
    args = parser.parse_args(argv)
    if args.duration <= 0:
        parser.error(f"--duration must be positive, got {args.duration}")
    if args.callers < 1:
        parser.error(f"--callers must be at least 1, got {args.callers}")
    if not -1 <= args.stream_port <= 65535:
        parser.error(f"--stream-port must be -1 or a port number, got {args.stream_port}")
    clear = not args.no_clear and sys.stdout.isatty()
    return run_demo(
        args.duration,
        args.callers,
        sys.stdout,
        clear=clear,
        seed=args.seed,
        stream_port=None if args.stream_port == -1 else args.stream_port,
        chaos=args.chaos,
    )
