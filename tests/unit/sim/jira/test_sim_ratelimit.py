"""The burst bucket per endpoint follows jira-api.md §9 per method (GET/POST 100/s, PUT/DELETE 50/s); fake clock."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from ml_connector.sim.jira.common import ApiError
from ml_connector.sim.jira.options import DOCUMENTED_BURST, Faults
from ml_connector.sim.jira.ratelimit import RateLimits, burst_rate

EDIT = "PUT /rest/api/3/issue/{issueIdOrKey}"
READ = "GET /rest/api/3/issue/{issueIdOrKey}"
BULK = "POST /rest/api/3/issue/bulk"
DELETE = "DELETE /rest/api/3/issue/{issueIdOrKey}"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def limits(setting: Any) -> tuple[RateLimits, Clock]:
    clock = Clock()
    faults = Faults(burst_per_second=setting)
    return RateLimits(lambda: faults, clock=clock), clock


def refused(rl: RateLimits, endpoint: str, n: int) -> int:
    """How many of ``n`` requests sent at one instant get the burst 429."""
    count = 0
    for _ in range(n):
        try:
            rl.check_burst(endpoint)
        except ApiError as exc:
            assert exc.status == 429 and exc.headers["RateLimit-Reason"] == "jira-burst-based"
            count += 1
    return count


def test_documented_limits_per_method() -> None:
    rl, _ = limits("documented")
    assert refused(rl, EDIT, 80) == 30  # PUT: 50/s
    assert refused(rl, DELETE, 60) == 10  # DELETE: 50/s
    assert refused(rl, READ, 130) == 30  # GET: 100/s
    assert refused(rl, BULK, 100) == 0  # POST: 100/s
    assert refused(rl, BULK, 1) == 1


def test_the_bucket_refills_at_the_methods_rate() -> None:
    rl, clock = limits("documented")
    assert refused(rl, EDIT, 50) == 0
    assert refused(rl, EDIT, 1) == 1
    clock.now += 0.1  # 5 PUT tokens, 10 GET tokens
    assert refused(rl, EDIT, 6) == 1
    assert refused(rl, READ, 100) == 0
    clock.now += 0.1
    assert refused(rl, READ, 11) == 1
    clock.now += 10  # a full bucket holds one second's worth, no more
    assert refused(rl, EDIT, 51) == 1


def test_a_limit_header_names_the_methods_rate() -> None:
    rl, _ = limits("documented")
    refused(rl, EDIT, 50)
    with pytest.raises(ApiError) as caught:
        rl.check_burst(EDIT)
    assert caught.value.headers["X-RateLimit-Limit"] == "50"


def test_one_number_is_one_rate_for_every_method() -> None:
    rl, _ = limits(7)
    assert [refused(rl, e, 10) for e in (EDIT, READ, BULK)] == [3, 3, 3]


def test_a_mapping_limits_only_the_methods_it_names() -> None:
    rl, _ = limits({"put": 2, "GET": 4})
    assert refused(rl, EDIT, 5) == 3
    assert refused(rl, READ, 5) == 1
    assert refused(rl, BULK, 500) == 0


def test_off_and_invalid_settings() -> None:
    rl, _ = limits(None)
    assert refused(rl, EDIT, 500) == 0
    assert burst_rate("documented", "patch") is None
    assert burst_rate("documented", "put") == DOCUMENTED_BURST["PUT"] == 50
    for bad in (0, -1, {"PUT": 0}, "everything"):
        with pytest.raises(ValidationError):
            Faults(burst_per_second=bad)
