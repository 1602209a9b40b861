"""Issue create/edit/bulk/move rules of the simulated Jira, over real HTTP."""

from __future__ import annotations

from .helpers import RunningSim, po_fields

NOT_ADF = "Operation value must be an Atlassian Document (see the Atlassian Document Format)"


def test_createmeta_exposes_required_fields_and_create_enforces_them(jira: RunningSim) -> None:
    with jira.basic() as c:
        meta = c.get("/rest/api/3/issue/createmeta/PROC/issuetypes/10002").json()["fields"]
        required = {f["fieldId"] for f in meta if f["required"]}
        assert {"customfield_10053", "customfield_10050", "summary"} <= required
        cost = next(f for f in meta if f["fieldId"] == "customfield_10051")
        assert [o["value"] for o in cost["allowedValues"]] == ["CC-100", "CC-200", "CC-300", "CC-400"]
        task_meta = c.get("/rest/api/3/issue/createmeta/PROC/issuetypes/10001").json()["fields"]
        assert not any(f["required"] for f in task_meta if f["fieldId"].startswith("customfield_"))

        missing = c.post(
            "/rest/api/3/issue", json={"fields": {"project": {"key": "PROC"}, "issuetype": {"name": "Purchase Order"}}}
        )
        assert missing.status_code == 400
        assert missing.json() == {
            "errorMessages": [],
            "errors": {
                "summary": "You must specify a summary of the issue.",
                "customfield_10053": "IFS Reference is required.",
                "customfield_10050": "GL Account is required.",
            },
        }
        bad_option = c.post(
            "/rest/api/3/issue", json={"fields": po_fields("PO-1", customfield_10051={"value": "CC-999"})}
        )
        assert bad_option.status_code == 400
        assert bad_option.json()["errors"] == {"customfield_10051": "Option value 'CC-999' is not valid"}
        ok = c.post("/rest/api/3/issue", json={"fields": po_fields("PO-1", customfield_10051={"value": "CC-200"})})
        assert ok.status_code == 201
        got = c.get(f"/rest/api/3/issue/{ok.json()['key']}").json()["fields"]
        assert got["customfield_10051"]["value"] == "CC-200" and got["customfield_10053"] == "PO-1"
        wrong_type = c.post(
            "/rest/api/3/issue", json={"fields": {**po_fields("PO-2"), "issuetype": {"name": "Work Order"}}}
        )
        assert wrong_type.json()["errors"] == {"issuetype": "The issue type selected is invalid."}


def test_unknown_fields_summary_length_and_labels_are_refused(jira: RunningSim) -> None:
    with jira.basic() as c:
        unknown = c.post("/rest/api/3/issue", json={"fields": po_fields("PO-1", customfield_99999="x")})
        assert unknown.status_code == 400
        assert unknown.json()["errors"] == {
            "customfield_99999": "Field 'customfield_99999' cannot be set. "
            "It is not on the appropriate screen, or unknown."
        }
        supplier_on_maint = {
            "project": {"key": "MAINT"},
            "issuetype": {"name": "Task"},
            "summary": "s",
            "customfield_10052": "ACME",
        }
        assert "customfield_10052" in c.post("/rest/api/3/issue", json={"fields": supplier_on_maint}).json()["errors"]
        long = c.post("/rest/api/3/issue", json={"fields": po_fields("PO-1", summary="x" * 256)})
        assert long.json()["errors"] == {"summary": "Summary must be less than 255 characters."}
        assert c.post("/rest/api/3/issue", json={"fields": po_fields("PO-1", summary="x" * 255)}).status_code == 201
        spaced = c.post("/rest/api/3/issue", json={"fields": po_fields("PO-1", labels=["has space"])})
        assert spaced.json()["errors"] == {"labels": "The label 'has space' contains spaces which is invalid."}


def test_description_must_be_valid_adf(jira: RunningSim) -> None:
    def para(*content: dict[str, object]) -> dict[str, object]:
        return {"type": "doc", "version": 1, "content": [{"type": "paragraph", "content": list(content)}]}

    with jira.basic() as c:
        as_string = c.post("/rest/api/3/issue", json={"fields": po_fields("PO-1", description="plain text")})
        assert as_string.status_code == 400 and as_string.json()["errors"] == {"description": NOT_ADF}
        for bad in (
            para({"type": "text", "text": ""}),
            para({"type": "blink", "text": "x"}),
            {"type": "doc", "version": 2, "content": []},
            para({"type": "text", "text": "x", "marks": [{"type": "glow"}]}),
        ):
            response = c.post("/rest/api/3/issue", json={"fields": po_fields("PO-1", description=bad)})
            assert response.status_code == 400 and "description" in response.json()["errors"], bad
        good = para(
            {"type": "text", "text": "Line 1"},
            {"type": "hardBreak"},
            {"type": "text", "text": "bold", "marks": [{"type": "strong"}]},
        )
        created = c.post("/rest/api/3/issue", json={"fields": po_fields("PO-1", description=good)})
        assert created.status_code == 201
        assert c.get(f"/rest/api/3/issue/{created.json()['id']}").json()["fields"]["description"] == good


def test_bulk_reports_failures_per_element(jira: RunningSim) -> None:
    with jira.basic() as c:
        payload = {
            "issueUpdates": [
                {"fields": po_fields("PO-1")},
                {"fields": {**po_fields("PO-2"), "summary": "y" * 300}},
                {"fields": po_fields("PO-3")},
                {"fields": {"project": {"key": "NOPE"}, "issuetype": {"name": "Task"}, "summary": "s"}},
            ]
        }
        response = c.post("/rest/api/3/issue/bulk", json=payload)
        assert response.status_code == 201
        body = response.json()
        assert [i["key"] for i in body["issues"]] == ["PROC-1", "PROC-2"]
        assert [(e["failedElementNumber"], e["status"]) for e in body["errors"]] == [(1, 400), (3, 400)]
        assert body["errors"][0]["elementErrors"]["errors"] == {"summary": "Summary must be less than 255 characters."}
        assert body["errors"][1]["elementErrors"]["errors"] == {"project": "Specify a valid project ID or key"}
        all_bad = c.post("/rest/api/3/issue/bulk", json={"issueUpdates": [{"fields": {"summary": "x"}}]})
        assert all_bad.status_code == 400 and all_bad.json()["issues"] == []
        too_many = c.post(
            "/rest/api/3/issue/bulk", json={"issueUpdates": [{"fields": po_fields(f"P{i}")} for i in range(51)]}
        )
        assert too_many.status_code == 400 and too_many.json()["errorMessages"]
        assert len(jira.sim.list_raw("PROC")) == 2


def test_edit_ignores_status_and_get_renders_account_offset(jira: RunningSim) -> None:
    with jira.basic() as c:
        key = c.post("/rest/api/3/issue", json={"fields": po_fields("PO-1")}).json()["key"]
        edit = c.put(
            f"/rest/api/3/issue/{key}",
            json={
                "fields": {"summary": "new", "status": {"name": "Done"}},
                "update": {"labels": [{"add": "extra"}, {"remove": "ifs"}]},
            },
        )
        assert edit.status_code == 204
        fields = c.get(f"/rest/api/3/issue/{key}").json()["fields"]
        assert fields["summary"] == "new" and fields["status"]["name"] == "To Do"
        assert fields["labels"] == ["ifs-PO-1", "extra"]
        assert fields["updated"].endswith(("-0800", "-0700"))  # America/Los_Angeles
        cleared = c.put(f"/rest/api/3/issue/{key}", json={"fields": {"customfield_10053": None}})
        assert cleared.json()["errors"] == {"customfield_10053": "IFS Reference is required."}


def test_move_changes_key_and_old_key_still_resolves(jira: RunningSim) -> None:
    with jira.basic() as c:
        created = c.post("/rest/api/3/issue", json={"fields": po_fields("PO-1")}).json()
        moved = jira.control.post(f"/_sim/issues/{created['key']}/move", json={"project": "CAPEX"}).json()
        assert moved["key"] == "CAPEX-1" and moved["old_keys"] == ["PROC-1"]
        via_old = c.get("/rest/api/3/issue/PROC-1").json()
        assert via_old["key"] == "CAPEX-1" and via_old["id"] == created["id"]
        found = c.get("/rest/api/3/search/jql", params={"jql": "key = PROC-1", "fields": "key"}).json()["issues"]
        assert [i["key"] for i in found] == ["CAPEX-1"]
        history = c.get("/rest/api/3/issue/CAPEX-1", params={"expand": "changelog"}).json()["changelog"]["histories"]
        assert any(item["fieldId"] == "key" and item["toString"] == "CAPEX-1" for h in history for item in h["items"])
        assert c.delete("/rest/api/3/issue/CAPEX-1").status_code == 204
        assert c.get("/rest/api/3/issue/PROC-1").status_code == 404


def test_user_search_hides_emails(jira: RunningSim) -> None:
    with jira.basic() as c:
        ana = c.get("/rest/api/3/user/search", params={"query": "ana.alvarez@example.com"}).json()
        assert [u["emailAddress"] for u in ana] == ["ana.alvarez@example.com"]
        assert c.get("/rest/api/3/user/search", params={"query": "claire.dub"}).json() == []
        claire = c.get("/rest/api/3/user/search", params={"query": "claire.dubois@example.com"}).json()
        assert len(claire) == 1 and "emailAddress" not in claire[0]
        assert c.get("/rest/api/3/user/search", params={"query": "luis.moreno@example.com"}).json() == []
        me = c.get("/rest/api/3/myself").json()
        assert me["timeZone"] == "America/Los_Angeles" and me["emailAddress"] == "connector@example.com"
