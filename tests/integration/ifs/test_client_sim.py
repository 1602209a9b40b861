"""IfsClient against the IFS simulator over loopback HTTP: reads, writes with ETags, discovery, faults, auth."""

from __future__ import annotations

import datetime as dt
import io
import itertools
import logging
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import structlog

from ml_connector import logging as mlc_logging
from ml_connector.errors import AuthError, ConcurrencyConflict, NotFound, Rejected
from ml_connector.ifs import EnumLiteral, F, IfsClient, decode_etag
from ml_connector.serve import ServerHandle
from ml_connector.sim.ifs import precondition_kind

from .conftest import PO_SET, SimControl, connection

WO_READ = "ActiveWorkOrdersHandling.svc/ActiveSeparateSet"
WO_WRITE = "PrepareWorkOrderHandling.svc/ActiveSeparateSet"
LINES = "PurchaseOrderHandling.svc/PurchaseOrderLinePartSet"
PO_STATE = "IfsApp.PurchaseOrderHandling.PurchaseOrderState"


def _requests(control: SimControl, method: str, needle: str) -> list[dict[str, object]]:
    return [r for r in control.requests()["requests"] if r["method"] == method and needle in str(r["path"])]


def test_get_patch_and_stale_etag(client: IfsClient, sim: tuple[ServerHandle, SimControl]) -> None:
    _, control = sim
    row = next(client.iter_records(PO_SET, page_size=3, select=["OrderNo"]))
    key = {"OrderNo": row["OrderNo"]}
    record, etag = client.get(PO_SET, key)
    assert record["OrderNo"] == row["OrderNo"]
    info = decode_etag(etag)
    assert info is not None
    before = control.raw("PurchaseOrder", row["OrderNo"])["objversion"]

    updated, new_etag = client.patch(PO_SET, key, {"Cf_Jira_Status": "In Progress"}, etag)
    assert updated["Cf_Jira_Status"] == "In Progress"
    assert new_etag != etag
    after = control.raw("PurchaseOrder", row["OrderNo"])["objversion"]
    assert str(after) > str(before)
    assert decode_etag(new_etag).objversion == str(after)  # type: ignore[union-attr]

    with pytest.raises(ConcurrencyConflict):
        client.patch(PO_SET, key, {"Cf_Jira_Status": "Done"}, etag)  # the ETag we read first is stale now
    fresh, fresh_etag = client.get(PO_SET, key)
    assert fresh["Cf_Jira_Status"] == "In Progress"
    done, _ = client.patch(PO_SET, key, {"Cf_Jira_Status": "Done"}, fresh_etag)
    assert done["Cf_Jira_Status"] == "Done"
    assert str(control.raw("PurchaseOrder", row["OrderNo"])["objversion"]) > str(after)
    patches = _requests(control, "PATCH", "PurchaseOrderSet")
    assert patches and all(precondition_kind(str(p["if_match"])) == "etag" for p in patches)
    tally = control.requests()["preconditions"]
    assert tally["PATCH etag"] >= 3 and all(kind.endswith(" etag") for kind in tally), tally
    for unsafe in ("*", " * ", ""):  # the simulator accepts * as IFS does, so the client must refuse it itself
        with pytest.raises(ValueError):
            client.patch(PO_SET, key, {"Cf_Jira_Status": "x"}, unsafe)
        with pytest.raises(ValueError):
            client.call_action(PO_SET, key, "PurchaseOrder_Release", unsafe)
    assert control.requests()["preconditions"] == tally, "nothing was sent"


def test_concurrent_edit_between_read_and_write_is_a_conflict(
    client: IfsClient, sim: tuple[ServerHandle, SimControl]
) -> None:
    _, control = sim
    row = next(client.iter_records(PO_SET, page_size=2))
    key = {"OrderNo": row["OrderNo"]}
    control.faults(concurrent_edit_rate=1.0)
    _, etag = client.get(PO_SET, key)
    control.faults(concurrent_edit_rate=0.0)
    with pytest.raises(ConcurrencyConflict):
        client.patch(PO_SET, key, {"Cf_Jira_Key": "OPS-1"}, etag)
    _, etag = client.get(PO_SET, key)
    record, _ = client.patch(PO_SET, key, {"Cf_Jira_Key": "OPS-1"}, etag)
    assert record["Cf_Jira_Key"] == "OPS-1"


def test_bound_actions_need_fresh_etag_and_legal_transition(client: IfsClient) -> None:
    planned = F("Objstate") == _enum(PO_STATE, "Planned")
    row = next(client.iter_records(PO_SET, filter=planned, page_size=1))
    key = {"OrderNo": row["OrderNo"]}
    _, etag = client.get(PO_SET, key)
    assert client.call_action(PO_SET, key, "PurchaseOrder_Release", etag) is None
    record, etag2 = client.get(PO_SET, key)
    assert record["Objstate"] == "Released"
    with pytest.raises(ConcurrencyConflict):
        client.call_action(PO_SET, key, "PurchaseOrder_Confirm", etag)
    with pytest.raises(Rejected) as info:
        client.call_action(PO_SET, key, "IfsApp.PurchaseOrderHandling.PurchaseOrder_Release", etag2)
    assert info.value.status == 400


def test_work_order_integer_keys_read_and_prepare_sets(client: IfsClient) -> None:
    row = next(client.iter_records(WO_READ, page_size=1, orderby="WoNo desc"))
    assert isinstance(row["WoNo"], int)
    key = {"WoNo": row["WoNo"]}
    record, etag = client.get(WO_WRITE, key)
    assert record["WoNo"] == row["WoNo"]
    updated, _ = client.patch(WO_WRITE, key, {"Cf_Jira_Status": "Open"}, etag)
    assert updated["Cf_Jira_Status"] == "Open"
    assert client.get(WO_READ, key)[0]["Cf_Jira_Status"] == "Open"
    with pytest.raises(NotFound):
        client.get(WO_READ, {"WoNo": 987654321})


def test_get_many_by_keys_and_children_chunked(client: IfsClient, sim: tuple[ServerHandle, SimControl]) -> None:
    _, control = sim
    orders = [r["OrderNo"] for r in itertools.islice(client.iter_records(PO_SET, select="OrderNo"), 120)]
    client.max_filter_chars = 600  # force several chunks
    control.clear_requests()
    found = client.get_many_by_keys(PO_SET, [{"OrderNo": o} for o in orders] + [{"OrderNo": "NO-SUCH-PO"}])
    assert set(found) == {(o,) for o in orders}
    assert all(decode_etag(etag) for _, etag in found.values())
    reads = _requests(control, "GET", "PurchaseOrderSet")
    assert 2 <= len(reads) < 120
    assert all(len(str(r["query"])) < 1200 for r in reads)

    control.clear_requests()
    children = client.children_by_parent(LINES, "OrderNo", orders, select=["OrderNo", "LineNo", "CodeA", "CodeB"])
    assert set(children) == set(orders)
    assert all(1 <= len(lines) <= 3 for lines in children.values())
    assert all(line["OrderNo"] == o for o, lines in children.items() for line in lines)
    assert 2 <= len(_requests(control, "GET", "PurchaseOrderLinePartSet")) < 120
    # the same lines, read per order through the navigation, agree
    first = orders[0]
    assert len(children[first]) == client.count(LINES, filter=F("OrderNo") == first)


def test_key_list_chunks_go_out_at_once_and_metadata_is_fetched_once(
    client: IfsClient, sim: tuple[ServerHandle, SimControl]
) -> None:
    _, control = sim
    orders = [r["OrderNo"] for r in itertools.islice(client.iter_records(PO_SET, select="OrderNo"), 120)]
    sequential = client.children_by_parent(LINES, "OrderNo", orders[:1])  # for comparison, one chunk
    client.max_filter_chars = 600  # several chunks
    client._metadata.clear()  # a fresh client's view: nothing known about the projection yet
    control.faults(latency_ms=300)
    control.clear_requests()
    try:
        started = time.monotonic()
        children = client.children_by_parent(LINES, "OrderNo", orders)
        elapsed = time.monotonic() - started
    finally:
        control.faults(latency_ms=0)
    reads = _requests(control, "GET", "PurchaseOrderLinePartSet")
    assert len(reads) >= 4
    assert elapsed < 0.3 * (len(reads) - 1)  # one after the other they would take 0.3 s each at least
    assert children[orders[0]] == sequential[orders[0]]  # grouped as before, in the server's order
    assert set(children) == set(orders)

    client._metadata.clear()
    control.faults(latency_ms=300)
    control.clear_requests()
    try:
        with ThreadPoolExecutor(max_workers=4) as pool:
            parsed = list(pool.map(lambda _: client.metadata("PurchaseOrderHandling"), range(4)))
    finally:
        control.faults(latency_ms=0)
    assert len(_requests(control, "GET", "$metadata")) == 1  # concurrent readers share one fetch
    assert all(p is parsed[0] for p in parsed)


def test_count_and_discovery(client: IfsClient) -> None:
    total = client.count(PO_SET)
    assert total == sum(len(p.rows) for p in client.iter_pages(PO_SET, select="OrderNo", page_size=70))
    released = client.count(PO_SET, filter=F("Objstate") == _enum(PO_STATE, "Released"))
    assert 0 <= released <= total
    meta = client.metadata("PurchaseOrderHandling")
    assert meta.keys("PurchaseOrderSet") == ("OrderNo",)
    assert meta.keys("PurchaseOrderLinePartSet") == ("OrderNo", "LineNo", "ReleaseNo")
    assert meta.property("PurchaseOrderSet", "Cf_Changed_At").type == "Edm.DateTimeOffset"
    assert "Released" in meta.enum_types[PO_STATE].members
    assert {"PurchaseOrder_Release", "PurchaseOrder_Cancel"} <= {a.name for a in meta.bound_actions("PurchaseOrderSet")}
    wo = client.metadata("ActiveWorkOrdersHandling")
    assert wo.property("ActiveSeparateSet", "WoNo").type in {"Edm.Int32", "Edm.Int64", "Edm.Decimal"}


def test_filter_values_and_enum_rule(client: IfsClient) -> None:
    since = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
    rows = list(client.iter_records(PO_SET, filter=F("Cf_Changed_At") >= since, select="OrderNo", page_size=500))
    assert len(rows) == client.count(PO_SET)
    with pytest.raises(Rejected):  # a plain string against an enum property is refused by IFS
        list(client.iter_records(PO_SET, filter=F("Objstate") == "Released"))


def test_429_retry_after_is_honoured(client: IfsClient, sim: tuple[ServerHandle, SimControl]) -> None:
    _, control = sim
    control.clear_requests()
    control.faults(fail_next=[{"status": 429, "count": 1, "retry_after": 2, "path_contains": "PurchaseOrderSet"}])
    row = next(client.iter_records(PO_SET, page_size=1))
    assert row["OrderNo"]
    log = _requests(control, "GET", "PurchaseOrderSet")
    statuses = [r["status"] for r in log]
    assert statuses[:2] == [429, 200], statuses
    assert _seconds(log[1]["time"]) - _seconds(log[0]["time"]) >= 2.0


def test_5xx_and_dropped_connections_are_retried_400_is_not(
    client: IfsClient, sim: tuple[ServerHandle, SimControl]
) -> None:
    _, control = sim
    row = next(client.iter_records(PO_SET, page_size=1))
    key = {"OrderNo": row["OrderNo"]}
    control.clear_requests()
    control.faults(
        fail_next=[
            {"status": 503, "count": 2, "retry_after": 0, "path_contains": "PurchaseOrderSet("},
            {"status": 0, "count": 1, "path_contains": "PurchaseOrderSet("},
        ]
    )
    assert client.get(PO_SET, key)[0]["OrderNo"] == row["OrderNo"]
    singles = _requests(control, "GET", "PurchaseOrderSet(")
    assert len(singles) >= 3  # two 503s logged, the dropped one maybe, then the 200
    assert [r["status"] for r in singles][-1] == 200
    assert [r["status"] for r in singles].count(503) == 2

    control.clear_requests()
    control.faults(fail_next=[{"status": 400, "count": 1, "path_contains": "PurchaseOrderSet("}])
    with pytest.raises(Rejected):
        client.get(PO_SET, key)
    assert len(_requests(control, "GET", "PurchaseOrderSet(")) == 1
    control.faults(fail_next=[])


def test_token_refresh_on_revocation_and_clock_jump(client: IfsClient, sim: tuple[ServerHandle, SimControl]) -> None:
    _, control = sim
    assert client.tokens is not None
    client.count(PO_SET)
    issued = client.tokens.refresh_count
    control.revoke()
    client.count(PO_SET)
    assert client.tokens.refresh_count == issued + 1
    control.clock(3600)  # the server now considers our cached token long expired
    client.count(PO_SET)
    assert client.tokens.refresh_count == issued + 2
    control.clock(0)


def test_short_lived_token_is_refreshed_before_it_expires(sim: tuple[ServerHandle, SimControl]) -> None:
    """expires_in 2 s: the client renews after 1 s (margin capped at half the life), so the server never says 401."""
    handle, control = sim
    control.faults(token_lifetime_seconds=2, rate_limit_per_minute=None, fail_next=[])
    try:
        with IfsClient.from_connection(connection(handle.url)) as c:
            assert c.tokens is not None
            control.clear_requests()
            c.count(PO_SET)
            time.sleep(1.2)  # the scenario: the token ages past the client's renewal point (half its 2 s life)
            c.count(PO_SET)
            assert c.tokens.refresh_count == 2
            assert all(r["status"] == 200 for r in control.requests()["requests"])
    finally:
        control.faults(token_lifetime_seconds=None)


def test_wrong_secret_is_auth_error_without_secret(sim: tuple[ServerHandle, SimControl]) -> None:
    handle, _ = sim
    with (
        IfsClient.from_connection(connection(handle.url, client_secret="wrong-secret-123")) as bad,
        pytest.raises(AuthError) as info,
    ):
        bad.count(PO_SET)
    assert "wrong-secret-123" not in str(info.value)


def test_no_secret_in_debug_logs(sim: tuple[ServerHandle, SimControl]) -> None:
    handle, control = sim
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    saved_structlog = structlog.get_config()
    mlc_logging.configure(level="DEBUG", stream=stream)
    tokens: list[str] = []
    try:
        with IfsClient.from_connection(connection(handle.url)) as c:
            assert c.tokens is not None
            c.count(PO_SET)
            tokens.append(c.tokens.token())
            control.revoke()
            row = next(c.iter_records(PO_SET, page_size=2))
            tokens.append(c.tokens.token())
            _, etag = c.get(PO_SET, {"OrderNo": row["OrderNo"]})
            c.patch(PO_SET, {"OrderNo": row["OrderNo"]}, {"Cf_Jira_Key": "OPS-9"}, etag)
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        structlog.configure(**saved_structlog)
    text = stream.getvalue()
    assert "HTTP Request" in text  # httpx2's own logging was captured
    assert "ifs.token.issued" in text
    assert len(set(tokens)) == 2
    for secret in ["sim-secret", *tokens]:
        assert secret not in text


def _seconds(stamp: object) -> float:
    """A request-log time (epoch seconds or ISO 8601) as epoch seconds."""
    if isinstance(stamp, int | float):
        return float(stamp)
    return dt.datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).timestamp()


def _enum(type_name: str, value: str) -> EnumLiteral:
    return EnumLiteral(type_name, value)
