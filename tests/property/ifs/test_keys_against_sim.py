"""Any string used as a key or filter value addresses exactly the intended record on the IFS simulator.

Records with generated keys are inserted through the simulator's control API; the client then reads each one by key
and by ``$filter`` eq, over real loopback HTTP. One simulator serves every example.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

import httpx2
import pytest
from conftest import require_import
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ml_connector.config.connections import HttpSettings, IfsConnection
from ml_connector.ifs import F, IfsClient
from ml_connector.serve import serve_in_thread

sim_ifs = require_import("ml_connector.sim.ifs", "create_app")

PO_SET = "PurchaseOrderHandling.svc/PurchaseOrderSet"
SPECIAL = [*list("'\"%&#$/?+=()\\,;:@!* \t~`^[]{}<>|"), "é", "ß", "€", "漢", "😀", "\xa0", "''", "%25", "%2F", "'--"]

KEYS = st.one_of(
    st.lists(st.sampled_from([*SPECIAL, "A", "z", "0", "-"]), min_size=1, max_size=12).map("".join),
    st.text(st.characters(exclude_categories=("Cs", "Cc")), min_size=1, max_size=25),
).filter(lambda s: s.strip() == s and s != "")


@pytest.fixture(scope="module")
def env() -> Iterator[tuple[IfsClient, httpx2.Client]]:
    app = sim_ifs.create_app(sim_ifs.IfsSimOptions(purchase_orders=20, work_orders=1))
    handle = serve_in_thread(app)
    control = httpx2.Client(base_url=handle.url + "/_sim", timeout=30)
    control.put("/faults", json={"rate_limit_per_minute": None}).raise_for_status()
    conn = IfsConnection(
        url=handle.url,
        realm="mlc",
        client_id="ml-connector",
        client_secret="sim-secret",
        http=HttpSettings(max_attempts=2),
    )
    client = IfsClient.from_connection(conn)
    yield client, control
    client.close()
    control.close()
    handle.stop()


def _ensure(control: httpx2.Client, key: str) -> None:
    response = control.post("/records/PurchaseOrder", json={"values": {"OrderNo": key, "Description": f"key {key}"}})
    if response.status_code >= 300:  # already inserted by an earlier example: it must exist then
        control.get(f"/records/PurchaseOrder/{quote(key, safe='')}").raise_for_status()


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=KEYS)
def test_key_and_filter_value_address_exactly_that_record(env: tuple[IfsClient, httpx2.Client], key: str) -> None:
    client, control = env
    _ensure(control, key)
    record, etag = client.get(PO_SET, {"OrderNo": key})
    assert record["OrderNo"] == key
    assert etag
    rows = list(client.iter_records(PO_SET, filter=F("OrderNo") == key, select=["OrderNo", "Description"]))
    assert [r["OrderNo"] for r in rows] == [key]
    assert client.count(PO_SET, filter=F("OrderNo") == key) == 1
    found = client.get_many_by_keys(PO_SET, [{"OrderNo": key}, {"OrderNo": key + "x"}])
    assert set(found) == {(key,)}
