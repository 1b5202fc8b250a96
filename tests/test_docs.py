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


def test_readme_has_exactly_the_two_commands() -> None:
    """The README's demo and test commands are marked, and CI reads the test command."""
    readme = (ROOT / "README.md").read_text()
    assert readme.count("<!-- demo-command -->") == 1
    assert readme.count("<!-- test-command -->") == 1
    assert "<!-- test-command -->" in (ROOT / ".ci" / "run").read_text()
