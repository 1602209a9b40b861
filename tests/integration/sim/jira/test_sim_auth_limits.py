"""OAuth 3LO with rotating refresh tokens, the /ex/jira prefix, 429s, faults and the request log."""

from __future__ import annotations

import httpx2

from .helpers import CLIENT_ID, CLIENT_SECRET, CLOUD_ID, RunningSim, po_fields


def _refresh(jira: RunningSim, token: str) -> httpx2.Response:
    return jira.control.post(
        "/oauth/token",
        json={
            "grant_type": "refresh_token",
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "refresh_token": token,
        },
    )


def test_oauth_rotation_rejects_a_used_refresh_token(jira: RunningSim) -> None:
    first = jira.oauth_tokens()
    resources = jira.control.get(
        "/oauth/token/accessible-resources", headers={"Authorization": f"Bearer {first['access_token']}"}
    ).json()
    assert resources[0]["id"] == CLOUD_ID and "write:jira-work" in resources[0]["scopes"]
    second = _refresh(jira, first["refresh_token"])
    assert second.status_code == 200
    assert second.json()["refresh_token"] != first["refresh_token"]
    reused = _refresh(jira, first["refresh_token"])
    assert reused.status_code == 403 and reused.json()["error"] == "invalid_grant"
    assert _refresh(jira, second.json()["refresh_token"]).status_code == 200
    bad_secret = jira.control.post(
        "/oauth/token",
        json={"grant_type": "refresh_token", "client_id": CLIENT_ID, "client_secret": "nope", "refresh_token": "x"},
    )
    assert bad_secret.status_code == 401
    no_offline = jira.oauth_tokens(scope="read:jira-work")
    assert "refresh_token" not in no_offline


def test_revoking_the_app_ends_every_token_until_a_new_consent(jira: RunningSim) -> None:
    first, second = jira.oauth_tokens(), jira.oauth_tokens()
    assert jira.control.post("/_sim/oauth/revoke").json() == {"revoked": 2}
    for grant in (first, second):
        refused = _refresh(jira, grant["refresh_token"])
        assert refused.status_code == 403 and refused.json()["error"] == "invalid_grant"
        with jira.bearer(grant["access_token"]) as c:
            assert c.get("/rest/api/3/myself").status_code == 401
    assert jira.control.post("/_sim/oauth/revoke").json() == {"revoked": 0}
    fresh = jira.oauth_tokens()  # consent again: a new grant works
    with jira.bearer(fresh["access_token"]) as c:
        assert c.get("/rest/api/3/myself").status_code == 200
    assert _refresh(jira, fresh["refresh_token"]).status_code == 200


def test_bearer_under_ex_prefix_and_expiry(jira: RunningSim) -> None:
    access = jira.oauth_tokens()["access_token"]
    with jira.bearer(access) as c:
        assert c.get("/rest/api/3/myself").status_code == 200
        created = c.post("/rest/api/3/issue", json={"fields": po_fields("PO-1")}).json()
        assert created["self"].startswith(f"{jira.url}/ex/jira/{CLOUD_ID}/rest/api/3/issue/")
    basic_on_prefix = jira.basic().get(f"/ex/jira/{CLOUD_ID}/rest/api/3/myself")
    assert basic_on_prefix.status_code == 401
    wrong_cloud = jira.control.get(
        "/ex/jira/00000000-0000-0000-0000-000000000000/rest/api/3/myself", headers={"Authorization": f"Bearer {access}"}
    )
    assert wrong_cloud.status_code == 404
    assert jira.control.get("/rest/api/3/myself", auth=("connector@example.com", "wrong")).status_code == 401
    jira.control.put("/_sim/clock", json={"advance_seconds": 3601})
    with jira.bearer(access) as c:
        assert c.get("/rest/api/3/myself").status_code == 401


def test_burst_and_per_issue_rate_limits(jira: RunningSim) -> None:
    with jira.basic() as c:
        key = c.post("/rest/api/3/issue", json={"fields": po_fields("PO-1")}).json()["key"]
        other = c.post("/rest/api/3/issue", json={"fields": po_fields("PO-2")}).json()["key"]
        jira.control.put("/_sim/faults", json={"per_issue_writes_per_second": 2, "retry_after_seconds": 3})
        statuses = [
            c.put(f"/rest/api/3/issue/{key}", json={"fields": {"summary": f"s{i}"}}).status_code for i in range(3)
        ]
        assert statuses == [204, 204, 429]
        limited = c.put(f"/rest/api/3/issue/{key}", json={"fields": {"summary": "again"}})
        assert limited.headers["RateLimit-Reason"] == "jira-per-issue-on-write"
        assert limited.headers["Retry-After"] == "3"
        assert c.put(f"/rest/api/3/issue/{other}", json={"fields": {"summary": "fine"}}).status_code == 204
        assert c.get(f"/rest/api/3/issue/{key}").status_code == 200  # reads are not per-issue limited

        jira.control.put("/_sim/faults", json={"per_issue_writes_per_second": None, "burst_per_second": 3})
        codes = [c.get("/rest/api/3/field").status_code for _ in range(5)]
        assert codes[:3] == [200, 200, 200] and codes[-1] == 429
        burst = c.get("/rest/api/3/field")
        assert burst.headers["RateLimit-Reason"] == "jira-burst-based" and burst.headers["Retry-After"] == "3"
        assert c.get("/rest/api/3/priority").status_code == 200  # another endpoint has its own bucket


def test_fail_next_5xx_and_request_log(jira: RunningSim) -> None:
    jira.control.put(
        "/_sim/faults", json={"fail_next": [{"status": 503, "count": 2, "path_contains": "/field", "retry_after": 2}]}
    )
    with jira.basic() as c:
        answers = [c.get("/rest/api/3/field") for _ in range(3)]
        assert [a.status_code for a in answers] == [503, 503, 200]
        assert answers[0].headers["Retry-After"] == "2"
        c.post("/rest/api/3/issue/bulk", json={"issueUpdates": [{"fields": po_fields("PO-1")}]})
        c.get("/rest/api/3/issue/PROC-1")
        c.get("/rest/api/3/issue/10001/properties/x")
        jira.control.get("/_sim/issues")  # control calls are not logged
        log = jira.control.get("/_sim/requests").json()
    assert log["counts"] == {
        "GET /rest/api/3/field": 3,
        "POST /rest/api/3/issue/bulk": 1,
        "GET /rest/api/3/issue/{id}": 1,
        "GET /rest/api/3/issue/{id}/properties/{id}": 1,
    }
    assert [r["status"] for r in log["requests"]] == [503, 503, 200, 201, 200, 404]
    assert {r["auth"] for r in log["requests"]} == {"basic"}
    assert jira.control.delete("/_sim/requests").status_code == 204
    assert jira.control.get("/_sim/requests").json() == {"requests": [], "counts": {}, "record_exchanges": False}
    jira.control.put("/_sim/faults", json={"error_5xx_rate": 1.0})
    assert jira.basic().get("/rest/api/3/field").status_code == 503
