"""The examples of docs/rate-limiting.md run, in order, as written."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from hystrixpy.testing import FakeClock, use_clock

PAGE = Path(__file__).resolve().parent.parent / "docs" / "rate-limiting.md"
_PYTHON_BLOCK = re.compile(r"^```python\n(?P<body>.*?)^```$", re.MULTILINE | re.DOTALL)


def _blocks() -> list[tuple[int, str]]:
    text = PAGE.read_text()
    return [
        (text.count("\n", 0, match.start("body")), match.group("body"))
        for match in _PYTHON_BLOCK.finditer(text)
    ]


class TestRateLimitingPage:
    def test_every_example_runs_and_its_tests_pass(self) -> None:
        """The python blocks run in one namespace on a fake clock; the tests they define pass."""
        namespace: dict[str, Any] = {"__name__": "docs_rate_limiting"}
        blocks = _blocks()
        assert len(blocks) >= 8
        fake = FakeClock(sleep_advances=True)
        with use_clock(fake):
            for first_line, body in blocks:
                code = compile("\n" * first_line + body, str(PAGE), "exec")
                exec(code, namespace)
        assert fake.sleeps == [0.25], "acquire() waited once, on the fake clock"
        tests = [value for name, value in namespace.items() if name.startswith("test_")]
        assert len(tests) == 2
        for test in tests:
            test()  # they install fake clocks of their own

    def test_the_page_names_every_public_name(self) -> None:
        """Each name in hystrixpy.ratelimit.__all__ appears on the page."""
        from hystrixpy import ratelimit

        text = PAGE.read_text()
        missing = [name for name in ratelimit.__all__ if f"`{name}" not in text]
        assert missing == []
