"""/search/jql paging, index lag and the JQL subset of the simulated Jira."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from .helpers import RunningSim


def test_paging_1000_issues_exactly_once_with_index_lag(jira: RunningSim) -> None:
    jira.control.put("/_sim/faults", json={"index_lag_seconds": 30})
    with jira.basic() as c:
        for chunk in range(20):
            body = {
                "issueUpdates": [
                    {
                        "fields": {
                            "project": {"key": "MAINT"},
                            "issuetype": {"name": "Work Order"},
                            "summary": f"WO {chunk}-{i}",
                            "customfield_10053": f"WO-{chunk}-{i}",
                            "labels": ["bulk"],
                        }
                    }
                    for i in range(50)
                ]
            }
            assert c.post("/rest/api/3/issue/bulk", json=body).status_code == 201
        jql = {
            "jql": "project = MAINT AND labels = bulk ORDER BY created ASC, key ASC",
            "maxResults": 100,
            "fields": ["summary"],
        }
        assert c.post("/rest/api/3/search/jql", json=jql).json()["issues"] == []  # not indexed yet
        fresh = c.post("/rest/api/3/search/jql", json={**jql, "reconcileIssues": [10001, 10002]}).json()["issues"]
        assert [i["id"] for i in fresh] == ["10001", "10002"]  # read-after-write through reconcileIssues
        jira.control.put("/_sim/clock", json={"advance_seconds": 31})
        seen: list[str] = []
        token: str | None = None
        pages = 0
        while True:
            body = dict(jql) if token is None else {**jql, "nextPageToken": token}
            page = c.post("/rest/api/3/search/jql", json=body).json()
            pages += 1
            seen += [i["key"] for i in page["issues"]]
            # Edits while paging (they show up only after the lag) must not shift the pages.
            c.put(f"/rest/api/3/issue/{page['issues'][0]['key']}", json={"fields": {"summary": "edited"}})
            if page["isLast"]:
                assert "nextPageToken" not in page
                break
            token = page["nextPageToken"]
        assert pages == 10 and len(seen) == 1000 and len(set(seen)) == 1000
        assert seen[:2] == ["MAINT-1", "MAINT-2"]
        stale = c.post("/rest/api/3/search/jql", json={**jql, "nextPageToken": "bogus"})
        assert stale.status_code == 400


@pytest.mark.parametrize(
    ("jql", "message"),
    [
        ("ORDER BY key DESC", "Unbounded JQL queries are not allowed here."),
        ("", "Unbounded JQL queries are not allowed here."),
        ("project = ", "Expecting either a value, list or function before the end of the query."),
        ("project = PROC AND", "Expecting a field name before the end of the query."),
        ("projct = PROC", "Field 'projct' does not exist or you do not have permission to view it."),
        ("project = NOPE", "The value 'NOPE' does not exist for the field 'project'."),
        ("status = Nonsense", "The value 'Nonsense' does not exist for the field 'status'."),
        ("project ~ PROC", "The operator '~' is not supported by the 'project' field."),
        ('cf[10053] = "PO-1"', "The operator '=' is not supported by the 'cf[10053]' field."),
        ("reporter = a@b.com", "The character '@' is a reserved JQL character."),
        ('summary ~ "a\\qb"', "is an illegal JQL escape sequence"),
        ('summary ~ "open', "has not been completed"),
        ('updated > "31/01/2025"', "Date value '31/01/2025' for field 'updated' is invalid."),
        ("project = PROC ORDER BY nonsense", "Field 'nonsense' does not exist"),
        ("project = PROC order by key, id, created, updated, status, priority, summary, project", "at most 7 fields"),
        ("(project = PROC", "Expecting ')' before the end of the query."),
        ("project = PROC foo", "Expecting either 'OR' or 'AND' but got 'foo'."),
    ],
)
def test_bad_jql_is_a_400_with_jira_message(jira: RunningSim, jql: str, message: str) -> None:
    with jira.basic() as c:
        response = c.get("/rest/api/3/search/jql", params={"jql": jql})
        assert response.status_code == 400
        body = response.json()
        assert body["errors"] == {} and len(body["errorMessages"]) == 1
        assert message in body["errorMessages"][0]


def test_removed_search_answers_410(jira: RunningSim) -> None:
    with jira.basic() as c:
        for method in ("GET", "POST"):
            response = c.request(method, "/rest/api/3/search", params={"jql": "project = PROC"})
            assert response.status_code == 410
            assert "/rest/api/3/search/jql" in response.json()["errorMessages"][0]


def _keys(c: object, jql: str) -> list[str]:
    response = c.get("/rest/api/3/search/jql", params={"jql": jql, "fields": "key", "maxResults": 100})  # type: ignore[attr-defined]
    assert response.status_code == 200, response.text
    return [i["key"] for i in response.json()["issues"]]


def test_jql_subset_semantics(jira: RunningSim) -> None:
    sim = jira.sim
    sim.seed_issues(
        [
            {
                "project": "PROC",
                "issuetype": "Purchase Order",
                "summary": 'Pump "A" \\ spare',
                "fields": {
                    "customfield_10053": "PO-123",
                    "customfield_10050": "4000",
                    "customfield_10051": {"value": "CC-100"},
                },
                "labels": ["ifs", "ifs-PO-123"],
                "properties": [{"key": "ml-connector", "value": {"ifsKey": "PO-123"}}],
                "created": "2025-01-31T18:00:00Z",
                "updated": "2025-01-31T18:00:30Z",
            },  # 10:00:30 in Los Angeles
            {
                "project": "PROC",
                "issuetype": "Task",
                "summary": "Valve",
                "labels": ["other"],
                "status": "Done",
                "created": "2025-01-31T19:00:00Z",
                "updated": "2025-01-31T19:00:00Z",
            },
            {
                "project": "MAINT",
                "issuetype": "Work Order",
                "summary": "Pump check",
                "fields": {"customfield_10053": "WO-9", "customfield_10060": "CC-100 text"},
                "created": "2025-02-01T00:00:00Z",
                "updated": "2025-02-01T00:00:00Z",
            },
        ]
    )
    with jira.basic() as c:
        assert _keys(c, "project = PROC ORDER BY key") == ["PROC-1", "PROC-2"]
        assert _keys(c, "project in (PROC, MAINT) AND labels = ifs-PO-123") == ["PROC-1"]
        assert _keys(c, "project = PROC AND labels != ifs ORDER BY key") == ["PROC-2"]
        assert _keys(c, 'summary ~ "pump" ORDER BY key DESC') == ["PROC-1", "MAINT-1"]
        assert _keys(c, 'summary ~ "\\"A\\" \\\\"') == ["PROC-1"]
        assert _keys(c, 'cf[10053] ~ "PO-123"') == ["PROC-1"]
        assert _keys(c, '"IFS Reference" ~ "WO-9"') == ["MAINT-1"]
        assert _keys(c, '"Cost Center" = "CC-100"') == ["PROC-1"]  # the select field of that name
        assert _keys(c, '"Cost Center" ~ "text"') == ["MAINT-1"]  # the text field of that name
        assert _keys(c, 'issue.property[ml-connector].ifsKey = "PO-123"') == ["PROC-1"]
        assert _keys(c, "statusCategory = Done") == ["PROC-2"]
        assert _keys(c, "project = PROC AND NOT status = Done") == ["PROC-1"]
        assert _keys(c, "(project = MAINT OR labels = other) AND issuetype != Task") == ["MAINT-1"]
        # Datetimes are read in the account's zone (UTC-8 in January) and compared at minute precision.
        assert _keys(c, 'project = PROC AND updated >= "2025-01-31 10:00" ORDER BY key') == ["PROC-1", "PROC-2"]
        assert _keys(c, 'project = PROC AND updated > "2025-01-31 10:00"') == ["PROC-2"]
        assert _keys(c, 'project = PROC AND updated <= "2025-01-31 10:00"') == ["PROC-1"]
        assert _keys(c, 'created < "2025-01-31" OR created >= "2025-01-31 16:00"') == ["MAINT-1"]
        assert _keys(c, "project = PROC AND updated >= -5m") == []
        assert _keys(c, "assignee is EMPTY AND project = MAINT") == ["MAINT-1"]
        assert _keys(c, "key in (PROC-2, MAINT-1) ORDER BY key") == ["MAINT-1", "PROC-2"]
    rendered = jira.sim.issue_json(jira.sim.get_issue("PROC-1"))["fields"]["updated"]
    assert rendered == "2025-01-31T10:00:30.000-0800"
    assert datetime(2025, 1, 31, 18, tzinfo=UTC) == jira.sim.get_issue("PROC-1").created
