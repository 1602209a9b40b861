"""A real third-party client (pycontribs ``jira``) works against the simulator."""

from __future__ import annotations

from jira import JIRA

from .helpers import EMAIL, TOKEN, RunningSim


def test_pycontribs_connects_creates_searches_and_transitions(jira: RunningSim) -> None:
    client = JIRA(server=jira.url, basic_auth=(EMAIL, TOKEN), max_retries=0)
    try:
        assert client._is_cloud
        issue = client.create_issue(
            project="PROC",
            summary="From pycontribs",
            issuetype={"name": "Task"},
            labels=["pycontribs"],
            description="two\nlines",
        )
        found = client.enhanced_search_issues("project = PROC AND labels = pycontribs")
        assert [i.key for i in found] == [issue.key]
        assert found[0].fields.summary == "From pycontribs"
        client.transition_issue(issue, "Start Progress")
        assert client.issue(issue.key).fields.status.name == "In Progress"
    finally:
        client.close()
    counts = jira.sim.request_log()["counts"]
    assert counts["GET /rest/api/2/serverInfo"] == 1 and counts["POST /rest/api/2/issue/{id}/transitions"] == 1
