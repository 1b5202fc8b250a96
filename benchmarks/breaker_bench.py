"""Row 13: a standalone Breaker.call() on a closed circuit against pybreaker's call().

``row(settings)`` is a scenario in :mod:`benchmarks.scenarios`' style (the
lead adds it to the table). Run alone for a quick look:
``python -m benchmarks.breaker_bench [--rounds N] [--calls N]``.
"""

from __future__ import annotations

import argparse
import sys

from benchmarks.scenarios import Row, Settings, _trivial, interleaved
from hystrixpy.breakers import Breaker, BreakerConfig


def row(settings: Settings) -> Row:
    """Both breakers closed, guarding a trivial function, timed in alternation."""
    import pybreaker

    theirs = pybreaker.CircuitBreaker(fail_max=5, reset_timeout=60)
    # The same policy: 5 consecutive failures open it for 60 s.
    ours = Breaker("BenchBreaker", BreakerConfig(failure_threshold=5, recovery_timeout_ms=60_000))
    cand, base, ratio = interleaved(
        lambda: ours.call(_trivial),
        lambda: theirs.call(_trivial),
        settings.fast_calls,
        settings.rounds,
    )
    return Row(
        13,
        "standalone Breaker.call() (closed)",
        cand,
        "pybreaker CircuitBreaker.call()",
        base,
        ratio,
        "<= 1.0x",
        ratio <= 1.0,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=20_000)
    args = parser.parse_args(argv)
    settings = Settings(rounds=args.rounds, fast_calls=args.calls, thread_calls=0, quick=True)
    result = row(settings)
    print(
        f"{result.number}. {result.scenario}: {result.candidate.show()} vs "
        f"{result.baseline_name}: {result.baseline.show() if result.baseline else '-'}; "
        f"ratio {result.ratio:.2f}x (target {result.target}, met: {result.met})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
