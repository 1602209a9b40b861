"""Faults: latency, 429 budget per client, 503 MI_MODIFIED_ERROR, dropped connections, concurrent edits,
scripted failures; and the request log."""

from __future__ import annotations

import asyncio
import time

import httpx2
import pytest

from ml_connector.sim.ifs import ConnectionDropped, IfsSimOptions, create_app

from .conftest import PO, TOKEN_FORM, TOKEN_PATH, Ifs, po_url


def test_default_budget_is_1000_per_minute() -> None:
    assert IfsSimOptions().faults.rate_limit_per_minute == 1000


def test_429_with_retry_after_per_client_and_rolling_window(ifs: Ifs) -> None:
    ifs.sim.set_faults(rate_limit_per_minute=5)
    ifs.sim.options.extra_clients["other"] = "other-secret"
    try:
        other = ifs.login("other", "other-secret")
    finally:
        del ifs.sim.options.extra_clients["other"]
    for _ in range(3):  # the token endpoint is not counted
        ifs.login()
    for _ in range(5):
        assert ifs.get(PO, {"$top": "1"}).status_code == 200
    refused = ifs.get(PO, {"$top": "1"})
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.json()["error"]["code"]
    # another client id has its own budget
    assert ifs.get(PO, {"$top": "1"}, token=other).status_code == 200
    # the window rolls: a minute later the client may call again
    ifs.sim.set_clock(61)
    assert ifs.get(PO, {"$top": "1"}, token=ifs.login()).status_code == 200


def test_retry_after_seconds_override(ifs: Ifs) -> None:
    ifs.sim.set_faults(rate_limit_per_minute=1, retry_after_seconds=7)
    ifs.get(PO, {"$top": "1"})
    assert ifs.get(PO, {"$top": "1"}).headers["Retry-After"] == "7"


def test_retry_after_null_means_no_header_and_window_restores_the_computed_one(ifs: Ifs) -> None:
    response = ifs.http.put("/_sim/faults", json={"rate_limit_per_minute": 1, "retry_after_seconds": None})
    assert response.status_code == 200 and response.json()["retry_after_seconds"] is None
    ifs.get(PO, {"$top": "1"})
    refused = ifs.get(PO, {"$top": "1"})
    assert refused.status_code == 429 and "Retry-After" not in refused.headers
    assert ifs.http.put("/_sim/faults", json={"retry_after_seconds": "window"}).status_code == 200
    assert 1 <= int(ifs.get(PO, {"$top": "1"}).headers["Retry-After"]) <= 60
    assert IfsSimOptions().faults.retry_after_seconds == "window"


@pytest.mark.parametrize("value", ["soon", True, -1, [5], {"s": 5}])
def test_retry_after_of_a_wrong_type_is_a_clear_400(ifs: Ifs, value: object) -> None:
    response = ifs.http.put("/_sim/faults", json={"retry_after_seconds": value})
    assert response.status_code == 400
    message = response.json()["error"]["message"]
    assert message.startswith("invalid faults: retry_after_seconds: must be a finite number >= 0"), message
    assert ifs.http.get("/_sim/faults").json()["retry_after_seconds"] == "window"


def test_other_fault_type_errors_are_400_naming_the_field(ifs: Ifs) -> None:
    response = ifs.http.put("/_sim/faults", json={"latency_ms": None, "fail_next": [{"status": "x"}]})
    assert response.status_code == 400
    message = response.json()["error"]["message"]
    assert "latency_ms:" in message and "fail_next.0.status:" in message and "errors.pydantic.dev" not in message


def test_latency(ifs: Ifs) -> None:
    ifs.http.put("/_sim/faults", json={"latency_ms": 300})
    start = time.monotonic()
    assert ifs.get(PO, {"$top": "1"}).status_code == 200
    assert time.monotonic() - start >= 0.3


def test_503_mi_modified_error(ifs: Ifs) -> None:
    ifs.sim.set_faults(error_503_rate=1.0)
    response = ifs.get(PO, {"$top": "1"})
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "MI_MODIFIED_ERROR"
    assert "Retry-After" not in response.headers or int(response.headers["Retry-After"]) >= 0
    ifs.sim.set_faults(error_503_rate=0.0)
    assert ifs.get(PO, {"$top": "1"}).status_code == 200


def test_dropped_connection_is_a_transport_error(ifs: Ifs) -> None:
    ifs.sim.set_faults(drop_rate=1.0)
    with pytest.raises(httpx2.TransportError) as caught:
        ifs.get(PO, {"$top": "1"})
    assert isinstance(caught.value, httpx2.RemoteProtocolError | httpx2.ReadError)
    # IAM and the control API are not dropped by the random fault
    assert ifs.login()
    ifs.sim.set_faults(drop_rate=0.0)
    assert ifs.get(PO, {"$top": "1"}).status_code == 200
    dropped = [r for r in ifs.sim.requests() if r["endpoint"] == f"GET {PO}"]
    assert dropped[0]["status"] is None and dropped[-1]["status"] == 200


def test_concurrent_edit_between_read_and_write_gives_412(ifs: Ifs) -> None:
    ifs.sim.set_faults(concurrent_edit_rate=1.0)
    read = ifs.get(po_url("PO-000020"))
    response = ifs.patch(po_url("PO-000020"), {"Cf_Jira_Status": "Done"}, **{"If-Match": read.headers["ETag"]})
    assert response.status_code == 412
    ifs.sim.set_faults(concurrent_edit_rate=0.0)
    fresh = ifs.get(po_url("PO-000020")).headers["ETag"]
    assert fresh != read.headers["ETag"]
    ok = ifs.patch(po_url("PO-000020"), {"Cf_Jira_Status": "Done"}, **{"If-Match": fresh})
    assert ok.status_code == 200


def test_fail_next_in_order_with_path_filter(ifs: Ifs) -> None:
    faults = {
        "fail_next": [
            {"status": 503, "count": 2},
            {"status": 429, "retry_after": 3},
            {"status": 500, "path_contains": "openid-connect/token"},
            {"status": 0, "path_contains": "ActiveSeparateSet"},
        ]
    }
    assert ifs.http.put("/_sim/faults", json=faults).status_code == 200
    assert [ifs.get(PO, {"$top": "1"}).status_code for _ in range(2)] == [503, 503]
    third = ifs.get(PO, {"$top": "1"})
    assert third.status_code == 429 and third.headers["Retry-After"] == "3"
    assert ifs.get(PO, {"$top": "1"}).status_code == 200
    token = ifs.http.post(TOKEN_PATH, data=TOKEN_FORM)
    assert token.status_code == 500
    with pytest.raises(httpx2.TransportError):
        ifs.get("ActiveWorkOrdersHandling.svc/ActiveSeparateSet")
    assert ifs.http.get("/_sim/faults").json()["fail_next"] == []


def test_fail_next_401_carries_a_challenge(ifs: Ifs) -> None:
    ifs.sim.set_faults(fail_next=[{"status": 401}])
    response = ifs.get(PO, {"$top": "1"})
    assert response.status_code == 401 and response.headers["WWW-Authenticate"].startswith("Bearer")


def test_request_log_counts_per_endpoint(ifs: Ifs) -> None:
    ifs.http.delete("/_sim/requests")
    ifs.get(PO, {"$top": "2"})
    ifs.get(PO, {"$top": "3"})
    etag = ifs.get(po_url("PO-000021%E")).headers["ETag"]
    ifs.patch(po_url("PO-000021%E"), {"Cf_Jira_Key": "X-1"}, **{"If-Match": etag})
    ifs.get(f"{PO}/$count")
    ifs.get("PurchaseOrderHandling.svc/$metadata")
    ifs.get(PO, {"$top": "1"}, token="bad")
    ifs.login()
    ifs.http.get("/_sim/faults")  # not logged
    log = ifs.http.get("/_sim/requests").json()
    assert log["counts"] == {
        f"GET {PO}": 3,
        f"GET {PO}(...)": 1,
        f"PATCH {PO}(...)": 1,
        f"GET {PO}/$count": 1,
        "GET PurchaseOrderHandling.svc/$metadata": 1,
        "POST auth/realms/mlc/protocol/openid-connect/token": 1,
    }
    entries = log["requests"]
    assert [e["seq"] for e in entries] == sorted(e["seq"] for e in entries)
    patch = next(e for e in entries if e["method"] == "PATCH")
    assert patch["if_match"] == etag and patch["status"] == 200 and patch["client_id"] == "ml-connector"
    assert patch["path"].endswith("PurchaseOrderSet(OrderNo='PO-000021%E')")
    bad = [e for e in entries if e["status"] == 401]
    assert len(bad) == 1 and bad[0]["client_id"] is None and bad[0]["query"] == "%24top=1"
    assert all(e["time"].endswith("Z") for e in entries)
    assert ifs.http.delete("/_sim/requests").status_code == 204
    cleared = ifs.http.get("/_sim/requests").json()
    assert cleared["requests"] == [] and cleared["counts"] == {}
    assert cleared["preconditions"] == {"PATCH etag": 1}, "the write tally outlives the log, until reset"


def test_drop_in_process_raises_where_there_is_no_socket() -> None:
    app = create_app()
    app.state.sim.set_faults(drop_rate=1.0)
    token, _ = app.state.sim.issue_token()

    async def call() -> None:
        async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://sim") as client:
            await client.get(f"/main/ifsapplications/projection/v1/{PO}", headers={"Authorization": f"Bearer {token}"})

    with pytest.raises(ConnectionDropped):
        asyncio.run(call())


def test_concurrent_edit_after_a_collection_read(ifs: Ifs) -> None:
    ifs.sim.set_faults(concurrent_edit_rate=1.0)
    row = ifs.get(PO, {"$filter": "OrderNo eq 'PO-000022'"}).json()["value"][0]
    ifs.sim.set_faults(concurrent_edit_rate=0.0)
    response = ifs.patch(po_url("PO-000022"), {"Cf_Jira_Status": "Done"}, **{"If-Match": row["@odata.etag"]})
    assert response.status_code == 412
