"""The examples of docs/combining.md and the README's standalone patterns run as written."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
_PYTHON_BLOCK = re.compile(r"^```python\n(?P<body>.*?)^```$", re.MULTILINE | re.DOTALL)


def _run_blocks(page: Path, namespace: dict[str, Any]) -> int:
    """Run every python block of ``page`` in ``namespace``, in order; return how many ran."""
    text = page.read_text()
    ran = 0
    for match in _PYTHON_BLOCK.finditer(text):
        first_line = text.count("\n", 0, match.start("body"))
        exec(compile("\n" * first_line + match.group("body"), str(page), "exec"), namespace)
        ran += 1
    return ran


class TestCombiningPage:
    def test_every_example_runs_and_its_assertions_hold(self) -> None:
        """The page's blocks run in one namespace with the real clock (their delays are 10 ms)."""
        namespace: dict[str, Any] = {"__name__": "docs_combining"}
        assert _run_blocks(ROOT / "docs" / "combining.md", namespace) == 5
        assert namespace["stock"].attempts == 3
        assert namespace["breaker"].state.name == "CLOSED"
        assert namespace["down"].state.name == "OPEN"
