"""Workflows: transitions per current status, different ids per workflow, a transition with a required field."""

from __future__ import annotations

from .helpers import RunningSim


def test_transitions_differ_per_workflow_and_require_fields(jira: RunningSim) -> None:
    proc, maint = jira.sim.seed_issues(
        [{"project": "PROC"}, {"project": "MAINT", "issuetype": "Work Order", "fields": {"customfield_10053": "WO-1"}}]
    )
    with jira.basic() as c:
        proc_t = c.get(f"/rest/api/3/issue/{proc.key}/transitions").json()["transitions"]
        maint_t = c.get(f"/rest/api/3/issue/{maint.key}/transitions").json()["transitions"]
        assert {(t["id"], t["to"]["name"]) for t in proc_t} == {("11", "In Progress"), ("41", "Cancelled")}
        assert ("4", "In Progress") in {(t["id"], t["to"]["name"]) for t in maint_t}
        wrong = c.post(f"/rest/api/3/issue/{proc.key}/transitions", json={"transition": {"id": "4"}})
        assert wrong.status_code == 400
        assert wrong.json()["errorMessages"] == ["Transition id '4' is not valid for this issue."]

        resolve = next(
            t
            for t in c.get(
                f"/rest/api/3/issue/{maint.key}/transitions", params={"expand": "transitions.fields"}
            ).json()["transitions"]
            if t["to"]["name"] == "Resolved"
        )
        assert resolve["fields"]["resolution"]["required"] is True
        missing = c.post(f"/rest/api/3/issue/{maint.key}/transitions", json={"transition": {"id": resolve["id"]}})
        assert missing.status_code == 400 and "resolution" in missing.json()["errors"]
        assert jira.sim.get_issue(maint.key).status == "1"
        done = c.post(
            f"/rest/api/3/issue/{maint.key}/transitions",
            json={"transition": {"id": resolve["id"]}, "fields": {"resolution": {"name": "Fixed"}}},
        )
        assert done.status_code == 204
        fields = c.get(f"/rest/api/3/issue/{maint.key}").json()["fields"]
        assert fields["status"]["name"] == "Resolved" and fields["status"]["statusCategory"]["key"] == "done"
        assert fields["resolution"]["name"] == "Fixed"
        after = {t["to"]["name"] for t in c.get(f"/rest/api/3/issue/{maint.key}/transitions").json()["transitions"]}
        assert after == {"Closed", "Open"}
    person = jira.control.post(
        f"/_sim/issues/{proc.key}/transition", json={"status": "In Progress", "as": "ana.alvarez@example.com"}
    )
    assert person.json()["status"] == "In Progress"
    assert jira.control.post(f"/_sim/issues/{proc.key}/transition", json={"status": "Closed"}).status_code == 400
