"""Run the benchmark suite: ``python -m benchmarks [--quick] [--rounds N] [--output FILE]``.

The comparable figures are taken with the process pinned to one CPU (as
``taskset -c 0`` would), since a thread hand-off across cores on a virtual
machine costs several times one on the same core; the per-call comparisons
are then repeated unpinned and shown beside them. Without ``--quick`` the
table is also written to ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import sys
from collections.abc import Callable
from pathlib import Path

from benchmarks.scenarios import ONCE, TIMED, Measure, Row, Settings, parts_of_execute

ROOT = Path(__file__).resolve().parent.parent


def _pin(cpus: set[int] | None) -> str:
    if not hasattr(os, "sched_setaffinity"):
        return "not pinned (no sched_setaffinity here)"
    if cpus is None:
        os.sched_setaffinity(0, range(os.cpu_count() or 1))
        return "unpinned"
    os.sched_setaffinity(0, cpus)
    return f"pinned to CPU {','.join(map(str, sorted(cpus)))}"


def _run(scenarios: list[Callable[[Settings], Row]], settings: Settings) -> list[Row]:
    rows = []
    for scenario in scenarios:
        row = scenario(settings)
        print(f"  {row.number:>2}. {row.scenario}: {_ratio(row.ratio)}", file=sys.stderr)
        rows.append(row)
    return rows


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _table(pinned: list[Row], unpinned: dict[int, Row]) -> str:
    lines = [
        "| # | scenario | hystrixpy: median (min-max) | baseline | baseline: median (min-max) "
        "| ratio, pinned | ratio, unpinned | target | met |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in sorted(pinned, key=lambda row: row.number):
        other = unpinned.get(row.number)
        met = "-" if row.met is None else ("yes" if row.met else "**no**")
        note = f" ({row.note})" if row.note else ""
        lines.append(
            f"| {row.number} | {row.scenario}{note} | {row.candidate.show()} | {row.baseline_name} "
            f"| {row.baseline.show() if row.baseline else '-'} | {_ratio(row.ratio)} "
            f"| {_ratio(other.ratio) if other else '-'} | {row.target} | {met} |"
        )
    return "\n".join(lines)


def _parts_table(parts: list[tuple[str, Measure]]) -> str:
    lines = [
        "| part of one semaphore execute() | median (min-max) |",
        "|---|---|",
    ]
    lines.extend(f"| {name} | {measure.show()} |" for name, measure in parts)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run: few rounds, no file")
    parser.add_argument("--rounds", type=int, default=31, help="rounds per comparison (31)")
    parser.add_argument("--output", type=Path, default=None, help="where to write the table")
    args = parser.parse_args(argv)
    settings = Settings(
        rounds=3 if args.quick else args.rounds,
        fast_calls=2_000 if args.quick else 20_000,
        thread_calls=200 if args.quick else 2_000,
        quick=args.quick,
    )
    # A breaker opening during a scenario is expected here: keep its warning off the output.
    logging.getLogger("hystrixpy").setLevel(logging.ERROR)
    pinned_label = _pin({0})
    print(f"per-call comparisons, {pinned_label}:", file=sys.stderr)
    pinned = _run(TIMED, settings)
    print("whole-system scenarios:", file=sys.stderr)
    pinned += _run(ONCE, settings)
    parts = parts_of_execute(settings)
    unpinned_label = _pin(None)
    print(f"per-call comparisons, {unpinned_label}:", file=sys.stderr)
    unpinned = {row.number: row for row in _run(TIMED, settings)}

    command = "python -m benchmarks" + (" --quick" if args.quick else "")
    header = [
        "# Benchmarks",
        "",
        f"Produced by `{command}` on Python {platform.python_version()} "
        f"({platform.python_implementation()}), {os.cpu_count()} CPUs, {platform.machine()}.",
        f"Ratios are hystrixpy / baseline, the median of {settings.rounds} interleaved rounds; "
        "lower is better. The pinned column ran on one CPU (as `taskset -c 0`), the unpinned "
        "one on all; scenarios 6 to 11 ran pinned.",
        "",
    ]
    text = (
        "\n".join(header)
        + "\n"
        + _table(pinned, unpinned)
        + "\n\n## Where the time of row 1 goes\n\n"
        + "Each part timed on its own, pinned, in the same run (microseconds per call):\n\n"
        + _parts_table(parts)
        + "\n"
    )
    notes = ROOT / "benchmarks" / "notes.md"
    if notes.exists():
        text += "\n" + notes.read_text()
    print(text)
    output = args.output or (None if args.quick else ROOT / "docs" / "benchmarks.md")
    if output is not None:
        output.write_text(text)
        print(f"written to {output}", file=sys.stderr)
    failed = [row.number for row in pinned if row.met is False]
    if failed:
        print(f"targets not met: {', '.join(map(str, failed))}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
