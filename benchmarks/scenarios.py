"""The benchmark scenarios: hystrixpy against its baselines, measured side by side.

Each scenario returns a :class:`Row`. Timed pairs run interleaved (baseline,
candidate, baseline, candidate, ...) so a noisy machine slows both alike; the
ratio is the median of the per-round ratios.
"""

from __future__ import annotations

import gc
import statistics
import subprocess
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import hystrixpy
from hystrixpy import Command, CommandProperties, IsolationStrategy, ThreadPoolProperties
from hystrixpy.metrics import CommandMetrics

SEMAPHORE = IsolationStrategy.SEMAPHORE


@dataclass
class Measure:
    """Times (or sizes) from repeated rounds of one side of a comparison."""

    values: list[float]
    unit: str = "us"

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    def show(self) -> str:
        if not self.values:
            return "-"
        low, high = min(self.values), max(self.values)
        return f"{_fmt(self.median)} ({_fmt(low)}-{_fmt(high)}) {self.unit}"


@dataclass
class Row:
    """One line of the results table."""

    number: int
    scenario: str
    candidate: Measure
    baseline_name: str
    baseline: Measure | None
    ratio: float | None
    target: str
    met: bool | None
    note: str = ""


def _fmt(value: float) -> str:
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


@dataclass
class Settings:
    """How long to measure."""

    rounds: int
    fast_calls: int
    thread_calls: int
    quick: bool


def _per_call_us(function: Callable[[], object], calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        function()
    return (time.perf_counter() - start) / calls * 1e6


def interleaved(
    candidate: Callable[[], object],
    baseline: Callable[[], object],
    calls: int,
    rounds: int,
) -> tuple[Measure, Measure, float]:
    """Time both sides in alternation; return both measures and the median ratio."""
    _per_call_us(candidate, max(calls // 10, 10))
    _per_call_us(baseline, max(calls // 10, 10))
    candidate_times: list[float] = []
    baseline_times: list[float] = []
    ratios = []
    gc.disable()
    try:
        for _ in range(rounds):
            base = _per_call_us(baseline, calls)
            cand = _per_call_us(candidate, calls)
            baseline_times.append(base)
            candidate_times.append(cand)
            ratios.append(cand / base)
    finally:
        gc.enable()
    return Measure(candidate_times), Measure(baseline_times), statistics.median(ratios)


# -- commands used by the scenarios ---------------------------------------------------


class SemaphoreTrivial(Command[int]):
    group_key = "BenchSemaphore"
    properties = CommandProperties(
        execution_isolation_strategy=SEMAPHORE,
        execution_isolation_semaphore_max_concurrent_requests=100,
    )

    def run(self) -> int:
        return 1


class SemaphoreRateLimited(Command[int]):
    group_key = "BenchSemaphore"
    properties = SemaphoreTrivial.properties
    # A bucket that never runs dry: every execution pays for the check and is let through.
    rate_limiter = hystrixpy.TokenBucket(capacity=1_000_000_000, refill_per_second=1e9)

    def run(self) -> int:
        return 1


class ThreadTrivial(Command[int]):
    group_key = "BenchThread"
    properties = CommandProperties(execution_timeout_ms=1000)
    thread_pool_properties = ThreadPoolProperties(core_size=10)

    def run(self) -> int:
        return 1


class ShortCircuited(Command[int]):
    group_key = "BenchOpen"
    properties = CommandProperties(
        execution_isolation_strategy=SEMAPHORE, circuit_breaker_force_open=True
    )

    def run(self) -> int:
        return 1

    def get_fallback(self) -> int:
        return 0


class SleepsOneMs(Command[None]):
    group_key = "BenchConcurrent"
    properties = CommandProperties(
        execution_isolation_strategy=SEMAPHORE,
        execution_isolation_semaphore_max_concurrent_requests=1000,
    )

    def run(self) -> None:
        time.sleep(0.001)


def _trivial() -> int:
    return 1


@hystrixpy.command(
    group_key="BenchSemaphore",
    command_key="DecoratedTrivial",
    isolation="SEMAPHORE",
    execution_isolation_semaphore_max_concurrent_requests=100,
)
def decorated_trivial() -> int:
    return 1


# -- scenarios --------------------------------------------------------------------------


def semaphore_vs_pybreaker(settings: Settings) -> Row:
    import pybreaker

    breaker = pybreaker.CircuitBreaker(fail_max=5, reset_timeout=60)
    cand, base, ratio = interleaved(
        lambda: SemaphoreTrivial().execute(),
        lambda: breaker.call(_trivial),
        settings.fast_calls,
        settings.rounds,
    )
    return Row(
        1,
        "semaphore execute(), trivial run()",
        cand,
        "pybreaker call()",
        base,
        ratio,
        "<= 1.5x",
        ratio <= 1.5,
    )


def semaphore_vs_pyresilience(settings: Settings) -> Row:
    import pyresilience

    protected = pyresilience.resilient(
        circuit_breaker=pyresilience.CircuitBreakerConfig(),
        bulkhead=pyresilience.BulkheadConfig(max_concurrent=100),
    )(_trivial)
    cand, base, ratio = interleaved(
        lambda: SemaphoreTrivial().execute(), protected, settings.fast_calls, settings.rounds
    )
    return Row(
        2,
        "semaphore execute(), trivial run()",
        cand,
        "pyresilience breaker+bulkhead",
        base,
        ratio,
        "<= 1.0x",
        ratio <= 1.0,
    )


def thread_vs_executor(settings: Settings) -> Row:
    executor = ThreadPoolExecutor(max_workers=10)
    try:
        cand, base, ratio = interleaved(
            lambda: ThreadTrivial().execute(),
            lambda: executor.submit(_trivial).result(),
            settings.thread_calls,
            settings.rounds,
        )
    finally:
        executor.shutdown()
    return Row(
        3,
        "thread execute() with timeout",
        cand,
        "submit(f).result(), 10 workers",
        base,
        ratio,
        "<= 1.25x",
        ratio <= 1.25,
    )


def thread_vs_pyresilience(settings: Settings) -> Row:
    import pyresilience

    protected = pyresilience.resilient(
        circuit_breaker=pyresilience.CircuitBreakerConfig(),
        bulkhead=pyresilience.BulkheadConfig(max_concurrent=10),
        timeout=pyresilience.TimeoutConfig(seconds=1.0, pool_size=10),
    )(_trivial)
    cand, base, ratio = interleaved(
        lambda: ThreadTrivial().execute(), protected, settings.thread_calls, settings.rounds
    )
    return Row(
        4,
        "thread execute() with timeout",
        cand,
        "pyresilience breaker+bulkhead+timeout",
        base,
        ratio,
        "<= 1.0x",
        ratio <= 1.0,
    )


def short_circuit_vs_pybreaker(settings: Settings) -> Row:
    import pybreaker

    breaker = pybreaker.CircuitBreaker(fail_max=1, reset_timeout=3600)
    breaker.open()

    def open_call() -> int:
        try:
            return breaker.call(_trivial)  # type: ignore[no-any-return]
        except pybreaker.CircuitBreakerError:
            return 0

    cand, base, ratio = interleaved(
        lambda: ShortCircuited().execute(), open_call, settings.fast_calls, settings.rounds
    )
    return Row(
        5,
        "short-circuited execute() + fallback",
        cand,
        "pybreaker open: call, raise, catch",
        base,
        ratio,
        "<= 1.0x",
        ratio <= 1.0,
    )


def decorated_vs_command(settings: Settings) -> Row:
    cand, base, ratio = interleaved(
        decorated_trivial,
        lambda: SemaphoreTrivial().execute(),
        settings.fast_calls,
        settings.rounds,
    )
    return Row(
        12,
        "@command-decorated function, semaphore, trivial",
        cand,
        "Command subclass execute()",
        base,
        ratio,
        "<= 1.15x",
        ratio <= 1.15,
    )


def _wall_ms_of_threads(work: Callable[[], None], threads: int) -> float:
    barrier = threading.Barrier(threads + 1)

    def caller() -> None:
        barrier.wait()
        work()

    workers = [threading.Thread(target=caller) for _ in range(threads)]
    for worker in workers:
        worker.start()
    barrier.wait()
    start = time.perf_counter()
    for worker in workers:
        worker.join()
    return (time.perf_counter() - start) * 1000


def concurrent_callers(settings: Settings) -> Row:
    import pybreaker

    threads, calls = 64, 20
    breaker = pybreaker.CircuitBreaker(fail_max=5, reset_timeout=60)

    def ideal() -> None:
        for _ in range(calls):
            time.sleep(0.001)

    def ours() -> None:
        for _ in range(calls):
            SleepsOneMs().execute()

    def theirs() -> None:
        for _ in range(calls):
            breaker.call(time.sleep, 0.001)

    ideal_ms, ours_ms, ratios = [], [], []
    for _ in range(max(settings.rounds // 3, 2)):
        i = _wall_ms_of_threads(ideal, threads)
        o = _wall_ms_of_threads(ours, threads)
        ideal_ms.append(i)
        ours_ms.append(o)
        ratios.append(o / i)
    pybreaker_ms = _wall_ms_of_threads(theirs, threads) if not settings.quick else float("nan")
    ratio = statistics.median(ratios)
    return Row(
        6,
        "64 threads x 20 calls of a 1 ms run()",
        Measure(ours_ms, "ms wall"),
        "the same without a guard (ideal)",
        Measure(ideal_ms, "ms wall"),
        ratio,
        "<= 1.3x ideal",
        ratio <= 1.3,
        note=f"pybreaker: {pybreaker_ms:.0f} ms wall",
    )


def hung_commands_release(settings: Settings) -> Row:
    release = threading.Event()
    count = 200

    class Hangs(Command[str]):
        group_key = "BenchHang"
        properties = CommandProperties(execution_timeout_ms=50)
        thread_pool_properties = ThreadPoolProperties(core_size=count)

        def run(self) -> str:
            release.wait(5)
            return "late"

        def get_fallback(self) -> str:
            return "fallback"

    delays: list[float] = []
    lock = threading.Lock()
    barrier = threading.Barrier(count)

    def caller() -> None:
        barrier.wait()
        start = time.perf_counter()
        Hangs().execute()
        elapsed = (time.perf_counter() - start) * 1000
        with lock:
            delays.append(elapsed)

    callers = [threading.Thread(target=caller) for _ in range(count)]
    for thread in callers:
        thread.start()
    for thread in callers:
        thread.join()
    release.set()
    hystrixpy.thread_pool("BenchHang").shutdown(wait=True)
    ordered = sorted(delays)
    p99 = ordered[int(len(ordered) * 0.99) - 1]
    return Row(
        7,
        "200 hung thread commands, 50 ms timeout",
        Measure(ordered, "ms to release"),
        "the timeout",
        Measure([50.0], "ms"),
        p99 / 50.0,
        "p99 <= 60 ms",
        p99 <= 60.0,
        note=f"p99 {p99:.1f} ms, max {ordered[-1]:.1f} ms",
    )


def record_cost_by_window(settings: Settings) -> Row:
    from hystrixpy.events import EventType

    short = CommandMetrics(
        "Short",
        "G",
        "G",
        CommandProperties(
            metrics_rolling_stats_time_ms=1000, metrics_rolling_percentile_time_ms=1200
        ),
    )
    long = CommandMetrics(
        "Long",
        "G",
        "G",
        CommandProperties(
            metrics_rolling_stats_time_ms=600_000, metrics_rolling_percentile_time_ms=600_000
        ),
    )
    events = (EventType.SUCCESS,)
    clock_now = hystrixpy.clock.monotonic

    def record_short() -> None:
        short.record(events, clock_now(), execution_ms=3, total_ms=4)

    def record_long() -> None:
        long.record(events, clock_now(), execution_ms=3, total_ms=4)

    cand, base, ratio = interleaved(record_long, record_short, settings.fast_calls, settings.rounds)
    return Row(
        8,
        "record() with a 600 s window",
        cand,
        "record() with a 1 s window",
        base,
        ratio,
        "equal within noise (0.8-1.2x)",
        0.8 <= ratio <= 1.2,
    )


def memory_per_key(settings: Settings) -> Row:
    hystrixpy.reset()
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    for _ in range(10_000):
        SemaphoreTrivial().execute()
    gc.collect()
    after = tracemalloc.take_snapshot()
    one_key = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    keys = 1_000 if settings.quick else 10_000
    before = tracemalloc.take_snapshot()
    for index in range(keys):
        SemaphoreTrivial(command_key=f"Key{index}").execute()
    gc.collect()
    after = tracemalloc.take_snapshot()
    many = sum(stat.size_diff for stat in after.compare_to(before, "filename")) / keys
    tracemalloc.stop()
    hystrixpy.reset()
    worst = max(one_key, many) / 1024
    return Row(
        9,
        "memory per command key (tracemalloc)",
        Measure([one_key / 1024, many / 1024], "KB"),
        "Hystrix's histogram per key",
        Measure([41.0], "KB"),
        worst / 41.0,
        "<= 16 KB",
        worst <= 16.0,
        note=f"one key after 10,000 runs: {one_key / 1024:.1f} KB; "
        f"average of {keys:,} keys: {many / 1024:.1f} KB",
    )


def stream_frame(settings: Settings) -> Row:
    from hystrixpy import stream

    hystrixpy.reset()
    for index in range(100):
        for _ in range(20):
            SemaphoreTrivial(command_key=f"Stream{index}").execute()
    for index in range(20):
        hystrixpy.thread_pool(f"Pool{index}")
    times = []
    for _ in range(max(settings.rounds, 3)):
        start = time.perf_counter()
        stream.frame()
        times.append((time.perf_counter() - start) * 1000)
    hystrixpy.reset()
    median = statistics.median(times)
    return Row(
        10,
        "one stream frame: 100 commands, 20 pools",
        Measure(times, "ms"),
        "-",
        None,
        None,
        "<= 5 ms",
        median <= 5.0,
    )


def _import_ms(module: str) -> float:
    completed = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        capture_output=True,
        text=True,
        check=True,
    )
    for line in reversed(completed.stderr.splitlines()):
        parts = [part.strip() for part in line.split("|")]
        if len(parts) == 3 and parts[2] == module:
            return int(parts[1]) / 1000
    raise RuntimeError(f"no import time reported for {module}")


def import_time(settings: Settings) -> Row:
    ours, theirs = [], []
    for _ in range(3 if settings.quick else 7):
        theirs.append(_import_ms("pybreaker"))
        ours.append(_import_ms("hystrixpy"))
    median = statistics.median(ours)
    return Row(
        11,
        "import hystrixpy (fresh interpreter)",
        Measure(ours, "ms"),
        "import pybreaker",
        Measure(theirs, "ms"),
        median / statistics.median(theirs),
        "< 150 ms",
        median < 150,
    )


class SemaphoreNoPercentiles(Command[int]):
    group_key = "BenchSemaphore"
    properties = CommandProperties(
        execution_isolation_strategy=SEMAPHORE,
        execution_isolation_semaphore_max_concurrent_requests=100,
        metrics_rolling_percentile_enabled=False,
    )

    def run(self) -> int:
        return 1


def parts_of_execute(settings: Settings) -> list[tuple[str, Measure]]:
    """What the pieces of one semaphore execute() cost on their own, beside pybreaker's call."""
    import contextvars

    import pybreaker

    breaker = pybreaker.CircuitBreaker(fail_max=5, reset_timeout=60)
    SemaphoreTrivial().execute()
    SemaphoreNoPercentiles().execute()
    metrics = hystrixpy.command_metrics("SemaphoreTrivial")
    reader = hystrixpy.clock.monotonic
    lock = threading.Lock()

    def record_success() -> None:
        metrics.record_success(reader(), 1, 0, 0)

    def two_clock_readings() -> None:
        reader()
        reader()

    def lock_round_trip() -> None:
        lock.acquire()
        lock.release()

    parts: list[tuple[str, Callable[[], object]]] = [
        ("pybreaker call() (the baseline of row 1)", lambda: breaker.call(_trivial)),
        ("hystrixpy: semaphore execute(), as row 1", lambda: SemaphoreTrivial().execute()),
        ("the same with percentiles off", lambda: SemaphoreNoPercentiles().execute()),
        ("creating the command object alone", SemaphoreTrivial),
        ("two clock readings (start and end)", two_clock_readings),
        (
            "run() in a copy of the caller's context",
            lambda: contextvars.copy_context().run(_trivial),
        ),
        ("counting one success (counted later, without the lock)", record_success),
        ("one lock round trip (for comparison: pybreaker takes one a call)", lock_round_trip),
    ]
    measured = []
    gc.disable()
    try:
        for name, function in parts:
            _per_call_us(function, max(settings.fast_calls // 10, 10))
            times = [_per_call_us(function, settings.fast_calls) for _ in range(settings.rounds)]
            measured.append((name, Measure(times)))
    finally:
        gc.enable()
    return measured


def rate_limited_vs_plain(settings: Settings) -> Row:
    cand, base, ratio = interleaved(
        lambda: SemaphoreRateLimited().execute(),
        lambda: SemaphoreTrivial().execute(),
        settings.fast_calls,
        settings.rounds,
    )
    return Row(
        16,
        "semaphore execute() with a token bucket (allowed)",
        cand,
        "the same command without one",
        base,
        ratio,
        "<= 1.1x",
        ratio <= 1.1,
    )


def breaker_row(settings: Settings) -> Row:
    """Row 13, in its own module (benchmarks.breaker_bench)."""
    from benchmarks.breaker_bench import row

    return row(settings)


def ratelimit_row(settings: Settings) -> Row:
    """Row 15, in its own module (benchmarks.ratelimit_bench)."""
    from benchmarks.ratelimit_bench import row

    return row(settings)


def retry_row(settings: Settings) -> Row:
    """Row 14, in its own module (benchmarks.retry_bench)."""
    from benchmarks.retry_bench import row

    return row(settings)


TIMED = [
    semaphore_vs_pybreaker,
    semaphore_vs_pyresilience,
    thread_vs_executor,
    thread_vs_pyresilience,
    short_circuit_vs_pybreaker,
    decorated_vs_command,
    breaker_row,
    retry_row,
    ratelimit_row,
    rate_limited_vs_plain,
]
ONCE = [
    concurrent_callers,
    hung_commands_release,
    record_cost_by_window,
    memory_per_key,
    stream_frame,
    import_time,
]
