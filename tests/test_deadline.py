"""hystrixpy.deadline: the deadline code called from run() can read, and within() for a block."""

from __future__ import annotations

import pytest

from hystrixpy import deadline
from hystrixpy.testing import FakeClock


class TestWithin:
    def test_sets_a_deadline_for_the_block_only(self, fake_clock: FakeClock) -> None:
        """Inside the block the deadline is set and counts down; outside there is none."""
        assert deadline.current() is None
        assert deadline.remaining() is None
        with deadline.within(2.0) as chosen:
            assert chosen == fake_clock.monotonic() + 2.0
            fake_clock.advance(0.5)
            assert deadline.remaining() == pytest.approx(1.5)
            fake_clock.advance(5.0)
            assert deadline.remaining() == 0.0
        assert deadline.current() is None

    def test_the_nearer_enclosing_deadline_wins(self, fake_clock: FakeClock) -> None:
        """A longer inner block keeps the outer, nearer deadline; a shorter one sets its own."""
        with deadline.within(1.0) as outer:
            with deadline.within(10.0) as inner:
                assert inner == outer
            with deadline.within(0.25) as shorter:
                assert shorter == fake_clock.monotonic() + 0.25
            assert deadline.current() == outer

    def test_a_negative_length_is_refused(self) -> None:
        """within(-1) is a ValueError naming the value."""
        with pytest.raises(ValueError, match="seconds must be >= 0, got -1"), deadline.within(-1):
            pass
