"""IfsClient against the IFS simulator's wire faults over loopback HTTP: HTML pages, cut bodies, dropped connections
and hangs on reads, PATCH and the token endpoint become classified errors with a clear message; reads recover when
the fault passes; a PATCH whose first try acted is not applied twice (If-Match makes the resend a 412)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from ml_connector.config.connections import HttpSettings
from ml_connector.errors import ConcurrencyConflict, MalformedResponse, Unavailable
from ml_connector.ifs import IfsClient
from ml_connector.serve import ServerHandle

from .conftest import PO_SET, SimControl, connection

PO_PATH = "/main/ifsapplications/projection/v1/PurchaseOrderHandling.svc/PurchaseOrderSet"
TOKEN = "openid-connect/token"
PERSISTENT = 1000


@pytest.fixture
def control(client: IfsClient, sim: tuple[ServerHandle, SimControl]) -> Iterator[SimControl]:
    """The simulator, reset by ``client``; faults set by a test are cleared afterwards."""
    yield sim[1]
    sim[1].faults(fail_next=[])


def _rule(kind: str, *, count: int = 1, method: str | None = None, path: str = "PurchaseOrderSet", **extra: Any) -> Any:
    return {"kind": kind, "count": count, "method": method, "path_contains": path, **extra}


def _key(client: IfsClient) -> dict[str, Any]:
    row = next(client.iter_records(PO_SET, page_size=1, select=["OrderNo"]))
    return {"OrderNo": row["OrderNo"]}


def _calls(control: SimControl, method: str, needle: str) -> list[dict[str, Any]]:
    return [r for r in control.requests()["requests"] if r["method"] == method and needle in str(r["path"])]


# ------------------------------------------------------------------------------------------------ reads


def test_html_read_is_malformed_with_a_clear_message(client: IfsClient, control: SimControl) -> None:
    control.faults(fail_next=[_rule("html", count=PERSISTENT)])
    with pytest.raises(MalformedResponse) as info:
        list(client.iter_records(PO_SET, page_size=5, key_fields=["OrderNo"]))
    assert str(info.value) == f"ifs: expected JSON from GET {PO_PATH}, got text/html (proxy or login page?)"


@pytest.mark.parametrize("kind", ["html", "truncated", "drop_before", "drop_after"])
def test_a_passing_fault_on_a_read_is_retried_and_recovers(kind: str, client: IfsClient, control: SimControl) -> None:
    key = _key(client)
    control.clear_requests()
    control.faults(fail_next=[_rule(kind, count=2, method="GET")])
    record, etag = client.get(PO_SET, key)
    assert record["OrderNo"] == key["OrderNo"] and etag
    assert len(_calls(control, "GET", "PurchaseOrderSet(")) == 3


@pytest.mark.parametrize(
    ("kind", "error", "phrase"),
    [
        ("truncated", Unavailable, f"connection lost before the answer to GET {PO_PATH} was complete"),
        ("drop_before", Unavailable, f"connection lost before the answer to GET {PO_PATH}"),
        ("html", MalformedResponse, "got text/html (proxy or login page?)"),
    ],
)
def test_a_persistent_fault_on_a_page_read_is_classified(
    kind: str, error: type[Exception], phrase: str, client: IfsClient, control: SimControl
) -> None:
    control.faults(fail_next=[_rule(kind, count=PERSISTENT)])
    with pytest.raises(error) as info:
        list(client.iter_records(PO_SET, page_size=5, key_fields=["OrderNo"]))
    assert phrase in str(info.value)
    assert not isinstance(info.value, MalformedResponse) or kind == "html"


def test_a_hang_past_the_read_timeout_is_an_ambiguous_unavailable(
    sim: tuple[ServerHandle, SimControl], control: SimControl
) -> None:
    handle, _ = sim
    settings = HttpSettings(read_timeout=0.4, max_attempts=2, backoff_initial=0.01, backoff_max=0.02)
    with IfsClient.from_connection(connection(handle.url, http=settings)) as slow:
        key = _key(slow)
        control.faults(fail_next=[_rule("hang", count=PERSISTENT, method="GET", hang_seconds=30)])
        started = time.monotonic()
        with pytest.raises(Unavailable) as info:
            slow.get(PO_SET, key)
        assert time.monotonic() - started < 5  # two tries of 0.4 s, not the 30 s hang
    assert "no answer to GET" in str(info.value) and "in time (ReadTimeout); the server may have acted" in str(
        info.value
    )
    assert info.value.not_sent is False


# ------------------------------------------------------------------------------------------------ PATCH


def test_html_on_patch_is_retried_then_applies_once(client: IfsClient, control: SimControl) -> None:
    key = _key(client)
    _, etag = client.get(PO_SET, key)
    control.faults(fail_next=[_rule("html", method="PATCH")])
    updated, _ = client.patch(PO_SET, key, {"Cf_Jira_Status": "Html Then Ok"}, etag)
    assert updated["Cf_Jira_Status"] == "Html Then Ok"


@pytest.mark.parametrize("kind", ["drop_after", "truncated"])
def test_a_patch_that_acted_before_the_answer_was_lost_is_not_applied_twice(
    kind: str, client: IfsClient, control: SimControl
) -> None:
    key = _key(client)
    _, etag = client.get(PO_SET, key)
    before = control.raw("PurchaseOrder", key["OrderNo"])["objversion"]
    control.clear_requests()
    control.faults(fail_next=[_rule(kind, method="PATCH")])
    with pytest.raises(ConcurrencyConflict):  # the resend carries the old ETag: IFS refuses it, the caller re-reads
        client.patch(PO_SET, key, {"Cf_Jira_Status": "Acted Once"}, etag)
    raw = control.raw("PurchaseOrder", key["OrderNo"])
    assert raw["Cf_Jira_Status"] == "Acted Once" and str(raw["objversion"]) > str(before)
    assert [c["status"] for c in _calls(control, "PATCH", "PurchaseOrderSet(")] == [200, 412]


def test_a_persistent_html_answer_to_patch_is_malformed(client: IfsClient, control: SimControl) -> None:
    key = _key(client)
    _, etag = client.get(PO_SET, key)
    control.faults(fail_next=[_rule("html", method="PATCH", count=PERSISTENT)])
    with pytest.raises(MalformedResponse, match=r"^ifs: expected JSON from PATCH .*got text/html"):
        client.patch(PO_SET, key, {"Cf_Jira_Status": "Never"}, etag)
    assert control.raw("PurchaseOrder", key["OrderNo"]).get("Cf_Jira_Status") != "Never"


# ------------------------------------------------------------------------------------------------ token endpoint


@pytest.mark.parametrize("kind", ["html", "truncated", "drop_after"])
def test_a_passing_fault_on_the_token_endpoint_recovers(
    kind: str, sim: tuple[ServerHandle, SimControl], control: SimControl
) -> None:
    control.faults(fail_next=[_rule(kind, path=TOKEN, count=2)])
    with IfsClient.from_connection(connection(sim[0].url)) as fresh:
        assert _key(fresh)["OrderNo"]


@pytest.mark.parametrize(
    ("kind", "error", "phrase"),
    [
        ("html", MalformedResponse, "ifs-iam: expected JSON from POST /auth/realms/mlc/protocol/openid-connect/token"),
        (
            "truncated",
            Unavailable,
            "connection lost before the answer to POST /auth/realms/mlc/protocol/openid-connect",
        ),
    ],
)
def test_a_persistent_fault_on_the_token_endpoint_is_classified_not_auth(
    kind: str, error: type[Exception], phrase: str, sim: tuple[ServerHandle, SimControl], control: SimControl
) -> None:
    control.faults(fail_next=[_rule(kind, path=TOKEN, count=PERSISTENT)])
    with IfsClient.from_connection(connection(sim[0].url)) as fresh, pytest.raises(error) as info:
        _key(fresh)
    assert phrase in str(info.value)
    assert "sim-secret" not in str(info.value)


@pytest.mark.parametrize(
    ("kind", "phrase"),
    [
        ("drop_before", "connection lost before the answer to PATCH"),
        ("drop_after", "connection lost before the answer to PATCH"),
        ("truncated", "connection lost before the answer to PATCH"),
        ("hang", "no answer to PATCH"),
    ],
)
def test_a_persistent_fault_on_patch_is_an_ambiguous_unavailable(
    kind: str, phrase: str, sim: tuple[ServerHandle, SimControl], control: SimControl
) -> None:
    settings = HttpSettings(read_timeout=0.4, max_attempts=3, backoff_initial=0.01, backoff_max=0.02)
    with IfsClient.from_connection(connection(sim[0].url, http=settings)) as c:
        key = _key(c)
        _, etag = c.get(PO_SET, key)
        control.faults(fail_next=[_rule(kind, method="PATCH", count=PERSISTENT, hang_seconds=30)])
        with pytest.raises(Unavailable) as info:
            c.patch(PO_SET, key, {"Cf_Jira_Status": f"Persistent {kind}"}, etag)
    assert phrase in str(info.value) and "the server may have acted" in str(info.value)
    assert not isinstance(info.value, MalformedResponse) and info.value.not_sent is False
