"""The wire-level fault kinds of ``fail_next`` over real HTTP: drops before and after acting, HTML pages, truncated
bodies and hangs, with the method filter; the issue either exists afterwards or it does not."""

from __future__ import annotations

import time
from typing import Any

import httpx2
import pytest

from .helpers import CLIENT_ID, CLIENT_SECRET, RunningSim, po_fields

# A closed connection reaches the client as a clean close or, when the server left request bytes unread, a reset.
DROPPED = (httpx2.RemoteProtocolError, httpx2.ReadError)
BULK = "/rest/api/3/issue/bulk"


def _faults(jira: RunningSim, *rules: dict[str, Any]) -> None:
    response = jira.control.put("/_sim/faults", json={"fail_next": list(rules)})
    assert response.status_code == 200, response.text


def _bulk(c: httpx2.Client, ref: str) -> httpx2.Response:
    return c.post(BULK, json={"issueUpdates": [{"fields": po_fields(ref)}]})


def _exists(jira: RunningSim, ref: str) -> bool:
    return any(f"ifs-{ref}" in i["labels"] for i in jira.sim.list_raw("PROC"))


def test_drop_before_does_not_create(jira: RunningSim) -> None:
    _faults(jira, {"kind": "drop_before", "method": "POST", "path_contains": "/issue/bulk"})
    with jira.basic() as c, pytest.raises(DROPPED):
        _bulk(c, "PO-DB")
    assert not _exists(jira, "PO-DB")
    entry = next(r for r in jira.sim.request_log()["requests"] if r["path"] == BULK)
    assert entry["status"] == 0


def test_drop_after_creates_then_drops(jira: RunningSim) -> None:
    _faults(jira, {"kind": "drop_after", "method": "POST", "path_contains": "/issue/bulk"})
    with jira.basic() as c, pytest.raises(DROPPED):
        _bulk(c, "PO-DA")
    assert _exists(jira, "PO-DA")


def test_truncated_creates_and_cuts_the_json(jira: RunningSim) -> None:
    _faults(jira, {"kind": "truncated", "path_contains": "/issue/bulk"})
    received = bytearray()
    with jira.basic() as c:
        with (
            pytest.raises(DROPPED),
            c.stream("POST", BULK, json={"issueUpdates": [{"fields": po_fields("PO-TR")}]}) as response,
        ):
            assert response.status_code == 201
            assert response.headers["content-type"].startswith("application/json")
            declared = int(response.headers["content-length"])
            for chunk in response.iter_raw():
                received.extend(chunk)
        assert 0 < len(received) < declared
        assert _bulk(c, "PO-AFTER").status_code == 201  # one use only
    assert _exists(jira, "PO-TR")


def test_truncated_without_a_body_is_dropped_after_acting(jira: RunningSim) -> None:
    with jira.basic() as c:
        issue = _bulk(c, "PO-ED").json()["issues"][0]["id"]
        _faults(jira, {"kind": "truncated", "method": "PUT", "path_contains": f"/issue/{issue}"})
        with pytest.raises(DROPPED):
            c.put(f"/rest/api/3/issue/{issue}", json={"fields": {"summary": "edited under a cut"}})
        assert c.get(f"/rest/api/3/issue/{issue}").json()["fields"]["summary"] == "edited under a cut"


def test_html_page_without_creating(jira: RunningSim) -> None:
    _faults(jira, {"kind": "html", "method": "POST", "path_contains": "/issue/bulk"})
    with jira.basic() as c:
        response = _bulk(c, "PO-HT")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html") and "<html" in response.text
    assert not _exists(jira, "PO-HT")


def test_html_on_the_oauth_token_endpoint(jira: RunningSim) -> None:
    _faults(jira, {"kind": "html", "path_contains": "/oauth/token"})
    response = jira.control.post(
        "/oauth/token",
        json={
            "grant_type": "refresh_token",
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "refresh_token": "whatever",
        },
    )
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")


def test_method_filter_leaves_reads_alone(jira: RunningSim) -> None:
    with jira.basic() as c:
        issue = _bulk(c, "PO-MF").json()["issues"][0]["id"]
        _faults(jira, {"kind": "drop_before", "method": "PUT", "path_contains": f"/issue/{issue}", "count": 1000})
        for _ in range(3):
            assert c.get(f"/rest/api/3/issue/{issue}").status_code == 200
        with pytest.raises(DROPPED):
            c.put(f"/rest/api/3/issue/{issue}", json={"fields": {"summary": "never"}})
    assert jira.sim.faults.fail_next[0].count == 999


def test_hang_answers_late(jira: RunningSim) -> None:
    _faults(jira, {"kind": "hang", "hang_seconds": 0.5, "path_contains": "/myself"})
    started = time.monotonic()
    with jira.basic() as c:
        assert c.get("/rest/api/3/myself").status_code == 200
    assert time.monotonic() - started >= 0.5


def test_hang_outlasts_the_client_and_is_abandoned(jira: RunningSim) -> None:
    _faults(jira, {"kind": "hang", "method": "POST", "path_contains": "/issue/bulk"})  # default 30 s
    started = time.monotonic()
    with jira.basic() as c, pytest.raises(httpx2.ReadTimeout):
        c.post(BULK, json={"issueUpdates": [{"fields": po_fields("PO-HG")}]}, timeout=httpx2.Timeout(5, read=0.3))
    assert time.monotonic() - started < 5
    deadline = time.monotonic() + 5
    while not any(r["path"] == BULK for r in jira.sim.request_log()["requests"]) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert [r["status"] for r in jira.sim.request_log()["requests"] if r["path"] == BULK] == [0]
    assert not _exists(jira, "PO-HG")


def test_status_kind_is_the_default(jira: RunningSim) -> None:
    _faults(jira, {"status": 500, "method": "GET", "path_contains": "/field"})
    with jira.basic() as c:
        assert c.get("/rest/api/3/field").status_code == 500
        assert c.get("/rest/api/3/field").status_code == 200


def test_unknown_kind_is_refused(jira: RunningSim) -> None:
    assert jira.control.put("/_sim/faults", json={"fail_next": [{"kind": "explode"}]}).status_code >= 400
