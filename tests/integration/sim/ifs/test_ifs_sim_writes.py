"""Writes: PATCH with If-Match (412), bound state actions, objversion and Cf_Changed_At bumps."""

from __future__ import annotations

import base64
import datetime as dt

import pytest

from ml_connector.sim.ifs import order_no

from .conftest import PO, WO_PREP, WO_READ, Ifs, po_url

RELEASE = "IfsApp.PurchaseOrderHandling.PurchaseOrder_Release"
CONFIRM = "IfsApp.PurchaseOrderHandling.PurchaseOrder_Confirm"


def _objversion(etag: str) -> str:
    return base64.b64decode(etag[3:-1]).decode().rsplit(":", 1)[1].rstrip('"')


def _code(response: object) -> str:
    return str(getattr(response, "json")()["error"]["code"])  # noqa: B009


def _po_in_state(ifs: Ifs, state: str) -> str:
    key = order_no(5)  # PO-000005'Q: a quote in the key
    ifs.sim.edit("PurchaseOrder", key, {"Objstate": state})
    return key


def test_patch_with_current_etag_writes_and_bumps_version(ifs: Ifs) -> None:
    key = order_no(8)  # PO-000008&C
    read = ifs.get(po_url(key))
    etag = read.headers["ETag"]
    response = ifs.patch(po_url(key), {"Cf_Jira_Status": "In Progress", "Cf_Jira_Key": "OPS-12"}, **{"If-Match": etag})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["Cf_Jira_Status"] == "In Progress" and body["Cf_Jira_Key"] == "OPS-12"
    assert response.headers["ETag"] == body["@odata.etag"] != etag
    assert _objversion(body["@odata.etag"]) > _objversion(etag)
    assert body["Cf_Changed_At"] > read.json()["Cf_Changed_At"]
    now = ifs.sim.now()
    changed = dt.datetime.fromisoformat(body["Cf_Changed_At"].replace("Z", "+00:00"))
    assert abs((now - changed).total_seconds()) < 5
    assert ifs.get(po_url(key)).json()["Cf_Jira_Key"] == "OPS-12"


def test_reads_never_change_the_version_or_stamp(ifs: Ifs) -> None:
    first = ifs.get(po_url("PO-000010")).json()
    ifs.get(PO, {"$filter": "OrderNo eq 'PO-000010'"})
    assert ifs.get(po_url("PO-000010")).json() == first


def test_stale_if_match_is_412(ifs: Ifs) -> None:
    etag = ifs.get(po_url("PO-000011")).headers["ETag"]
    ifs.sim.edit("PurchaseOrder", "PO-000011", {"Description": "a user was faster"})
    response = ifs.patch(po_url("PO-000011"), {"Cf_Jira_Status": "Done"}, **{"If-Match": etag})
    assert response.status_code == 412 and _code(response) == "ODP_PRECONDITION_FAILED"
    assert ifs.sim.get_raw("PurchaseOrder", "PO-000011")["Cf_Jira_Status"] is None


def test_patch_refusals(ifs: Ifs) -> None:
    etag = ifs.get(po_url("PO-000014")).headers["ETag"]
    headers = {"If-Match": etag}
    not_writable = ifs.patch(po_url("PO-000014"), {"Objstate": "Closed"}, **headers)
    assert not_writable.status_code == 400
    unknown = ifs.patch(po_url("PO-000014"), {"Cf_Nope": "x"}, **headers)
    assert unknown.status_code == 400 and _code(unknown) == "ODP_DESERIALIZATION_ERROR"
    too_long = ifs.patch(po_url("PO-000014"), {"Cf_Jira_Key": "X" * 51}, **headers)
    assert too_long.status_code == 400
    wrong_type = ifs.patch(po_url("PO-000014"), {"Cf_Jira_Key": 12}, **headers)
    assert wrong_type.status_code == 400
    no_json = ifs.http.patch(
        f"/main/ifsapplications/projection/v1/{po_url('PO-000014')}",
        content=b'{"Cf_Jira_Key": "A-1"}',
        headers={**ifs.headers(), **headers, "Content-Type": "text/plain"},
    )
    assert no_json.status_code == 400 and _code(no_json) == "ODP_DESERIALIZATION_ERROR"
    read_only = ifs.patch(f"{WO_READ}(WoNo=1001)", {"Cf_Jira_Key": "A-1"}, **{"If-Match": "x"})
    assert read_only.status_code == 405
    assert ifs.get(po_url("PO-000014")).headers["ETag"] == etag


def test_prefer_return_minimal_answers_204_with_etag(ifs: Ifs) -> None:
    etag = ifs.get(f"{WO_PREP}(WoNo=1002)").headers["ETag"]
    response = ifs.patch(
        f"{WO_PREP}(WoNo=1002)", {"Cf_Jira_Status": "Done"}, **{"If-Match": etag, "Prefer": "return=minimal"}
    )
    assert response.status_code == 204 and response.content == b""
    assert response.headers["ETag"] == ifs.get(f"{WO_READ}(WoNo=1002)").json()["@odata.etag"]


def test_objversion_strictly_increases_within_one_second(ifs: Ifs) -> None:
    versions = []
    for i in range(5):
        etag = ifs.get(po_url("PO-000015")).headers["ETag"]
        response = ifs.patch(po_url("PO-000015"), {"Cf_Jira_Status": f"s{i}"}, **{"If-Match": etag})
        assert response.status_code == 200
        versions.append(_objversion(response.headers["ETag"]))
    assert versions == sorted(versions) and len(set(versions)) == 5


def test_bound_action_needs_if_match(ifs: Ifs) -> None:
    key = _po_in_state(ifs, "Planned")
    missing = ifs.post(f"{po_url(key)}/{RELEASE}")
    assert missing.status_code == 428 and _code(missing) == "ODP_MISSING_PRECONDITION"
    stale = ifs.get(po_url(key)).headers["ETag"]
    ifs.sim.edit("PurchaseOrder", key, {"Description": "edited"})
    assert ifs.post(f"{po_url(key)}/{RELEASE}", **{"If-Match": stale}).status_code == 412
    assert ifs.get(po_url(key)).json()["Objstate"] == "Planned"


def test_bound_actions_walk_the_state_machine(ifs: Ifs) -> None:
    key = _po_in_state(ifs, "Planned")
    etag = ifs.get(po_url(key)).headers["ETag"]
    assert ifs.post(f"{po_url(key)}/{RELEASE}", **{"If-Match": etag}).status_code == 204
    after = ifs.get(po_url(key))
    assert after.json()["Objstate"] == "Released"
    assert after.headers["ETag"] != etag
    illegal = ifs.post(f"{po_url(key)}/{RELEASE}", **{"If-Match": after.headers["ETag"]})
    assert illegal.status_code == 400 and "Released" in illegal.json()["error"]["message"]
    assert ifs.post(f"{po_url(key)}/{CONFIRM}", **{"If-Match": after.headers["ETag"]}).status_code == 204
    assert ifs.get(po_url(key)).json()["Objstate"] == "Confirmed"
    unknown = ifs.post(f"{po_url(key)}/IfsApp.PurchaseOrderHandling.PurchaseOrder_Explode", **{"If-Match": "x"})
    assert unknown.status_code == 404
    assert ifs.get(f"{po_url(key)}/{CONFIRM}").status_code == 405


@pytest.mark.parametrize(
    ("start", "action", "end"),
    [
        ("WorkRequest", "Release", "Released"),
        ("Released", "StartOrder", "Started"),
        ("Started", "WorkDone", "WorkDone"),
        ("WorkDone", "Finish", "Finished"),
        ("Prepared", "Cancel", "Cancelled"),
    ],
)
def test_work_order_actions_in_the_prepare_projection(ifs: Ifs, start: str, action: str, end: str) -> None:
    ifs.sim.edit("WorkOrder", 1003, {"Objstate": start})
    etag = ifs.get(f"{WO_PREP}(WoNo=1003)").headers["ETag"]
    name = f"IfsApp.PrepareWorkOrderHandling.ActiveSeparate_{action}"
    assert ifs.post(f"{WO_PREP}(WoNo=1003)/{name}", **{"If-Match": etag}).status_code == 204
    assert ifs.get(f"{WO_READ}(WoNo=1003)").json()["Objstate"] == end
    read_set = ifs.post(f"{WO_READ}(WoNo=1003)/IfsApp.ActiveWorkOrdersHandling.ActiveSeparate_{action}")
    assert read_set.status_code == 404


def test_work_order_illegal_transition_is_400(ifs: Ifs) -> None:
    ifs.sim.edit("WorkOrder", 1004, {"Objstate": "Finished"})
    etag = ifs.get(f"{WO_PREP}(WoNo=1004)").headers["ETag"]
    response = ifs.post(
        f"{WO_PREP}(WoNo=1004)/IfsApp.PrepareWorkOrderHandling.ActiveSeparate_StartOrder", **{"If-Match": etag}
    )
    assert response.status_code == 400
