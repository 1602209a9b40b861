"""Whatever the pattern of takes, a token bucket never lets more through than its capacity plus its rate times the
time (the far side counts in windows: no window may see more), and it never makes a taker wait longer than needed."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from ml_connector.http.buckets import LocalBuckets, refill

RATES = st.floats(min_value=0.1, max_value=200.0)
CAPACITIES = st.integers(min_value=1, max_value=50)
GAPS = st.lists(st.floats(min_value=0.0, max_value=2.0), min_size=1, max_size=120)
EPS = 1e-6


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _uses(rate: float, capacity: int, gaps: list[float]) -> list[float]:
    """When each taker may use its token: it asks after ``gap`` seconds and waits what the bucket says."""
    clock = Clock()
    buckets = LocalBuckets(clock=clock)
    uses = []
    for gap in gaps:
        clock.now += gap
        uses.append(clock.now + buckets.take("k", rate, float(capacity)).wait)
    return uses


@given(RATES, CAPACITIES, GAPS)
def test_no_window_sees_more_than_capacity_plus_rate_times_its_length(
    rate: float, capacity: int, gaps: list[float]
) -> None:
    uses = sorted(_uses(rate, capacity, gaps))
    for i, start in enumerate(uses):
        for j in range(i, len(uses)):
            assert j - i + 1 <= capacity + rate * (uses[j] - start) + EPS


@given(RATES, CAPACITIES, GAPS)
def test_a_taker_waits_only_for_the_tokens_promised_before_it(rate: float, capacity: int, gaps: list[float]) -> None:
    """Uses go out in the order asked, never before being asked, and a taker that must wait gets its token one
    interval after the taker before it at the latest: the bucket refills it then."""
    uses = _uses(rate, capacity, gaps)
    asked = list(itertools.accumulate(gaps))
    assert all(use >= when for use, when in zip(uses, asked, strict=True))
    assert uses == sorted(uses)
    for k in range(1, len(uses)):
        if uses[k] > asked[k] + EPS:
            assert uses[k] - uses[k - 1] <= 1 / rate + EPS


@given(st.floats(-100, 100), st.floats(-10, 1000), RATES, CAPACITIES)
def test_refill_stays_within_its_bounds(tokens: float, elapsed: float, rate: float, capacity: int) -> None:
    after = refill(min(tokens, capacity), elapsed, rate, float(capacity))
    assert after <= capacity
    assert after >= min(tokens, capacity) - EPS  # never loses tokens, also on a clock that stepped back
