"""The ``hystrixpy`` command line: ``hystrixpy demo`` (also ``python -m hystrixpy demo``)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

__all__ = ["main"]

_USAGE = """usage: hystrixpy demo [--duration SECONDS] [--callers N] [--seed N] [--no-clear]
                      [--stream-port PORT]

commands:
  demo    run a simulated service under load and watch its circuits, timeouts and bulkheads
"""


def main(argv: Sequence[str] | None = None) -> int:
    """Dispatch to a subcommand; print usage for anything else."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        sys.stdout.write(_USAGE)
        return 0 if args else 2
    if args[0] == "demo":
        from hystrixpy.demo import main as demo_main  # noqa: PLC0415 - only the demo needs it

        return demo_main(args[1:])
    sys.stderr.write(f"hystrixpy: unknown command {args[0]!r}\n\n{_USAGE}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
