"""/search/jql page tokens (reusable until they expire) and eventual consistency (lag, jitter, reconcileIssues)."""

from __future__ import annotations

from typing import Any

import httpx2

from .helpers import RunningSim

JQL = "project = PROC AND labels = paging ORDER BY key ASC"
BAD_TOKEN = "The provided next page token is invalid or expired."


def _seed(jira: RunningSim, count: int, label: str = "paging") -> list[str]:
    spec = {"project": "PROC", "issuetype": "Task", "labels": [label]}
    specs = [{**spec, "summary": f"{label} {i}"} for i in range(count)]
    response = jira.control.post("/_sim/issues", json={"issues": specs})
    assert response.status_code == 201, response.text
    return [i["key"] for i in response.json()["issues"]]


def _page(c: httpx2.Client, token: str | None = None, jql: str = JQL, **extra: Any) -> httpx2.Response:
    body: dict[str, Any] = {"jql": jql, "maxResults": 2, "fields": ["summary", "status"], **extra}
    if token is not None:
        body["nextPageToken"] = token
    return c.post("/rest/api/3/search/jql", json=body)


def _keys(page: httpx2.Response) -> list[str]:
    assert page.status_code == 200, page.text
    return [i["key"] for i in page.json()["issues"]]


def _status_of(c: httpx2.Client, key: str, **extra: Any) -> str | None:
    body = {"jql": f"key = {key}", "fields": ["status"], **extra}
    issues = c.post("/rest/api/3/search/jql", json=body).json()["issues"]
    return str(issues[0]["fields"]["status"]["name"]) if issues else None


def test_a_page_token_is_reusable_and_gives_the_same_page(jira: RunningSim) -> None:
    keys = _seed(jira, 5)
    with jira.basic() as c:
        first = _page(c)
        assert _keys(first) == keys[:2]
        token = first.json()["nextPageToken"]
        again = _page(c, token)
        twice = _page(c, token)  # a lost answer retried: the same page and the same next token
        assert _keys(again) == _keys(twice) == keys[2:4]
        assert again.json()["nextPageToken"] == twice.json()["nextPageToken"]
        # Issues created after the first page do not shift a reused token's page.
        _seed(jira, 2)
        last = _page(c, again.json()["nextPageToken"])
        assert _keys(last) == keys[4:] and last.json()["isLast"] is True and "nextPageToken" not in last.json()
        assert _keys(_page(c, token)) == keys[2:4]


def test_an_expired_unknown_or_foreign_token_is_a_400(jira: RunningSim) -> None:
    _seed(jira, 3)
    with jira.basic() as c:
        token = _page(c).json()["nextPageToken"]
        for answer in (_page(c, "bogus"), _page(c, token, jql="project = PROC ORDER BY key DESC")):
            assert answer.status_code == 400
            assert answer.json() == {"errorMessages": [BAD_TOKEN], "errors": {}}
        jira.control.put("/_sim/clock", json={"advance_seconds": 7 * 86400 - 60})
        assert _page(c, token).status_code == 200  # "will expire in 7 days": not yet
        jira.control.put("/_sim/clock", json={"advance_seconds": 120})
        expired = _page(c, token)
        assert expired.status_code == 400 and expired.json()["errorMessages"] == [BAD_TOKEN]


def test_lag_hides_new_issues_and_status_changes_until_due_but_not_from_reads(jira: RunningSim) -> None:
    [old] = _seed(jira, 1)
    jira.control.put("/_sim/faults", json={"index_lag_seconds": 5})
    [new] = _seed(jira, 1)
    jira.control.post(f"/_sim/issues/{old}/transition", json={"status": "In Progress"})
    new_id = jira.sim.get_issue(new).id
    with jira.basic() as c:
        assert _keys(_page(c)) == [old]  # the create is not searchable yet
        assert _status_of(c, old) == "To Do"  # nor the transition
        assert c.get(f"/rest/api/3/issue/{old}", params={"fields": "status"}).json()["fields"]["status"]["name"] == (
            "In Progress"
        )  # a read is always fresh
        old_id = jira.sim.get_issue(old).id
        fresh = _page(c, reconcileIssues=[old_id, new_id])
        assert _keys(fresh) == [old, new]
        assert fresh.json()["issues"][0]["fields"]["status"]["name"] == "In Progress"
        jira.control.put("/_sim/clock", json={"advance_seconds": 4})
        assert _keys(_page(c)) == [old]
        jira.control.put("/_sim/clock", json={"advance_seconds": 2})
        assert _keys(_page(c)) == [old, new] and _status_of(c, old) == "In Progress"


def test_jitter_shows_changes_out_of_order_but_never_an_older_state(jira: RunningSim) -> None:
    keys = _seed(jira, 20)
    jira.control.put("/_sim/faults", json={"index_lag_seconds": 1, "index_lag_jitter_seconds": 20, "seed": 3})
    for key in keys:  # changed in key order, one second apart
        jira.control.post(f"/_sim/issues/{key}/transition", json={"status": "In Progress"})
        jira.control.put("/_sim/clock", json={"advance_seconds": 1})
    for status in ("Done", "To Do"):  # the last issue moves on twice: the index must end with its newest state
        jira.control.post(f"/_sim/issues/{keys[-1]}/transition", json={"status": status})
    seen_order: list[str] = []
    last_states: list[str | None] = []
    with jira.basic() as c:
        for _ in range(30):
            moved = c.post(
                "/rest/api/3/search/jql",
                json={"jql": 'labels = paging AND status = "In Progress"', "fields": ["key"], "maxResults": 100},
            ).json()["issues"]
            seen_order += sorted({i["key"] for i in moved} - set(seen_order))
            last_states.append(_status_of(c, keys[-1]))
            jira.control.put("/_sim/clock", json={"advance_seconds": 1})
        assert _status_of(c, keys[-1]) == "To Do"
    in_order = [k for k in seen_order if k != keys[-1]]
    assert sorted(in_order) == sorted(keys[:-1])
    assert in_order != keys[:-1]  # visible out of the order they happened
    after_newest = last_states[last_states.index("To Do") :]
    assert set(after_newest) == {"To Do"}  # once the newest state showed, no older one came back
