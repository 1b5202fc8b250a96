"""The examples of docs/breakers.md run, in order, as written."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from hystrixpy.testing import FakeClock, use_clock

PAGE = Path(__file__).resolve().parent.parent / "docs" / "breakers.md"
_PYTHON_BLOCK = re.compile(r"^```python\n(?P<body>.*?)^```$", re.MULTILINE | re.DOTALL)


class TestBreakersPage:
    def test_every_example_runs_and_its_test_passes(self) -> None:
        """The python blocks run in one namespace on a fake clock; the test they define passes."""
        text = PAGE.read_text()
        fake = FakeClock(sleep_advances=True)  # the retry example sleeps between attempts
        namespace: dict[str, Any] = {"__name__": "docs_breakers", "fake": fake}
        ran = 0
        with use_clock(fake):
            for match in _PYTHON_BLOCK.finditer(text):
                first_line = text.count("\n", 0, match.start("body"))
                body = "\n" * first_line + match.group("body")
                exec(compile(body, str(PAGE), "exec"), namespace)
                ran += 1
        assert ran >= 12
        assert fake.sleeps, "the retry example waited on the fake clock"
        namespace["test_the_breaker_recovers"]()

    def test_every_option_is_in_the_table(self) -> None:
        """The options table lists each option of BreakerConfig."""
        from hystrixpy._breaker_config import OPTION_NAMES

        rows = set(re.findall(r"^\| `(\w+)` \|", PAGE.read_text(), re.MULTILINE))
        assert rows >= OPTION_NAMES
