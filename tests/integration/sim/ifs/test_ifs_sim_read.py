"""Reads: entity shape, ETags, $filter/$select/$orderby/$top/$skip/$count/$expand, refusals, $metadata."""

from __future__ import annotations

import base64
import itertools
import re
import xml.etree.ElementTree as ET

import pytest

from ml_connector.sim.ifs import SPECIAL_ORDER_SUFFIXES, order_no

from .conftest import LINES, PO, PO_STATE, WO_PREP, WO_READ, WO_STATE, Ifs, po_url


def _error(response: object, status: int, code: str | None = None) -> str:
    assert getattr(response, "status_code") == status, getattr(response, "text")  # noqa: B009
    error = getattr(response, "json")()["error"]  # noqa: B009
    if code is not None:
        assert error["code"] == code
    assert error["details"] == []
    return str(error["message"])


def test_collection_rows_carry_the_ifs_envelope(ifs: Ifs) -> None:
    body = ifs.get(PO, {"$top": "3"}).json()
    assert body["@odata.context"].endswith("/PurchaseOrderHandling.svc/$metadata#PurchaseOrderSet")
    row = body["value"][0]
    assert row["luname"] == "PurchaseOrder"
    assert row["keyref"] == f"ORDER_NO={row['OrderNo']}^"
    assert "Objgrants" in row
    assert {"Cf_Changed_At", "Cf_Jira_Status", "Cf_Jira_Key", "DateEntered", "TotalAmount"} <= set(row)
    assert row["Cf_Jira_Status"] is None and row["Cf_Jira_Key"] is None
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z", row["Cf_Changed_At"])
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", row["OrderDate"])


def test_etag_encodes_objid_and_objversion(ifs: Ifs) -> None:
    response = ifs.get(po_url("PO-000001"))
    assert response.status_code == 200
    etag = response.headers["ETag"]
    assert etag == response.json()["@odata.etag"]
    assert response.json()["@odata.context"].endswith("$metadata#PurchaseOrderSet/$entity")
    assert etag.startswith('W/"') and etag.endswith('"')
    inner = base64.b64decode(etag[3:-1]).decode()
    raw = ifs.sim.get_raw("PurchaseOrder", "PO-000001")
    assert inner == f'W/"{raw["objid"]}:{raw["objversion"]}"'
    assert re.fullmatch(r"\d{14}", raw["objversion"])


@pytest.mark.parametrize("n", sorted(n for n in SPECIAL_ORDER_SUFFIXES if n <= 200))
def test_awkward_keys_are_reachable_when_escaped(ifs: Ifs, n: int) -> None:
    key = order_no(n)
    response = ifs.get(po_url(key))
    assert response.status_code == 200, response.text
    assert response.json()["OrderNo"] == key
    by_filter = ifs.get(PO, {"$filter": f"OrderNo eq '{key.replace(chr(39), chr(39) * 2)}'"}).json()["value"]
    assert [r["OrderNo"] for r in by_filter] == [key]


def test_unescaped_quote_in_a_key_is_refused(ifs: Ifs) -> None:
    _error(ifs.get(f"{PO}(OrderNo='PO-000005'Q')"), 400)


def test_unknown_key_and_set_are_404(ifs: Ifs) -> None:
    _error(ifs.get(po_url("PO-999999")), 404, "ODP_RESOURCE_NOTFOUND")
    _error(ifs.get("PurchaseOrderHandling.svc/NoSuchSet"), 404, "ODP_RESOURCE_NOTFOUND")
    _error(ifs.get("NoSuchHandling.svc/PurchaseOrderSet"), 404, "ODP_RESOURCE_NOTFOUND")
    _error(ifs.get(f"{WO_READ}(WoNo='1001')"), 400)


def test_unqualified_enum_compare_is_refused(ifs: Ifs) -> None:
    message = _error(ifs.get(PO, {"$filter": "Objstate eq 'Released'"}), 400, "ODP_UNSUPPORTED_URL")
    assert PO_STATE in message
    _error(ifs.get(PO, {"$filter": "'Released' ne Objstate"}), 400)
    _error(ifs.get(PO, {"$filter": "Objstate eq IfsApp.OtherHandling.PurchaseOrderState'Released'"}), 400)
    _error(ifs.get(PO, {"$filter": f"Objstate eq {PO_STATE}'Shipped'"}), 400)
    _error(ifs.get(WO_READ, {"$filter": "Objstate eq IfsApp.PrepareWorkOrderHandling.WorkOrderState'Released'"}), 400)


def test_qualified_enum_filters_by_state(ifs: Ifs) -> None:
    rows = ifs.all_pages(PO, {"$filter": f"Objstate eq {PO_STATE}'Released'", "$select": "OrderNo,Objstate"})
    assert rows and {r["Objstate"] for r in rows} == {"Released"}
    expected = sum(1 for r in ifs.all_pages(PO) if r["Objstate"] == "Released")
    assert len(rows) == expected
    wos = ifs.all_pages(WO_READ, {"$filter": f"Objstate eq {WO_STATE}'WorkDone' or Objstate eq {WO_STATE}'Started'"})
    assert wos and {r["Objstate"] for r in wos} <= {"WorkDone", "Started"}
    prep = ifs.get(WO_PREP, {"$filter": "Objstate ne IfsApp.PrepareWorkOrderHandling.WorkOrderState'Cancelled'"})
    assert prep.status_code == 200


def test_filters_on_dates_datetimes_numbers_and_functions(ifs: Ifs) -> None:
    everything = ifs.all_pages(PO)

    def keys(flt: str) -> set[str]:
        return {r["OrderNo"] for r in ifs.all_pages(PO, {"$filter": flt})}

    assert keys("OrderDate ge 2025-03-01") == {r["OrderNo"] for r in everything if r["OrderDate"] >= "2025-03-01"}
    assert keys("Cf_Changed_At gt 2025-04-01T12:00:00Z") == {
        r["OrderNo"] for r in everything if r["Cf_Changed_At"] > "2025-04-01T12:00:00Z"
    }
    # an offset is converted: 14:00+02:00 is 12:00Z
    assert keys("Cf_Changed_At gt 2025-04-01T14:00:00+02:00") == keys("Cf_Changed_At gt 2025-04-01T12:00:00Z")
    assert keys("TotalAmount lt 1000.5 and TotalAmount ge 10") == {
        r["OrderNo"] for r in everything if 10 <= r["TotalAmount"] < 1000.5
    }
    assert keys("contains(tolower(Description),'stock')") == {
        r["OrderNo"] for r in everything if "stock" in r["Description"].lower()
    }
    assert keys("startswith(OrderNo,'PO-00000') and not endswith(OrderNo,'B')") == {
        r["OrderNo"] for r in everything if r["OrderNo"].startswith("PO-00000") and not r["OrderNo"].endswith("B")
    }
    with_project = keys("ProjectId ne null")
    assert with_project == {r["OrderNo"] for r in everything if r["ProjectId"] is not None}
    assert keys("ProjectId eq null") == {r["OrderNo"] for r in everything} - with_project
    assert keys("(ProjectId eq null or ProjectId ne null) and Cf_Jira_Key eq null") == {
        r["OrderNo"] for r in everything
    }


@pytest.mark.parametrize(
    "flt",
    [
        "OrderDate ge 2025-03-01T00:00:00Z",  # Date against DateTimeOffset
        "Cf_Changed_At ge 2025-03-01",  # DateTimeOffset against Date
        "TotalAmount eq '12'",
        "NoSuchField eq 1",
        "OrderNo eq 'unterminated",
        "OrderNo eq",
        "OrderNo eq 'a' eq 'b'",
        "Description",
        "contains(Objstate,'Rel')",
    ],
)
def test_malformed_or_ill_typed_filters_are_400(ifs: Ifs, flt: str) -> None:
    _error(ifs.get(PO, {"$filter": flt}), 400)


def test_unsupported_operators_and_options_are_501(ifs: Ifs) -> None:
    _error(ifs.get(PO, {"$filter": "TotalAmount add 1 gt 5"}), 501, "ODP_NOT_IMPLEMENTED")
    _error(ifs.get(PO, {"$apply": "aggregate(TotalAmount with sum as Total)"}), 501, "ODP_NOT_IMPLEMENTED")
    _error(ifs.get(PO, {"$nonsense": "1"}), 400)


def test_select_returns_only_the_selected_properties(ifs: Ifs) -> None:
    body = ifs.get(PO, {"$select": "OrderNo,Cf_Changed_At", "$top": "2"}).json()
    assert body["@odata.context"].endswith("#PurchaseOrderSet(OrderNo,Cf_Changed_At)")
    assert set(body["value"][0]) == {"@odata.etag", "luname", "keyref", "OrderNo", "Cf_Changed_At"}
    _error(ifs.get(PO, {"$select": "OrderNo,Nope"}), 400)


def test_orderby_several_keys_and_directions(ifs: Ifs) -> None:
    rows = ifs.all_pages(PO, {"$orderby": "VendorNo desc,TotalAmount", "$select": "OrderNo,VendorNo,TotalAmount"})
    pairs = [(r["VendorNo"], r["TotalAmount"]) for r in rows]
    assert len(pairs) == 200
    for a, b in itertools.pairwise(pairs):
        assert a[0] > b[0] or (a[0] == b[0] and a[1] <= b[1])
    _error(ifs.get(PO, {"$orderby": "OrderNo sideways"}), 400)
    _error(ifs.get(PO, {"$orderby": "tolower(OrderNo)"}), 400)


def test_top_skip_and_count(ifs: Ifs) -> None:
    everything = [r["OrderNo"] for r in ifs.all_pages(PO)]
    assert len(everything) == 200
    page = ifs.get(PO, {"$top": "5", "$skip": "10", "$count": "true"}).json()
    assert [r["OrderNo"] for r in page["value"]] == everything[10:15]
    assert page["@odata.count"] == 200
    assert "@odata.nextLink" not in page
    count = ifs.get(f"{PO}/$count", {"$filter": f"Objstate eq {PO_STATE}'Planned'"})
    assert count.headers["content-type"].startswith("text/plain")
    assert int(count.text) == sum(1 for r in ifs.all_pages(PO) if r["Objstate"] == "Planned")
    _error(ifs.get(PO, {"$top": "-1"}), 400)
    _error(ifs.get(PO, {"$count": "maybe"}), 400)


def test_page_size_of_5000_or_more_is_refused(ifs: Ifs) -> None:
    _error(ifs.get(PO, {"$top": "5000"}), 400)
    _error(ifs.get(PO, Prefer="odata.maxpagesize=5000"), 400)
    assert ifs.get(PO, {"$top": "4999"}).status_code == 200
    response = ifs.get(PO, Prefer="odata.maxpagesize=4999")
    assert response.status_code == 200
    assert response.headers["Preference-Applied"] == "odata.maxpagesize=4999"


def test_expand_one_to_one_and_refuse_collections(ifs: Ifs) -> None:
    rows = ifs.get(PO, {"$expand": "VendorNoRef($select=Name,Cf_Supplier_Tier),BuyerCodeRef", "$top": "5"}).json()[
        "value"
    ]
    for row in rows:
        assert set(row["VendorNoRef"]) == {"@odata.etag", "luname", "keyref", "Name", "Cf_Supplier_Tier"}
        assert row["VendorNoRef"]["Name"] == ifs.sim.get_raw("Supplier", row["VendorNo"])["Name"]
        assert row["BuyerCodeRef"]["PersonId"] == row["BuyerCode"]
        assert "@" in row["BuyerCodeRef"]["Email"]
    single = ifs.get(po_url("PO-000002"), {"$expand": "ProjectRef"}).json()
    assert "ProjectRef" in single
    _error(ifs.get(PO, {"$expand": "LinePartArray"}), 501, "ODP_NOT_IMPLEMENTED")
    _error(ifs.get(PO, {"$expand": "NoSuchRef"}), 400)


def test_lines_by_set_and_by_navigation(ifs: Ifs) -> None:
    key = order_no(3)  # PO-000003/B: a slash in the key
    via_nav = ifs.get(f"{po_url(key)}/LinePartArray").json()["value"]
    via_set = ifs.all_pages(LINES, {"$filter": f"OrderNo eq '{key}'"})
    assert 1 <= len(via_nav) <= 3
    assert via_nav == via_set
    line = via_nav[0]
    assert {"CodeA", "CodeB", "CodeF", "ProjectId", "NetAmtCurr", "BuyQtyDue", "BuyUnitPrice", "PartNo"} <= set(line)
    single = ifs.get(f"{po_url(key)}/LinePartArray(OrderNo='{key}',LineNo='1',ReleaseNo='1')")
    assert single.status_code == 200 and single.json()["LineNo"] == "1"
    assert int(ifs.get(f"{po_url(key)}/LinePartArray/$count").text) == len(via_nav)
    order = ifs.get(po_url(key)).json()
    assert order["TotalAmount"] == pytest.approx(sum(x["NetAmtCurr"] for x in via_nav))


def test_work_orders_are_the_same_records_in_both_projections(ifs: Ifs) -> None:
    read = ifs.get(f"{WO_READ}(WoNo=1001)").json()
    prepared = ifs.get(f"{WO_PREP}(WoNo=1001)").json()
    assert read["@odata.etag"] == prepared["@odata.etag"]
    assert {k: v for k, v in read.items() if k != "@odata.context"} == {
        k: v for k, v in prepared.items() if k != "@odata.context"
    }
    assert read["WorkTypeId"] in {"CM", "PM", "SAFETY", "IMPROV"}
    assert read["PriorityId"] in {"1", "2", "3", "4"}
    assert {"OrgCode", "MchCode", "WorkLeaderSign", "RegDate", "Cf_Changed_At"} <= set(read)


def test_suppliers_persons_projects(ifs: Ifs) -> None:
    suppliers = ifs.all_pages("SupplierHandling.svc/SupplierInfoGeneralSet")
    assert len(suppliers) == 20 and {s["Cf_Supplier_Tier"] for s in suppliers} <= {"T1", "T2", "T3"}
    people = ifs.all_pages("PersonHandling.svc/PersonInfoSet")
    assert len(people) == 20 and all("@" in p["Email"] for p in people)
    assert any(p["PersonId"] == "AALVAREZ" and p["Email"] == "ana.alvarez@example.com" for p in people)
    projects = ifs.all_pages(
        "ProjectsHandling.svc/Projects", {"$filter": "Objstate ne IfsApp.ProjectsHandling.ProjectState'Closed'"}
    )
    assert projects and all(p["Objstate"] != "Closed" for p in projects)


def test_service_document_and_metadata(ifs: Ifs) -> None:
    service = ifs.get("PurchaseOrderHandling.svc/").json()
    assert {s["name"] for s in service["value"]} == {"PurchaseOrderSet", "PurchaseOrderLinePartSet"}
    response = ifs.get("PurchaseOrderHandling.svc/$metadata")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/xml")
    ns = {"edm": "http://docs.oasis-open.org/odata/ns/edm"}
    root = ET.fromstring(response.text)
    schema = root.find(".//edm:Schema", ns)
    assert schema is not None and schema.get("Namespace") == "IfsApp.PurchaseOrderHandling"
    po = schema.find("edm:EntityType[@Name='PurchaseOrder']", ns)
    assert po is not None
    assert [r.get("Name") for r in po.findall("edm:Key/edm:PropertyRef", ns)] == ["OrderNo"]
    types = {p.get("Name"): p.get("Type") for p in po.findall("edm:Property", ns)}
    assert types["Objstate"] == PO_STATE
    assert types["OrderDate"] == "Edm.Date"
    assert types["Cf_Changed_At"] == "Edm.DateTimeOffset"
    assert types["TotalAmount"] == "Edm.Decimal"
    members = [m.get("Name") for m in schema.findall("edm:EnumType[@Name='PurchaseOrderState']/edm:Member", ns)]
    assert members == ["Planned", "Released", "Confirmed", "Arrived", "Received", "Closed", "Cancelled"]
    actions = {a.get("Name") for a in schema.findall("edm:Action", ns)}
    assert {"PurchaseOrder_Release", "PurchaseOrder_Confirm", "PurchaseOrder_Close", "PurchaseOrder_Cancel"} <= actions
    sets = {s.get("Name") for s in schema.findall("edm:EntityContainer/edm:EntitySet", ns)}
    assert sets == {"PurchaseOrderSet", "PurchaseOrderLinePartSet"}
    wo = ET.fromstring(ifs.get("PrepareWorkOrderHandling.svc/$metadata").text)
    wo_actions = {a.get("Name") for a in wo.iter("{http://docs.oasis-open.org/odata/ns/edm}Action")}
    assert wo_actions == {f"ActiveSeparate_{a}" for a in ("Release", "StartOrder", "WorkDone", "Finish", "Cancel")}
    read_only = ET.fromstring(ifs.get("ActiveWorkOrdersHandling.svc/$metadata").text)
    assert not list(read_only.iter("{http://docs.oasis-open.org/odata/ns/edm}Action"))


def test_invalid_percent_encoding_is_400(ifs: Ifs) -> None:
    _error(ifs.get(f"{PO}(OrderNo='%FF')"), 400)
