"""Issue 4, done-means 1-3 and 10: volume sync, idle second run, edits, write-back, no echo; SQLite and PostgreSQL."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import httpx2

from e2e.harness import World, connector_config, make_connector, world
from ml_connector.engine import OutboundSync, WritebackSync
from ml_connector.sim.ifs import precondition_kind
from ml_connector.sim.people import PEOPLE

PRIORITY_BY_TIER = {"T1": "High", "T2": "Medium", "T3": "Low"}
WO_PRIORITY = {"SAFETY-1": "Highest", "SAFETY-2": "Highest", "CM-1": "High", "CM-2": "High", "PM-1": "Medium"}


def _jira_lookup(w: World) -> tuple[dict[str, str], dict[str, str]]:
    """Priority name → id and email → accountId, read from the Jira simulator's public API."""
    auth = ("connector@example.com", "sim-api-token")
    with httpx2.Client(base_url=w.jira.url, auth=auth) as http:
        priorities = {p["name"]: str(p["id"]) for p in http.get("/rest/api/3/priority").json()}
        accounts = {}
        for person in PEOPLE:
            users = http.get("/rest/api/3/user/search", params={"query": person.email}).json()
            if users:
                accounts[person.email] = users[0]["accountId"]
    return priorities, accounts


def _sync(c: Any) -> list[Any]:
    return [OutboundSync(c, f).run() for f in c.config.flows]


def test_volume_sync_edit_and_writeback(tmp_path: Path, store_url: str) -> None:
    with world(purchase_orders=2000, work_orders=500) as w:
        config = connector_config(
            w,
            tmp_path,
            store_url=store_url,
            tweak={
                "flows": [
                    {**f, "filter": None} if f["name"] == "purchase_orders" else f
                    for f in __import__("e2e.harness", fromlist=["example_config"]).example_config()["flows"]
                ]
            },
        )
        c = make_connector(config)
        reports = _sync(c)
        assert [r.counts["created"] for r in reports] == [2000, 500]

        # 1. exactly 2,500 issues with the right project, type, priority, assignee and custom fields
        issues = w.jira_issues()
        assert len(issues) == 2500
        by_ref = {i["properties"]["ml-connector"]["key"]: i for i in issues}
        assert len(by_ref) == 2500
        priorities, accounts = _jira_lookup(w)
        suppliers = {s["SupplierId"]: s for s in w.ifs_rows("Supplier")}
        persons = {p["PersonId"]: p for p in w.ifs_rows("Person")}
        first_line: dict[str, dict[str, Any]] = {}
        for line in sorted(w.ifs_rows("PurchaseOrderLine"), key=lambda r: (r["OrderNo"], r["LineNo"], r["ReleaseNo"])):
            first_line.setdefault(line["OrderNo"], line)
        for po in w.ifs_rows("PurchaseOrder"):
            issue = by_ref[po["OrderNo"]]
            assert issue["project"] == ("CAPEX" if po.get("ProjectId") in ("PRJ-1000", "PRJ-1001") else "PROC")
            assert issue["issuetype"] == "Purchase Order"
            tier = suppliers[po["VendorNo"]]["Cf_Supplier_Tier"]
            assert issue["priority"] == priorities[PRIORITY_BY_TIER.get(tier, "Medium")]
            email = (persons.get(po["BuyerCode"]) or {}).get("Email")
            assert issue["assignee"] == accounts.get(str(email).lower() if email else "")
            line = first_line.get(po["OrderNo"])
            assert issue["fields"].get("customfield_10050") == (line["CodeA"] if line else None)
            assert issue["fields"].get("customfield_10060") == (line["CodeB"] if line else None)
            assert issue["fields"]["customfield_10053"] == po["OrderNo"]
            assert issue["fields"]["customfield_10052"] == po["VendorNo"]
        for wo in w.ifs_rows("WorkOrder"):
            issue = by_ref[str(wo["WoNo"])]
            assert issue["project"] == "MAINT" and issue["issuetype"] == "Work Order"
            expected = WO_PRIORITY.get(f"{wo['WorkTypeId']}-{wo['PriorityId']}", "Low")
            assert issue["priority"] == priorities[expected]
            email = (persons.get(wo["WorkLeaderSign"]) or {}).get("Email")
            assert issue["assignee"] == accounts.get(str(email).lower() if email else "")
        assert any(i["assignee"] is None for i in issues) and any(i["assignee"] for i in issues)

        # ... and a second sync makes no Jira write call
        w.jira_sim.clear_requests()
        again = _sync(c)
        assert w.jira_writes() == {}
        assert sum(r.counts["created"] + r.counts["updated"] for r in again) == 0

        # 2. 50 purchase orders edited in IFS → exactly those 50 issues edited
        edited = sorted(po["OrderNo"] for po in w.ifs_rows("PurchaseOrder"))[100:150]
        for key in edited:
            w.ifs_state.edit("PurchaseOrder", key, {"Description": f"Edited {key}"})
        w.jira_sim.clear_requests()
        _sync(c)
        assert w.jira_writes() == {"PUT /rest/api/3/issue/{id}": 50}
        touched = {
            i["properties"]["ml-connector"]["key"]
            for i in w.jira_issues()
            if i["summary"].endswith(tuple(f"Edited {k}" for k in edited))
        }
        assert touched == set(edited)

        # 3. 100 issues transitioned in Jira → write-back sets the IFS field on exactly those 100, with If-Match
        moved = [by_ref[k] for k in sorted(by_ref)[:100]]
        for issue in moved:
            w.jira_sim.call("POST", f"issues/{issue['key']}/transition", json={"status": "In Progress"})
        w.ifs_sim.clear_requests()
        back = [WritebackSync(c, f).run() for f in c.config.flows]
        assert sum(r.counts["written_back"] for r in back) == 100
        writes = [
            r
            for r in w.ifs_sim.requests()["requests"]
            if r["method"] in ("PATCH", "POST") and "/auth/" not in r["path"]
        ]
        assert len(writes) == 100 and all(precondition_kind(r["if_match"]) == "etag" for r in writes)
        statuses = Counter()
        for issue in moved:
            ref = issue["properties"]["ml-connector"]["key"]
            entity = "WorkOrder" if issue["project"] == "MAINT" else "PurchaseOrder"
            raw = w.ifs_state.get_raw(entity, int(ref) if entity == "WorkOrder" else ref)
            statuses[raw["Cf_Jira_Status"]] += 1
            assert raw["Cf_Jira_Key"] == issue["key"]
        assert statuses == Counter({"In Progress": 100})

        # ... and the following outbound sync makes no Jira edit (no echo)
        w.jira_sim.clear_requests()
        _sync(c)
        assert w.jira_writes() == {}
        c.close()


def test_idle_run_in_a_fresh_process_costs_two_ifs_calls_and_no_jira_call(tmp_path: Path, store_url: str) -> None:
    with world(purchase_orders=60, work_orders=0) as w:
        config = connector_config(w, tmp_path, store_url=store_url)
        warm = make_connector(config)
        OutboundSync(warm, config.flow("purchase_orders")).run()
        OutboundSync(warm, config.flow("purchase_orders")).run()  # moves the cursor past the key-ordered first pass
        warm.close()
        cold = make_connector(config)  # new caches, new token: as a cron job's next `ml-connector sync`
        w.ifs_sim.clear_requests()
        w.jira_sim.clear_requests()
        report = OutboundSync(cold, config.flow("purchase_orders")).run()
        assert report.counts["created"] + report.counts["updated"] == 0
        assert w.jira_sim.counts() == {}
        ifs = w.ifs_sim.counts()
        assert ifs == {
            "POST auth/realms/mlc/protocol/openid-connect/token": 1,
            "GET PurchaseOrderHandling.svc/PurchaseOrderSet": 1,
        }
        cold.close()


def test_full_sync_carries_a_changed_lookup_into_jira(tmp_path: Path, store_url: str) -> None:
    with world(purchase_orders=60, work_orders=0) as w:
        config = connector_config(w, tmp_path, store_url=store_url)
        c = make_connector(config)
        flow = config.flow("purchase_orders")
        OutboundSync(c, flow).run()
        supplier = next(
            s
            for s in w.ifs_rows("Supplier")
            if s["Cf_Supplier_Tier"] != "T1"
            and any(p["VendorNo"] == s["SupplierId"] for p in w.ifs_rows("PurchaseOrder"))
        )
        w.ifs_state.edit("Supplier", supplier["SupplierId"], {"Cf_Supplier_Tier": "T1"})
        affected = {p["OrderNo"] for p in w.ifs_rows("PurchaseOrder") if p["VendorNo"] == supplier["SupplierId"]}
        c.invalidate_caches()
        # an ordinary run looks at changed purchase orders only: the supplier's orders did not change
        assert OutboundSync(c, flow).run().counts["updated"] == 0
        report = OutboundSync(c, flow).run(full=True)
        assert report.counts["updated"] == len(affected)
        priorities = {i["properties"]["ml-connector"]["key"]: i["priority"] for i in w.jira_issues()}
        assert {priorities[k] for k in affected} == {"2"}  # High
        c.close()
