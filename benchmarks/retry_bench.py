"""Row 14: a retry() call that succeeds at once, against a tenacity-decorated function.

hystrixpy makes the first attempt itself and hands over to tenacity only after a
retryable failure, so a success costs a ``try``; tenacity builds a fresh
``Retrying`` copy and its call state on every call. Both sides are configured
alike: three attempts, 100 ms doubling up to 30 s, the same error test, and
the original error re-raised.
"""

from __future__ import annotations

import functools

from benchmarks.scenarios import Measure, Row, Settings, interleaved
from hystrixpy.retry import is_transient, make_retryable, retry


def _trivial() -> int:
    return 1


def row(settings: Settings) -> Row:
    """Time ``retry(fn)`` against ``@tenacity.retry(...)`` on a function that succeeds."""
    import tenacity

    theirs = tenacity.retry(
        stop=tenacity.stop_after_attempt(3),
        wait=tenacity.wait_exponential(multiplier=0.1, exp_base=2, max=30),
        retry=tenacity.retry_if_exception(is_transient),
        reraise=True,
    )(_trivial)
    ours = functools.partial(retry, _trivial)
    cand, base, ratio = interleaved(ours, theirs, settings.fast_calls, settings.rounds)
    decorated = make_retryable(_trivial)
    decorated_measure, _, decorated_ratio = interleaved(
        decorated, theirs, settings.fast_calls, max(settings.rounds // 2, 1)
    )
    return Row(
        14,
        "successful retry() call",
        cand,
        "tenacity.retry-decorated function",
        base,
        ratio,
        "<= 1.0x",
        ratio <= 1.0,
        note=f"make_retryable-decorated function: {_median_us(decorated_measure)} "
        f"({decorated_ratio:.2f}x tenacity)",
    )


def _median_us(measure: Measure) -> str:
    return f"{measure.median:.2f} us"
