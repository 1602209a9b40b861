"""If-Match as IFS documents it (ifs-api.md §3.2): ``*`` matches any current version, PATCH without it is an upsert,
bound actions need it; ``strict_if_match`` (option, CLI flag, ``/_sim/settings``) refuses the kind cases."""

from __future__ import annotations

import pytest

from ml_connector.serve import serve_in_thread
from ml_connector.sim.ifs import IfsSimOptions, create_app

from .conftest import Ifs, po_url

RELEASE = "IfsApp.PurchaseOrderHandling.PurchaseOrder_Release"


def _code(response: object) -> str:
    return str(getattr(response, "json")()["error"]["code"])  # noqa: B009


def test_star_patches_whatever_the_current_version(ifs: Ifs) -> None:
    before = ifs.get(po_url("PO-000030")).headers["ETag"]
    ifs.sim.edit("PurchaseOrder", "PO-000030", {"Description": "a user was faster"})
    response = ifs.patch(po_url("PO-000030"), {"Cf_Jira_Status": "Done"}, **{"If-Match": "*"})
    assert response.status_code == 200, response.text
    assert response.headers["ETag"] not in (before, "")
    raw = ifs.sim.get_raw("PurchaseOrder", "PO-000030")
    assert raw["Cf_Jira_Status"] == "Done" and raw["Description"] == "a user was faster"


def test_star_on_a_missing_key_is_404_and_creates_nothing(ifs: Ifs) -> None:
    before = ifs.sim.sizes()["PurchaseOrder"]
    response = ifs.patch(po_url("PO-999999"), {"Cf_Jira_Status": "Done"}, **{"If-Match": "*"})
    assert response.status_code == 404 and _code(response) == "ODP_RESOURCE_NOTFOUND"
    assert ifs.sim.sizes()["PurchaseOrder"] == before


def test_patch_without_if_match_updates_an_existing_row(ifs: Ifs) -> None:
    before = ifs.get(po_url("PO-000031")).json()
    response = ifs.patch(po_url("PO-000031"), {"Cf_Jira_Key": "OPS-1", "TotalAmount": 1.5, "Objstate": "Closed"})
    assert response.status_code == 200, response.text
    after = response.json()
    assert after["Cf_Jira_Key"] == "OPS-1"
    # "update if exists (non-updatable attributes ignored)"
    assert after["TotalAmount"] == before["TotalAmount"] and after["Objstate"] == before["Objstate"]
    assert after["@odata.etag"] != before["@odata.etag"]


def test_patch_with_an_etag_still_refuses_non_updatable_attributes(ifs: Ifs) -> None:
    etag = ifs.get(po_url("PO-000032")).headers["ETag"]
    response = ifs.patch(po_url("PO-000032"), {"TotalAmount": 1.5}, **{"If-Match": etag})
    assert response.status_code == 400 and _code(response) == "DATABASE_ERROR"


def test_patch_without_if_match_inserts_a_missing_key(ifs: Ifs) -> None:
    before = ifs.sim.sizes()["PurchaseOrder"]
    typo = ifs.patch(po_url("PO-00001"), {"Cf_Jira_Key": "A-3", "TotalAmount": 12.5, "Objstate": "Closed"})
    assert typo.status_code == 201, "PATCH without If-Match is an upsert: a typo'd key creates a record"
    created = typo.json()
    assert created["OrderNo"] == "PO-00001" and created["Cf_Jira_Key"] == "A-3" and created["TotalAmount"] == 12.5
    assert created["Objstate"] == "Planned"  # a new row starts in the initial state
    assert ifs.sim.sizes()["PurchaseOrder"] == before + 1
    again = ifs.patch(po_url("PO-00001"), {"Cf_Jira_Key": "A-4"})
    assert again.status_code == 200 and again.json()["Cf_Jira_Key"] == "A-4"
    assert ifs.sim.sizes()["PurchaseOrder"] == before + 1


def test_bound_action_needs_if_match_and_accepts_star(ifs: Ifs) -> None:
    ifs.sim.edit("PurchaseOrder", "PO-000033", {"Objstate": "Planned"})
    missing = ifs.post(f"{po_url('PO-000033')}/{RELEASE}")
    assert missing.status_code == 428 and _code(missing) == "ODP_MISSING_PRECONDITION"
    ifs.sim.edit("PurchaseOrder", "PO-000033", {"Description": "edited"})
    assert ifs.post(f"{po_url('PO-000033')}/{RELEASE}", **{"If-Match": "*"}).status_code == 204
    assert ifs.sim.get_raw("PurchaseOrder", "PO-000033")["Objstate"] == "Released"


def test_the_request_log_records_every_write_precondition(ifs: Ifs) -> None:
    etag = ifs.get(po_url("PO-000036")).headers["ETag"]
    ifs.sim.clear_requests()
    ifs.patch(po_url("PO-000036"), {"Cf_Jira_Key": "A-1"}, **{"If-Match": etag})
    ifs.patch(po_url("PO-000036"), {"Cf_Jira_Key": "A-2"}, **{"If-Match": "*"})
    ifs.patch(po_url("PO-000036"), {"Cf_Jira_Key": "A-3"})
    patches = [r for r in ifs.sim.requests() if r["method"] == "PATCH"]
    assert [(p["if_match"], p["status"]) for p in patches] == [(etag, 200), ("*", 200), (None, 200)]


def _assert_strict(ifs: Ifs) -> None:
    missing = ifs.patch(po_url("PO-000035"), {"Cf_Jira_Status": "Done"})
    assert missing.status_code == 428 and _code(missing) == "ODP_MISSING_PRECONDITION"
    star = ifs.patch(po_url("PO-000035"), {"Cf_Jira_Status": "Done"}, **{"If-Match": "*"})
    assert star.status_code == 428 and _code(star) == "ODP_MISSING_PRECONDITION"
    ifs.sim.edit("PurchaseOrder", "PO-000035", {"Objstate": "Planned"})
    assert ifs.post(f"{po_url('PO-000035')}/{RELEASE}", **{"If-Match": "*"}).status_code == 428
    assert ifs.sim.get_raw("PurchaseOrder", "PO-000035")["Cf_Jira_Status"] is None
    etag = ifs.get(po_url("PO-000035")).headers["ETag"]
    assert ifs.patch(po_url("PO-000035"), {"Cf_Jira_Status": "Done"}, **{"If-Match": etag}).status_code == 200


def test_strict_if_match_option_refuses_missing_and_star() -> None:
    app = create_app(IfsSimOptions(strict_if_match=True))
    with serve_in_thread(app) as handle:
        ifs = Ifs(handle.url, app.state.sim)
        ifs.token = ifs.login()
        assert ifs.http.get("/_sim/settings").json() == {"strict_if_match": True}
        _assert_strict(ifs)
        ifs.http.close()


def test_strict_if_match_through_the_control_api(ifs: Ifs) -> None:
    turned_on = ifs.http.put("/_sim/settings", json={"strict_if_match": True})
    assert turned_on.status_code == 200 and turned_on.json() == {"strict_if_match": True}
    _assert_strict(ifs)
    ifs.http.post("/_sim/reset", json={})
    assert ifs.http.get("/_sim/settings").json() == {"strict_if_match": False}, "reset restores the start-up value"


@pytest.mark.parametrize(
    ("body", "needle"),
    [({"strict_if_match": "yes"}, "true or false"), ({"strict": True}, "not run-time settings"), ([], "JSON object")],
)
def test_settings_refuse_bad_bodies(ifs: Ifs, body: object, needle: str) -> None:
    response = ifs.http.put("/_sim/settings", json=body)
    assert response.status_code == 400 and needle in response.json()["error"]["message"]


def test_preconditions_are_tallied_until_reset_not_cleared_with_the_log(ifs: Ifs) -> None:
    etag = ifs.get(po_url("PO-000037")).headers["ETag"]
    ifs.patch(po_url("PO-000037"), {"Cf_Jira_Key": "A-1"}, **{"If-Match": etag})
    ifs.patch(po_url("PO-000037"), {"Cf_Jira_Key": "A-2"}, **{"If-Match": "*"})
    ifs.patch(po_url("PO-000037"), {"Cf_Jira_Key": "A-3"})
    ifs.patch(po_url("PO-000037"), {"Cf_Jira_Key": "A-4"}, **{"If-Match": "not-a-tag"})
    ifs.post(f"{po_url('PO-000037')}/{RELEASE}")
    ifs.http.delete("/_sim/requests")
    tally = ifs.http.get("/_sim/requests").json()["preconditions"]
    assert tally == {"PATCH etag": 1, "PATCH any": 1, "PATCH none": 1, "PATCH malformed": 1, "action none": 1}
    ifs.http.post("/_sim/reset", json={})
    assert ifs.http.get("/_sim/requests").json()["preconditions"] == {}
