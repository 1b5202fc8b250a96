"""Instructions per call on the hot paths: ``python -m benchmarks.instructions [--calls N]``.

Timings on a shared machine drift by a tenth or more from one run to the next;
the number of instructions CPython executes for one call does not. This counts
them with valgrind's callgrind (which must be installed): each scenario runs
in a fresh interpreter twice, once with ``N`` calls and once with none, and
the difference is divided by ``N``. Use it to see whether a change to
``execute()`` helps before timing it with ``python -m benchmarks``.

Instructions are not time: a lock's atomic operations or a cache miss cost
more than their count says. The ratios here are a floor for the timed ones.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_SETUP = """
import gc, sys
sys.path.insert(0, {root!r})
import pybreaker
from benchmarks.scenarios import SemaphoreTrivial, ShortCircuited, _trivial

closed = pybreaker.CircuitBreaker(fail_max=5, reset_timeout=60)
tripped = pybreaker.CircuitBreaker(fail_max=1, reset_timeout=3600)
tripped.open()

def open_call():
    try:
        return tripped.call(_trivial)
    except pybreaker.CircuitBreakerError:
        return 0

# Both of hystrixpy's paths run first, as in an application that has seen both.
for _ in range(2000):
    SemaphoreTrivial().execute()
    ShortCircuited().execute()

def once():
    return {call}

for _ in range(2000):
    once()
gc.disable()
for _ in range({calls}):
    once()
"""

#: (hystrixpy's call, its baseline's call) per compared row of ``python -m benchmarks``.
PAIRS = {
    "1. semaphore execute() vs pybreaker call()": (
        "SemaphoreTrivial().execute()",
        "closed.call(_trivial)",
    ),
    "5. short-circuited execute() vs pybreaker open: call, raise, catch": (
        "ShortCircuited().execute()",
        "open_call()",
    ),
}

_COLLECTED = re.compile(r"Collected\s*:\s*(\d+)")


def count(call: str, calls: int) -> int:
    """The instructions of a fresh interpreter that sets up and makes ``calls`` calls."""
    program = _SETUP.format(root=str(ROOT), call=call, calls=calls)
    result = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            sys.executable,
            "-c",
            program,
        ],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )
    found = _COLLECTED.search(result.stderr)
    if found is None:
        raise RuntimeError(f"callgrind printed no count:\n{result.stderr[-2000:]}")
    return int(found.group(1))


def per_call(call: str, calls: int) -> float:
    """Instructions for one call of ``call``, over ``calls`` calls."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        with_calls = pool.submit(count, call, calls)
        without = pool.submit(count, call, 0)
        return (with_calls.result() - without.result()) / calls


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=10_000, help="calls per count (10,000)")
    args = parser.parse_args(argv)
    if args.calls <= 0:
        parser.error(f"--calls must be positive, got {args.calls}")
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (Debian: apt-get install valgrind)", file=sys.stderr)
        return 1
    print("| row | hystrixpy: instructions per call | baseline | ratio |")
    print("|---|---|---|---|")
    for name, (ours, theirs) in PAIRS.items():
        candidate = per_call(ours, args.calls)
        baseline = per_call(theirs, args.calls)
        print(f"| {name} | {candidate:,.0f} | {baseline:,.0f} | {candidate / baseline:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
