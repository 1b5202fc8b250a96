"""Cost of one execute() against its baselines, measured side by side.

Run: ``python benchmarks/bench_execute.py [--rounds N] [--quick]`` (pin to one core with
``taskset -c 0`` for figures that compare across runs). Each round times every scenario once,
interleaved, so a noisy machine affects baseline and candidate alike; the table shows the
median time per call, the min-max over rounds, and the median of per-round ratios.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import hystrixpy
from hystrixpy import Command, CommandProperties, IsolationStrategy, ThreadPoolProperties


class SemaphoreTrivial(Command[int]):
    group_key = "BenchSemaphore"
    properties = CommandProperties(execution_isolation_strategy=IsolationStrategy.SEMAPHORE)

    def run(self) -> int:
        return 1


class ThreadTrivial(Command[int]):
    group_key = "BenchThread"
    properties = CommandProperties(execution_timeout_ms=1000)
    thread_pool_properties = ThreadPoolProperties(core_size=1)

    def run(self) -> int:
        return 1


def _trivial() -> int:
    return 1


def _time_per_call(fn: Callable[[], object], calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--quick", action="store_true", help="a smoke run: few rounds and calls")
    args = parser.parse_args()
    rounds = 3 if args.quick else args.rounds
    fast_calls = 2_000 if args.quick else 50_000
    thread_calls = 200 if args.quick else 5_000

    pairs: list[tuple[str, Callable[[], object], str, Callable[[], object], int]] = []
    try:
        import pybreaker

        breaker = pybreaker.CircuitBreaker(fail_max=5, reset_timeout=60)
        pairs.append(
            (
                "semaphore execute()",
                lambda: SemaphoreTrivial().execute(),
                "pybreaker call()",
                lambda: breaker.call(_trivial),
                fast_calls,
            )
        )
    except ImportError:
        print("pybreaker is not installed: skipping its comparison", file=sys.stderr)
    executor = ThreadPoolExecutor(max_workers=1)
    pairs.append(
        (
            "thread execute()",
            lambda: ThreadTrivial().execute(),
            "submit().result()",
            lambda: executor.submit(_trivial).result(),
            thread_calls,
        )
    )

    print(f"python {sys.version.split()[0]}, {rounds} rounds")
    print(f"{'scenario':22} {'median':>10} {'min-max':>22}  {'baseline':20} {'median':>10}  ratio")
    for name, candidate, base_name, baseline, calls in pairs:
        candidate_times, baseline_times, ratios = [], [], []
        _time_per_call(candidate, calls // 10)  # warm up
        _time_per_call(baseline, calls // 10)
        for _ in range(rounds):
            b = _time_per_call(baseline, calls)
            c = _time_per_call(candidate, calls)
            baseline_times.append(b)
            candidate_times.append(c)
            ratios.append(c / b)
        print(
            f"{name:22} {statistics.median(candidate_times) * 1e6:8.2f}us "
            f"{min(candidate_times) * 1e6:9.2f}-{max(candidate_times) * 1e6:8.2f}us  "
            f"{base_name:20} {statistics.median(baseline_times) * 1e6:8.2f}us  "
            f"{statistics.median(ratios):.2f}x"
        )
    executor.shutdown()
    hystrixpy.reset()
    return 0


if __name__ == "__main__":
    sys.exit(main())
