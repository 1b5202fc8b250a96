"""Shared fixtures: every test starts with a clean registry and the system clock."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import hystrixpy
from hystrixpy import clock, registry
from hystrixpy.testing import FakeClock, use_clock


@pytest.fixture(autouse=True)
def _clean_registry() -> Iterator[None]:
    """Forget every breaker, metric, pool and override around each test.

    Command classes defined inside a test are forgotten afterwards too, so their
    properties do not constrain the configuration of later tests.
    """
    hystrixpy.reset()
    declared = {key: list(values) for key, values in registry._declared.items()}
    previous = clock.get_clock()
    yield
    clock.set_clock(previous)
    hystrixpy.reset()
    registry._declared.clear()
    registry._declared.update(declared)


@pytest.fixture
def fake_clock() -> Iterator[FakeClock]:
    """A fake clock installed as hystrixpy's clock for the test."""
    fake = FakeClock()
    with use_clock(fake):
        yield fake
