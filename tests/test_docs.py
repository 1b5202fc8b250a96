"""The docs keep up with the code: every property is documented with its Hystrix name."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hystrixpy.properties import CommandProperties, ThreadPoolProperties

ROOT = Path(__file__).resolve().parent.parent


def _rows() -> dict[tuple[str, str], str]:
    text = (ROOT / "docs" / "configuration.md").read_text()
    rows = {}
    for match in re.finditer(r"^\| `(\w+)` \| `([\w.]+)` \| ([^|]+) \|", text, re.MULTILINE):
        rows[(match.group(1), match.group(2))] = match.group(3).strip()
    return rows


def _shown(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    return str(getattr(value, "name", value))


@pytest.mark.parametrize("properties", [CommandProperties(), ThreadPoolProperties()])
def test_every_property_is_documented_with_its_default(properties: object) -> None:
    """Each property appears in docs/configuration.md with its Hystrix name and default."""
    rows = _rows()
    for name, spec in type(properties).SPECS.items():  # type: ignore[attr-defined]
        assert (name, spec.hystrix_name) in rows, name
        assert rows[(name, spec.hystrix_name)] == _shown(getattr(properties, name)), name


_FENCED_BLOCK = re.compile(
    r"^```(?P<language>[\w-]*)\n(?P<body>.*?)^```$", re.MULTILINE | re.DOTALL
)
_SHELL_LANGUAGES = {"", "sh", "bash", "shell", "console", "zsh"}


def _shell_blocks(text: str) -> list[tuple[int, str]]:
    """Each fenced block marked as shell, or not marked at all: where it starts, and its body."""
    return [
        (match.start(), match.group("body"))
        for match in _FENCED_BLOCK.finditer(text)
        if match.group("language") in _SHELL_LANGUAGES
    ]


def test_readme_has_exactly_the_two_commands() -> None:
    """The README's demo and test commands are marked, and CI reads the test command."""
    readme = (ROOT / "README.md").read_text()
    assert readme.count("<!-- demo-command -->") == 1
    assert readme.count("<!-- test-command -->") == 1
    assert "<!-- test-command -->" in (ROOT / ".ci" / "run").read_text()


def test_readme_has_no_other_shell_block() -> None:
    """Exactly two shell blocks, one command line each, right under the two markers."""
    readme = (ROOT / "README.md").read_text()
    blocks = _shell_blocks(readme)
    assert len(blocks) == 2, [body for _, body in blocks]
    for marker, (start, body) in zip(
        ("<!-- demo-command -->", "<!-- test-command -->"), blocks, strict=True
    ):
        assert readme.rindex(marker, 0, start) + len(marker) + 1 == start, marker
        assert readme[start:].startswith("```sh\n"), marker
        assert body.count("\n") == 1, body
        assert body.startswith("python3 -m venv .venv && .venv/bin/pip install -q "), body


def test_ci_runs_the_readme_test_command() -> None:
    """.ci/run takes the second line after the marker, which must be the test command."""
    lines = (ROOT / "README.md").read_text().splitlines()
    after = lines[lines.index("<!-- test-command -->") + 2]
    assert after.endswith(".venv/bin/python -m pytest"), after


def test_development_page_is_linked_and_holds_the_benchmark_command() -> None:
    """Benchmarks are documented in docs/development.md, named and linked in the README."""
    development = (ROOT / "docs" / "development.md").read_text()
    assert (
        "python3 -m venv .venv && .venv/bin/pip install -q -e '.[bench]' "
        "&& .venv/bin/python -m benchmarks" in development
    )
    assert "--quick" in development
    assert "taskset -c 0" in development
    assert "](benchmarks.md)" in development
    readme = (ROOT / "README.md").read_text()
    assert "](docs/development.md)" in readme
    assert "](docs/benchmarks.md)" in readme
    # Named in the prose (the suite's one command), never as a third copy-paste block.
    assert "`python -m benchmarks`" in readme
    assert all("-m benchmarks" not in body for _, body in _shell_blocks(readme))
    assert "](development.md)" in (ROOT / "docs" / "index.md").read_text()
