"""Burst limits per method over HTTP, and modelled server time that keeps the simulator serving other requests."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from .helpers import RunningSim, po_fields

EDIT_S = 0.3  # the realistic profile's edit (ml_connector.sim.servertime.PROFILES)


def _keys(jira: RunningSim, n: int) -> list[str]:
    keys: list[str] = []
    with jira.basic() as c:
        for start in range(0, n, 50):
            updates = [{"fields": po_fields(f"PO-{i}")} for i in range(start, min(n, start + 50))]
            body = c.post("/rest/api/3/issue/bulk", json={"issueUpdates": updates})
            assert body.status_code == 201, body.text
            keys += [i["key"] for i in body.json()["issues"]]
    return keys


def _edit(jira: RunningSim, key: str) -> tuple[int, float]:
    with jira.basic() as c:
        started = time.perf_counter()
        status = c.put(f"/rest/api/3/issue/{key}", json={"fields": {"summary": "edited"}}).status_code
        return status, time.perf_counter() - started


def test_burst_limit_per_method(jira: RunningSim) -> None:
    """A per-method mapping (small rates, so the refill during the burst stays below one token): PUTs and GETs
    each get their own rate, and POST, not in the mapping, is not limited."""
    key = _keys(jira, 1)[0]
    jira.control.put("/_sim/faults", json={"burst_per_second": {"PUT": 2, "GET": 4}})
    with jira.basic() as c:
        puts = [c.put(f"/rest/api/3/issue/{key}", json={"fields": {"summary": f"s{i}"}}).status_code for i in range(4)]
        gets = [c.get(f"/rest/api/3/issue/{key}").status_code for _ in range(6)]
        posts = [c.post("/rest/api/3/search/jql", json={"jql": "project = PROC"}).status_code for _ in range(8)]
    assert puts == [204, 204, 429, 429]
    assert gets == [200] * 4 + [429, 429]
    assert posts == [200] * 8
    assert jira.control.put("/_sim/faults", json={"burst_per_second": "documented"}).json()["burst_per_second"] == (
        "documented"
    )
    assert jira.control.put("/_sim/faults", json={"burst_per_second": 0}).status_code == 400


def test_documented_burst_over_http_puts_50_gets_100(jira: RunningSim) -> None:
    """Bursts of 80 PUTs and 130 GETs on one instant of the limiter's clock (frozen, so no refill during the burst):
    50 PUTs and 100 GETs pass; the rest get the burst 429. Then a tenth of a second refills 5 PUTs."""
    keys = _keys(jira, 80)
    jira.control.put("/_sim/faults", json={"burst_per_second": "documented"})
    now = [5000.0]
    jira.sim.limits.clock = lambda: now[0]  # the reset before the next test builds a new limiter
    with jira.basic() as c:
        puts = [c.put(f"/rest/api/3/issue/{k}", json={"fields": {"summary": "x"}}) for k in keys]
        gets = [c.get(f"/rest/api/3/issue/{keys[0]}").status_code for _ in range(130)]
        now[0] += 0.1
        again = [c.put(f"/rest/api/3/issue/{k}", json={"fields": {"summary": "y"}}).status_code for k in keys[:8]]
    assert [p.status_code for p in puts] == [204] * 50 + [429] * 30
    assert puts[-1].headers["RateLimit-Reason"] == "jira-burst-based" and puts[-1].headers["X-RateLimit-Limit"] == "50"
    assert gets == [200] * 100 + [429] * 30
    assert again == [204] * 5 + [429] * 3


def test_server_time_delays_the_answer(jira: RunningSim) -> None:
    key = _keys(jira, 1)[0]
    assert _edit(jira, key)[1] < EDIT_S  # no profile: no server time (a loopback call takes milliseconds)
    jira.control.put("/_sim/faults", json={"server_time_profile": "realistic"})
    status, seconds = _edit(jira, key)
    assert status == 204 and seconds >= EDIT_S
    with jira.basic() as c:
        started = time.perf_counter()
        assert c.post("/rest/api/3/search/jql", json={"jql": "project = PROC"}).status_code == 200
        assert time.perf_counter() - started >= 0.4
        started = time.perf_counter()
        bad = c.put(f"/rest/api/3/issue/{key}", json={"fields": {"nosuchfield": 1}})
        assert bad.status_code == 400 and time.perf_counter() - started < EDIT_S  # a refusal costs no work


def test_slow_requests_do_not_block_each_other(jira: RunningSim) -> None:
    """Ten edits at once finish in about one edit's server time, not ten."""
    keys = _keys(jira, 10)
    jira.control.put("/_sim/faults", json={"server_time_profile": "realistic"})
    with ThreadPoolExecutor(len(keys)) as pool:
        started = time.perf_counter()
        results = list(pool.map(lambda k: _edit(jira, k), keys))
        elapsed = time.perf_counter() - started
    assert all(status == 204 and seconds >= EDIT_S for status, seconds in results)
    assert elapsed < len(keys) * EDIT_S / 2, elapsed
