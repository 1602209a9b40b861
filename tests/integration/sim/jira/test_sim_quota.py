"""The points quota of OAuth apps (jira-api.md §9): costs, pools, headers, the quota 429 and the hourly reset."""

from __future__ import annotations

import pytest

from ml_connector.sim.jira.ratelimit import points_cost

from .helpers import RunningSim, po_fields


def _quota(jira: RunningSim, **faults: object) -> str:
    jira.control.put("/_sim/faults", json={"access_token_lifetime_seconds": 86400, **faults})
    return str(jira.oauth_tokens()["access_token"])


def test_costs_follow_the_fact_sheet() -> None:
    assert points_cost("POST", "/rest/api/3/issue", 201, {"key": "PO-1"}) == 1  # writes: the base point
    assert points_cost("GET", "/rest/api/3/issue/{issueIdOrKey}", 200, {"key": "PO-1"}) == 2
    assert points_cost("POST", "/rest/api/3/search/jql", 200, {"issues": [{}] * 50}) == 51
    assert points_cost("GET", "/rest/api/3/user/search", 200, [{}, {}]) == 5  # identity objects: 2 each
    assert points_cost("GET", "/rest/api/3/issue/{issueIdOrKey}", 404, {"errorMessages": []}) == 1


def test_oauth_pays_points_and_basic_does_not(jira: RunningSim) -> None:
    access = _quota(jira, quota_global_points=100)
    with jira.bearer(access) as c:
        created = c.post("/rest/api/3/issue", json={"fields": po_fields("PO-1")})
        assert created.headers["X-RateLimit-Limit"] == "100" and created.headers["X-RateLimit-Remaining"] == "99"
        assert created.headers["RateLimit-Policy"] == '"global-app-quota";q=100;w=3600'
        assert created.headers["RateLimit"].startswith('"global-app-quota";t=')
        read = c.get(f"/rest/api/3/issue/{created.json()['key']}")
        assert read.headers["X-RateLimit-Remaining"] == "97"
        assert "X-RateLimit-NearLimit" not in read.headers and "RateLimit-Reason" not in read.headers
    with jira.basic() as c:
        plain = c.get("/rest/api/3/myself")
        assert plain.status_code == 200 and "X-RateLimit-Remaining" not in plain.headers
    assert jira.control.get("/_sim/quota").json()["pools"] == [{"name": "global", "size": 100, "used": 3}]


@pytest.mark.parametrize(
    ("pool", "reason"), [("global", "jira-quota-global-based"), ("tenant", "jira-quota-tenant-based")]
)
def test_a_spent_pool_answers_429_until_the_top_of_the_hour(jira: RunningSim, pool: str, reason: str) -> None:
    access = _quota(jira, **{f"quota_{pool}_points": 10})
    jira.control.put("/_sim/clock", json={"offset_seconds": 0})
    with jira.bearer(access) as c:
        near = [c.post("/rest/api/3/issue", json={"fields": po_fields(f"PO-{i}")}) for i in range(10)][-2]
        assert near.headers["X-RateLimit-NearLimit"] == "true"
        assert ";r=1;" in near.headers["RateLimit"]
        limited = c.get("/rest/api/3/myself")
        assert limited.status_code == 429 and limited.headers["RateLimit-Reason"] == reason
        assert 0 < int(limited.headers["Retry-After"]) <= 3600 and limited.headers["X-RateLimit-Reset"].endswith("Z")
        jira.control.put("/_sim/clock", json={"advance_seconds": int(limited.headers["Retry-After"]) + 1})
        again = c.get("/rest/api/3/myself")
        assert again.status_code == 200 and again.headers["X-RateLimit-Remaining"] == "7"  # a user costs 1 + 2


def test_other_tenants_share_the_global_pool_and_beta_headers(jira: RunningSim) -> None:
    access = _quota(jira, quota_global_points=1000, quota_tenant_points=500, quota_beta_headers=True)
    jira.control.put("/_sim/quota", json={"spend_global": 999})
    with jira.bearer(access) as c:
        last = c.post("/rest/api/3/issue", json={"fields": po_fields("PO-1")})
        assert last.headers["X-RateLimit-Remaining"] == "0"
        policies = last.headers["Beta-RateLimit-Policy"]
        assert policies == '"global-app-quota";q=1000;w=3600, "tenant-app-quota";q=500;w=3600'
        limited = c.get("/rest/api/3/myself")
        assert limited.headers["RateLimit-Reason"] == "jira-quota-global-based"
