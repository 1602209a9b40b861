"""Issues over real HTTP against the simulator: create, bulk create, edit, get, properties, transitions, metadata."""

from __future__ import annotations

from typing import Any

import pytest

from ml_connector.errors import ConfigError, MappingError, NotFound, Rejected
from ml_connector.jira import DraftIssue, JiraClient, text_to_adf

from .helpers import Sim


def task(summary: str, *, project: str = "PROC", labels: tuple[str, ...] = (), **fields: Any) -> DraftIssue:
    return DraftIssue(
        fields={"project": {"key": project}, "issuetype": {"name": "Task"}, "summary": summary, **fields},
        labels=labels,
        properties={"ml-connector": {"ifsKey": summary}},
        ref=summary,
    )


def test_create_get_edit_and_properties(basic_client: JiraClient, sim: Sim) -> None:
    created = basic_client.create_issue(
        task("PO-1 pump", labels=("ifs", "ifs-PO-1"), description=text_to_adf("Line 1\nLine 2\n\n- a\n- b"))
    )
    raw = sim.issue(created.id)
    assert raw["key"] == created.key
    issue = basic_client.get_issue(created.key, fields=["summary", "labels"], properties=["ml-connector"])
    assert issue["id"] == created.id
    assert issue["fields"]["summary"] == "PO-1 pump"
    assert sorted(issue["fields"]["labels"]) == ["ifs", "ifs-PO-1"]
    assert issue["properties"]["ml-connector"] == {"ifsKey": "PO-1 pump"}

    basic_client.edit_issue(created.id, {"summary": "PO-1 pump (changed)"}, properties={"sync": {"hash": "h1"}})
    assert basic_client.get_issue(created.id, fields=["summary"])["fields"]["summary"] == "PO-1 pump (changed)"
    basic_client.set_property(created.id, "sync", {"hash": "h2"})
    assert basic_client.get_property(created.id, "sync") == {"hash": "h2"}
    assert set(basic_client.property_keys(created.id)) >= {"ml-connector", "sync"}
    basic_client.delete_property(created.id, "sync")
    assert basic_client.get_property(created.id, "sync") is None
    with pytest.raises(NotFound):
        basic_client.get_issue("PROC-999999")


def test_create_rejects_missing_required_field_with_jiras_reason(basic_client: JiraClient) -> None:
    draft = DraftIssue(fields={"project": {"key": "PROC"}, "issuetype": {"name": "Purchase Order"}, "summary": "x"})
    with pytest.raises(Rejected) as info:
        basic_client.create_issue(draft)
    assert info.value.status == 400
    assert info.value.details.get("errors"), info.value.message


def test_bulk_create_120_with_3_invalid(basic_client: JiraClient, sim: Sim) -> None:
    drafts = [task(f"BULK-{i:03d}") for i in range(120)]
    bad = {7, 64, 119}
    for i in bad:  # no summary: Jira refuses these elements
        fields = dict(drafts[i].fields)
        del fields["summary"]
        drafts[i] = DraftIssue(fields=fields, ref=f"BAD-{i}")
    sim.control.delete("/_sim/requests")
    outcomes = basic_client.bulk_create(drafts)

    calls = [r for r in sim.requests()["requests"] if r["path"].endswith("/issue/bulk")]
    assert len(calls) == 3
    assert [o.index for o in outcomes] == list(range(120))
    failed = {o.index for o in outcomes if not o.ok}
    assert failed == bad
    for o in outcomes:
        if o.index in bad:
            assert o.failure is not None and o.failure.status == 400 and not o.failure.transient
            assert "summary" in o.failure.errors, o.failure
    created = {o.issue.id: o for o in outcomes if o.issue is not None}
    assert len(created) == 117
    raw = {i["id"]: i for i in sim.issues("PROC")}
    for issue_id, outcome in created.items():
        assert raw[issue_id]["summary"] == outcome.draft.fields["summary"]
    summaries = [i["summary"] for i in raw.values()]
    assert len([s for s in summaries if s and s.startswith("BULK-")]) == 117


def test_bulk_chunk_sizes_are_50_50_20(basic_client: JiraClient, sim: Sim, recorder: Any) -> None:
    import json

    outcomes = basic_client.bulk_create([task(f"SZ-{i}") for i in range(120)])
    assert all(o.ok for o in outcomes)
    sizes = [
        len(json.loads(ex.request_body)["issueUpdates"]) for ex in recorder.exchanges if ex.url.endswith("/issue/bulk")
    ]
    assert sizes == [50, 50, 20]


def test_a_whole_call_503_on_bulk_create_is_not_resent(basic_client: JiraClient, sim: Sim) -> None:
    # A 5xx on a create is ambiguous (DESIGN §4.3): the client reports every element as uncertain and sends nothing
    # again; the engine's intent and reconcile path settles it. A later call goes through normally.
    sim.faults(fail_next=[{"status": 503, "count": 1, "path_contains": "/issue/bulk"}])
    outcomes = basic_client.bulk_create([task(f"R-{i}") for i in range(5)])
    assert not any(o.ok for o in outcomes)
    assert all(o.failure is not None and o.failure.uncertain for o in outcomes)
    assert sum(r["path"].endswith("/issue/bulk") for r in sim.requests()["requests"]) == 1
    assert basic_client.bulk_create([task("R-after")])[0].ok


def test_transition_by_status_name_in_both_workflows(basic_client: JiraClient, sim: Sim) -> None:
    a = basic_client.create_issue(task("WF-A"))
    moved = basic_client.transition_to(a.key, "In Progress")
    assert moved is not None
    assert basic_client.transition_to(a.key, "in progress") is None  # already there: no call
    assert basic_client.get_issue(a.id, fields=["status"])["fields"]["status"]["name"] == "In Progress"
    b = basic_client.create_issue(
        DraftIssue(fields={"project": {"key": "MAINT"}, "issuetype": {"name": "Task"}, "summary": "WF-B"})
    )
    trans_a = {t.to_status: t.id for t in basic_client.transitions(a.key)}
    trans_b = {t.to_status: t.id for t in basic_client.transitions(b.key)}
    assert trans_a and trans_b
    basic_client.transition_to(b.key, "In Progress")
    with pytest.raises(MappingError, match="resolution"):
        basic_client.transition_to(b.key, "Resolved")
    basic_client.transition_to(b.key, "Resolved", fields={"resolution": {"name": "Done"}})
    status = basic_client.get_issue(b.key, fields=["status"])["fields"]["status"]["name"]
    assert status == "Resolved"
    with pytest.raises(Rejected, match="no transition"):
        basic_client.transition_to(b.key, "Awaiting Delivery")


def test_field_registry_from_jira(basic_client: JiraClient) -> None:
    fields = basic_client.fields()
    assert fields.resolve("GL Account") == "customfield_10050"
    with pytest.raises(ConfigError) as info:
        fields.resolve("Cost Center")
    assert "customfield_10051" in str(info.value) and "customfield_10060" in str(info.value)
    assert fields.resolve("Cost Center", field_type="select") == "customfield_10051"


def test_metadata_calls(basic_client: JiraClient) -> None:
    assert basic_client.myself()["emailAddress"] == "connector@example.com"
    assert basic_client.time_zone() == "America/Los_Angeles"
    assert {p["key"] for p in basic_client.projects()} >= {"PROC", "MAINT", "CAPEX"}
    assert [p["name"] for p in basic_client.priorities()][:2] == ["Highest", "High"]
    types = {t["name"]: t["id"] for t in basic_client.create_issue_types("PROC")}
    assert "Purchase Order" in types
    required = {f["fieldId"] for f in basic_client.create_fields("PROC", types["Purchase Order"]) if f.get("required")}
    assert {"customfield_10053", "customfield_10050"} <= required


def test_user_resolver(basic_client: JiraClient, sim: Sim) -> None:
    found = basic_client.users.resolve("ana.alvarez@example.com")
    assert found.found and found.account_id
    hidden = basic_client.users.resolve("claire.dubois@example.com")  # email hidden: exact query only
    assert hidden.found and hidden.account_id
    assert basic_client.users.resolve("luis.moreno@example.com").status == "not_found"  # no Jira account
    sim.control.delete("/_sim/requests")
    basic_client.users.resolve("ana.alvarez@example.com")
    basic_client.users.resolve("luis.moreno@example.com")
    assert sim.requests()["requests"] == []  # both answered from the cache


def test_moved_issue_keeps_resolving(basic_client: JiraClient, sim: Sim) -> None:
    created = basic_client.create_issue(task("MOVE-1"))
    sim.control.post(f"/_sim/issues/{created.key}/move", json={"project": "CAPEX"}).raise_for_status()
    issue = basic_client.get_issue(created.key, fields=["summary"])
    assert issue["id"] == created.id and issue["key"].startswith("CAPEX-")
