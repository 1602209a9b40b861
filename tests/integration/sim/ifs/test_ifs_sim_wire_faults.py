"""The wire-level fault kinds of ``fail_next`` over real HTTP: drops before and after acting, HTML pages, truncated
bodies and hangs, with the method filter; the write either happened on the server or it did not."""

from __future__ import annotations

import time

import httpx2
import pytest

from ml_connector.sim.ifs import BASE_PATH

from .conftest import PO, TOKEN_FORM, TOKEN_PATH, Ifs, po_url

# A closed connection reaches the client as a clean close or, when the server left request bytes unread, a reset.
DROPPED = (httpx2.RemoteProtocolError, httpx2.ReadError)
KEY = "PO-000031"


def _patch_rule(kind: str, **extra: object) -> dict[str, object]:
    return {"kind": kind, "method": "PATCH", "path_contains": "PurchaseOrderSet(", **extra}


def _etag(ifs: Ifs) -> str:
    response = ifs.get(po_url(KEY))
    assert response.status_code == 200, response.text
    return str(response.json()["@odata.etag"])


def _status(ifs: Ifs) -> object:
    return ifs.sim.get_raw("PurchaseOrder", KEY).get("Cf_Jira_Status")


def _patch(ifs: Ifs, etag: str, value: str) -> httpx2.Response:
    return ifs.patch(po_url(KEY), {"Cf_Jira_Status": value}, **{"If-Match": etag})


def test_drop_before_does_not_act(ifs: Ifs) -> None:
    etag = _etag(ifs)
    ifs.sim.set_faults(fail_next=[_patch_rule("drop_before")])
    with pytest.raises(DROPPED):
        _patch(ifs, etag, "Dropped")
    assert _status(ifs) != "Dropped"
    assert _patch(ifs, etag, "Second").status_code == 200  # the rule is used up and the ETag still current


def test_status_zero_stays_an_alias_of_drop_before(ifs: Ifs) -> None:
    ifs.sim.set_faults(fail_next=[{"status": 0, "path_contains": "PurchaseOrderSet"}])
    with pytest.raises(DROPPED):
        ifs.get(PO, {"$top": "1"})
    assert ifs.get(PO, {"$top": "1"}).status_code == 200


def test_drop_after_acts_then_drops(ifs: Ifs) -> None:
    etag = _etag(ifs)
    ifs.sim.set_faults(fail_next=[_patch_rule("drop_after")])
    with pytest.raises(DROPPED):
        _patch(ifs, etag, "Acted")
    assert _status(ifs) == "Acted"
    assert _patch(ifs, etag, "Again").status_code == 412  # the first write went through: the ETag moved on
    entry = next(e for e in ifs.sim.requests() if e["method"] == "PATCH")
    assert entry["status"] == 200  # the log says what the server did, not what the client saw


def test_truncated_acts_and_cuts_the_body(ifs: Ifs) -> None:
    etag = _etag(ifs)
    ifs.sim.set_faults(fail_next=[_patch_rule("truncated")])
    with pytest.raises(httpx2.RemoteProtocolError, match=r"incomplete|complete message body"):
        _patch(ifs, etag, "Cut")
    assert _status(ifs) == "Cut"


def test_truncated_read_declares_the_full_length_and_sends_half(ifs: Ifs) -> None:
    ifs.sim.set_faults(fail_next=[{"kind": "truncated", "method": "GET", "path_contains": "PurchaseOrderSet"}])
    received = bytearray()
    with (
        pytest.raises(DROPPED),
        ifs.http.stream("GET", f"{BASE_PATH}/{PO}", params={"$top": "5"}, headers=ifs.headers()) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/json")
        declared = int(response.headers["content-length"])
        for chunk in response.iter_raw():
            received.extend(chunk)
    assert 0 < len(received) < declared


def test_html_page_answers_200_without_acting(ifs: Ifs) -> None:
    etag = _etag(ifs)
    ifs.sim.set_faults(fail_next=[_patch_rule("html")])
    response = _patch(ifs, etag, "Html")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "<html" in response.text
    assert _status(ifs) != "Html"


def test_html_on_the_token_endpoint(ifs: Ifs) -> None:
    ifs.sim.set_faults(fail_next=[{"kind": "html", "path_contains": "openid-connect/token"}])
    response = ifs.http.post(TOKEN_PATH, data=TOKEN_FORM)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    assert ifs.http.post(TOKEN_PATH, data=TOKEN_FORM).json()["access_token"]


def test_method_filter_leaves_other_methods_alone(ifs: Ifs) -> None:
    ifs.sim.set_faults(fail_next=[_patch_rule("drop_before", count=1000)])
    for _ in range(3):
        assert ifs.get(po_url(KEY)).status_code == 200
    with pytest.raises(DROPPED):
        _patch(ifs, _etag(ifs), "Never")
    assert ifs.sim.faults.fail_next[0].count == 999  # persistent: only the PATCH used one


def test_hang_answers_late(ifs: Ifs) -> None:
    ifs.sim.set_faults(fail_next=[{"kind": "hang", "hang_seconds": 0.5, "path_contains": "PurchaseOrderSet"}])
    started = time.monotonic()
    assert ifs.get(PO, {"$top": "1"}).status_code == 200
    assert time.monotonic() - started >= 0.5


def test_hang_outlasts_the_client_timeout_and_is_abandoned(ifs: Ifs) -> None:
    etag = _etag(ifs)
    ifs.sim.set_faults(fail_next=[_patch_rule("hang", hang_seconds=30)])
    started = time.monotonic()
    with pytest.raises(httpx2.ReadTimeout):
        ifs.http.patch(
            f"{BASE_PATH}/{po_url(KEY)}",
            json={"Cf_Jira_Status": "Late"},
            headers=ifs.headers(**{"If-Match": etag}),
            timeout=httpx2.Timeout(5, read=0.3),
        )
    assert time.monotonic() - started < 5
    # the server notices the client left and never applies the write
    deadline = time.monotonic() + 5
    while ifs.sim.faults.fail_next and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _patch(ifs, etag, "After").status_code == 200
    assert _status(ifs) == "After"


def test_kind_is_validated(ifs: Ifs) -> None:
    response = ifs.http.put("/_sim/faults", json={"fail_next": [{"kind": "explode"}]})
    assert response.status_code == 400
