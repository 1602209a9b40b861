"""The simulator's search index in process: lagged changes never regress an issue, page tokens are reusable."""

from __future__ import annotations

from typing import Any

import pytest

from ml_connector.sim.jira import JiraSim, JiraSimOptions
from ml_connector.sim.jira.common import ApiError, Principal


@pytest.fixture
def sim() -> JiraSim:
    return JiraSim(JiraSimOptions())


def _search(sim: JiraSim, jql: str, token: str | None = None, size: int = 50) -> dict[str, Any]:
    return sim.search(
        jql=jql,
        next_page_token=token,
        max_results=size,
        fields=["summary"],
        expand="",
        properties=[],
        reconcile=[],
        principal=Principal(sim.me.account_id, "basic"),
    )


def _summaries(sim: JiraSim, jql: str) -> list[str]:
    return [i["fields"]["summary"] for i in _search(sim, jql)["issues"]]


def test_an_older_change_due_later_never_replaces_a_newer_one(sim: JiraSim) -> None:
    [issue] = sim.seed_issues([{"project": "PROC", "issuetype": "Task", "summary": "v0", "labels": ["idx"]}])
    sim.set_faults({"index_lag_seconds": 10})
    sim.edit_issue(issue.key, {"fields": {"summary": "v1"}}, sim.me.account_id)  # due in 10 s
    sim.set_faults({"index_lag_seconds": 0})
    sim.edit_issue(issue.key, {"fields": {"summary": "v2"}}, sim.me.account_id)  # due now, queued behind v1
    assert _summaries(sim, "labels = idx") == ["v2"]
    sim.advance_clock(11)  # v1 comes due, late: the index keeps v2
    assert _summaries(sim, "labels = idx") == ["v2"]


def test_a_token_gives_the_same_page_until_it_expires(sim: JiraSim) -> None:
    sim.seed_issues([{"project": "PROC", "issuetype": "Task", "summary": f"s{i}", "labels": ["tok"]} for i in range(5)])
    jql = "labels = tok ORDER BY key ASC"
    token = _search(sim, jql, size=2)["nextPageToken"]
    first, second = _search(sim, jql, token, size=2), _search(sim, jql, token, size=2)
    assert first == second and [i["fields"]["summary"] for i in first["issues"]] == ["s2", "s3"]
    sim.advance_clock(7 * 86400 + 1)
    with pytest.raises(ApiError) as info:
        _search(sim, jql, token, size=2)
    assert info.value.status == 400


def test_status_changed_reads_the_index_copy_and_its_history(sim: JiraSim) -> None:
    """A transition is searchable by ``status CHANGED`` only once the index has it; an edit or a seeded status is
    not a status change, and a move to another workflow that changes the status is one."""
    [moved, edited, kept] = sim.seed_issues(
        [
            {"project": "PROC", "issuetype": "Task", "summary": s, "labels": ["hist"]}
            for s in ("moved", "edited", "kept")
        ]
    )
    sim.set_faults({"index_lag_seconds": 10})
    sim.transition_to_status(moved.key, "In Progress", "712020:someone")
    sim.edit_issue(edited.key, {"fields": {"summary": "edited again"}}, sim.me.account_id)
    assert _summaries(sim, "labels = hist AND status CHANGED") == []  # not searchable yet
    sim.advance_clock(11)
    assert _summaries(sim, "labels = hist AND status CHANGED") == ["moved"]
    assert _summaries(sim, 'labels = hist AND status CHANGED TO "In Progress" AFTER -1h') == ["moved"]
    sim.set_faults({"index_lag_seconds": 0})
    sim.move_issue(kept.key, "MAINT", None, sim.me.account_id)  # To Do is not in workflow B: Open, a status change
    assert sorted(_summaries(sim, "labels = hist AND status CHANGED")) == ["kept", "moved"]
