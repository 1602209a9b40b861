"""The /_sim/ control API: deterministic seeding, records created and edited as an IFS user would, clock."""

from __future__ import annotations

import datetime as dt
import json
from urllib.parse import quote

from ml_connector.sim.ifs import IfsSimOptions, IfsSimulator, order_no

from .conftest import PO, Ifs, po_url


def _snapshot(sim: IfsSimulator) -> dict[str, list[dict[str, object]]]:
    return {name: [dict(r.wire) for r in store.records.values()] for name, store in sim.stores.items()}


def test_seed_is_deterministic_and_sized_by_options() -> None:
    a = IfsSimulator(IfsSimOptions(purchase_orders=30, work_orders=10, suppliers=5, projects=3, persons=17))
    b = IfsSimulator(IfsSimOptions(purchase_orders=30, work_orders=10, suppliers=5, projects=3, persons=17))
    assert _snapshot(a) == _snapshot(b)
    sizes = a.sizes()
    assert (sizes["PurchaseOrder"], sizes["WorkOrder"], sizes["Supplier"], sizes["Project"], sizes["Person"]) == (
        30,
        10,
        5,
        3,
        17,
    )
    assert 30 <= sizes["PurchaseOrderLine"] <= 90
    c = IfsSimulator(IfsSimOptions(purchase_orders=30, work_orders=10, suppliers=5, projects=3, seed=7))
    assert _snapshot(a)["PurchaseOrder"] != _snapshot(c)["PurchaseOrder"]
    # growing one kind leaves the others as they were
    d = IfsSimulator(IfsSimOptions(purchase_orders=30, work_orders=99, suppliers=5, projects=3, persons=17))
    assert _snapshot(a)["PurchaseOrder"] == _snapshot(d)["PurchaseOrder"]


def test_seed_covers_every_attribute_the_connector_maps() -> None:
    sim = IfsSimulator(IfsSimOptions(purchase_orders=150))
    orders = [r.values for r in sim.stores["PurchaseOrder"].records.values()]
    lines = [r.values for r in sim.stores["PurchaseOrderLine"].records.values()]
    work = [r.values for r in sim.stores["WorkOrder"].records.values()]
    assert {o["Objstate"] for o in orders} == set(
        ("Planned", "Released", "Confirmed", "Arrived", "Received", "Closed", "Cancelled")
    )
    assert any(o["ProjectId"] for o in orders) and any(o["ProjectId"] is None for o in orders)
    assert all(line["CodeA"] and line["CodeB"] for line in lines)
    assert all(line["CodeF"] == line["ProjectId"] for line in lines)
    assert {w["WorkTypeId"] for w in work} == {"CM", "PM", "SAFETY", "IMPROV"}
    assert all(w["OrgCode"] and w["MchCode"] and w["WorkLeaderSign"] for w in work)
    assert all(o["DateEntered"] <= o["Cf_Changed_At"] for o in orders)
    awkward = [o["OrderNo"] for o in orders if any(c in o["OrderNo"] for c in "'/&#% +?ü")]
    assert len(awkward) >= 5


def test_reset_reseeds_and_restores_faults_and_clock(ifs: Ifs) -> None:
    ifs.sim.edit("PurchaseOrder", "PO-000001", {"Description": "changed"})
    ifs.sim.set_faults(latency_ms=5, error_503_rate=0.5)
    ifs.sim.set_clock(3600)
    body = ifs.http.post("/_sim/reset", json={"purchase_orders": 12}).json()
    assert body["sizes"]["PurchaseOrder"] == 12
    assert ifs.sim.faults.latency_ms == 0 and ifs.sim.faults.error_503_rate == 0
    assert ifs.sim.clock_offset == 0
    assert ifs.sim.get_raw("PurchaseOrder", "PO-000001")["Description"] != "changed"
    assert ifs.get(PO, {"$top": "1"}).status_code == 200, "issued tokens survive a reset"
    assert ifs.http.post("/_sim/reset", json={"realm": "x"}).status_code == 400
    assert ifs.http.post("/_sim/reset", json={"purchase_orders": -1}).status_code == 400


def test_create_generated_and_explicit_records(ifs: Ifs) -> None:
    created = ifs.http.post("/_sim/records/PurchaseOrder", json={"count": 3})
    assert created.status_code == 201
    records = created.json()["records"]
    assert [r["OrderNo"] for r in records] == [order_no(n) for n in (201, 202, 203)]
    assert all(r["Objstate"] == "Planned" and r["objversion"] for r in records)
    explicit = ifs.http.post(
        "/_sim/records/PurchaseOrder",
        json={"values": {"OrderNo": "PO-NEW'1", "Description": "made in a test", "TotalAmount": 5}, "lines": 2},
    ).json()["records"][0]
    assert explicit["OrderNo"] == "PO-NEW'1" and explicit["TotalAmount"] == 5.0
    assert len(ifs.get(f"{po_url('PO-NEW' + chr(39) + '1')}/LinePartArray").json()["value"]) == 2
    again = ifs.http.post("/_sim/records/PurchaseOrder", json={"values": {"OrderNo": "PO-NEW'1"}})
    assert again.status_code == 409
    wo = ifs.http.post("/_sim/records/WorkOrder", json={"values": {"WorkTypeId": "SAFETY"}}).json()["records"][0]
    assert wo["WoNo"] == 1051 and wo["WorkTypeId"] == "SAFETY" and wo["Objstate"] == "WorkRequest"
    line = ifs.http.post(
        "/_sim/records/PurchaseOrderLine", json={"values": {"OrderNo": "PO-000001", "CodeB": "CC999"}}
    ).json()["records"][0]
    assert line["CodeB"] == "CC999"
    bad = [
        ifs.http.post("/_sim/records/Nope", json={"count": 1}),
        ifs.http.post("/_sim/records/PurchaseOrder", json={"values": {"Nope": 1}}),
        ifs.http.post("/_sim/records/PurchaseOrder", json={}),
        ifs.http.post("/_sim/records/PurchaseOrderLine", json={"values": {"OrderNo": "PO-NONE"}}),
    ]
    assert [b.status_code for b in bad] == [404, 400, 400, 400]
    assert ifs.http.get("/_sim/records/PurchaseOrder").json()["count"] == 204


def test_edit_as_a_user_bumps_objversion_and_stamp(ifs: Ifs) -> None:
    key = order_no(13)  # PO-000013#D
    url = f"/_sim/records/PurchaseOrder/{quote(key, safe='')}"
    before = ifs.http.get(url).json()
    edited = ifs.http.patch(url, json={"Objstate": "Arrived", "Cf_Jira_Key": "OPS-1"}).json()
    assert edited["Objstate"] == "Arrived" and edited["Cf_Jira_Key"] == "OPS-1"
    assert edited["objversion"] > before["objversion"]
    assert edited["Cf_Changed_At"] > before["Cf_Changed_At"]
    assert edited["@odata.etag"] == ifs.get(po_url(key)).headers["ETag"]
    assert ifs.http.patch(url, json={"OrderNo": "x"}).status_code == 400
    assert ifs.http.patch(url, json={"Objstate": "Lost"}).status_code == 400
    assert ifs.http.get("/_sim/records/PurchaseOrder/PO-404").status_code == 404


def test_bulk_edit_and_composite_keys(ifs: Ifs) -> None:
    body = {"keys": ["PO-000001", "PO-000002"], "changes": {"Cf_Jira_Status": "Done"}}
    records = ifs.http.post("/_sim/records/PurchaseOrder/bulk-edit", json=body).json()["records"]
    assert [r["Cf_Jira_Status"] for r in records] == ["Done", "Done"]
    order_before = ifs.sim.get_raw("PurchaseOrder", "PO-000001")
    line_key = quote(json.dumps(["PO-000001", "1", "1"]), safe="")
    line = ifs.http.patch(f"/_sim/records/PurchaseOrderLine/{line_key}", json={"CodeA": "4999"}).json()
    assert line["CodeA"] == "4999"
    order_after = ifs.sim.get_raw("PurchaseOrder", "PO-000001")
    assert order_after["objversion"] > order_before["objversion"], "a line edit stamps its order"
    assert ifs.http.get("/_sim/records/WorkOrder/1001").json()["WoNo"] == 1001
    assert ifs.http.get("/_sim/records/WorkOrder/abc").status_code == 400


def test_explicit_change_stamp_and_clock(ifs: Ifs) -> None:
    edited = ifs.sim.edit("WorkOrder", 1001, {"Cf_Changed_At": "2030-01-01T00:00:00Z"})
    assert edited["Cf_Changed_At"] == "2030-01-01T00:00:00Z"
    clock = ifs.http.put("/_sim/clock", json={"offset_seconds": 86400}).json()
    assert clock["offset_seconds"] == 86400
    edited = ifs.sim.edit("WorkOrder", 1002, {"ErrDescr": "tomorrow"})
    stamp = dt.datetime.fromisoformat(edited["Cf_Changed_At"].replace("Z", "+00:00"))
    tomorrow = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    assert abs((stamp - tomorrow).total_seconds()) < 5
    assert ifs.http.put("/_sim/clock", json={"offset_seconds": "soon"}).status_code == 400
    root = ifs.http.get("/_sim/").json()
    assert root["clock_offset_seconds"] == 86400 and root["options"]["realm"] == "mlc"
