"""Issue 13 item 1, done-means: cursor syncs against an IFS server west (America/Chicago, across both DST changes) and
east (Asia/Kolkata) of UTC, with a time-zone-aware and a naive cursor attribute, read every change exactly once.

The simulators run in their own processes; the simulator's clock walks through each window in steps longer than
the flow's lookback, a few purchase orders are edited at each step, then the outbound flow runs. Every edit must
reach Jira once (one ``updated`` each, none missed, none repeated), and outside a fall-back fold a run fetches only
the rows edited since the last one and those stamped at the cursor itself (inside the lookback). A naive cursor
re-reads the repeated hour of a fall-back change by design (docs/operations.md): those runs find the re-read rows
unchanged.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from e2e.harness import example_config
from e2e.procs import SimProcess, open_store, start_all
from ml_connector.config.loader import validate
from ml_connector.config.models import ConnectorConfig
from ml_connector.engine import Connector, OutboundSync
from ml_connector.engine.timestamps import parse_ts

STEP = timedelta(minutes=15)  # longer than the flow's lookback (5 minutes): no overlap between runs
ORDERS = 6
EDITS_PER_STEP = 2
FALL_BACK = datetime(2025, 11, 2, 5, 35, tzinfo=UTC)  # Chicago repeats 01:00-02:00 local (06:00-07:00Z)
SPRING_FORWARD = datetime(2026, 3, 8, 7, 35, tzinfo=UTC)  # Chicago skips 02:00-03:00 local (08:00Z)


def _window(start: datetime, steps: int) -> list[datetime]:
    return [start + i * STEP for i in range(steps)]


def _chicago() -> list[datetime]:
    return _window(FALL_BACK, 12) + _window(SPRING_FORWARD, 5)


def _kolkata() -> list[datetime]:
    """The last hour and a half up to now: the engine caps its cursor at the real now, so a server east of UTC read
    as if it were UTC would re-read hours of changes here."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    return _window(now - 6 * STEP, 6)


CASES = {"America/Chicago": _chicago, "Asia/Kolkata": _kolkata}


@pytest.fixture
def sims(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[SimProcess, SimProcess]]:
    zone, aware = request.param
    naive_flag = "--zone-aware-custom-attributes" if aware else "--naive-custom-attributes"
    ifs_args = ("--time-zone", zone, naive_flag, "--purchase-orders", "0", "--work-orders", "0", "--rate-limit", "0")
    ifs, jira = start_all([("ifs", tmp_path / "ifs.log", ifs_args), ("jira", tmp_path / "jira.log", ())])
    try:
        yield ifs, jira
    finally:
        ifs.stop()
        jira.stop()


def _config(ifs: SimProcess, jira: SimProcess, tmp_path: Path, store_url: str, zone: str, aware: bool) -> Any:
    data = example_config()
    data["ifs"].update(url=ifs.url, realm="mlc", client_id="ml-connector", client_secret="sim-secret")
    data["ifs"].update(server_time_zone=zone, http={"requests_per_minute": None, "max_attempts": 4})
    data["jira"].update(url=jira.url, simulator=True, webhook_secret="sim-webhook-secret")
    data["jira"]["auth"] = {"kind": "basic", "email": "connector@example.com", "api_token": "sim-api-token"}
    data["store"] = {"url": store_url}
    data["sync"] = {"reconcile_settle": 0.5, "retry_initial": 0, "retry_max": 0}
    flow = next(f for f in data["flows"] if f["name"] == "purchase_orders")
    flow["cursor_time_zone_aware"] = aware
    data["flows"] = [flow]
    return validate(ConnectorConfig, data)


def _at(ifs: SimProcess, when: datetime) -> None:
    """Set the simulator's clock so that its now is ``when``."""
    ifs.control.call("PUT", "clock", json={"offset_seconds": when.timestamp() - time.time()})


def _latest_descriptions(jira: SimProcess) -> dict[str, str]:
    issues = jira.control.call("GET", "issues")["issues"]
    return {i["properties"]["ml-connector"]["key"]: i["summary"] for i in issues}


@pytest.mark.parametrize(
    "sims",
    [(zone, aware) for zone in CASES for aware in (True, False)],
    indirect=True,
    ids=lambda p: f"{p[0].replace('/', '-')}-{'aware' if p[1] else 'naive'}",
)
def test_every_change_is_read_exactly_once(
    sims: tuple[SimProcess, SimProcess], tmp_path: Path, store_url: str, request: pytest.FixtureRequest
) -> None:
    ifs, jira = sims
    zone, aware = request.node.callspec.params["sims"]
    steps = CASES[zone]()
    connector = Connector(config=_config(ifs, jira, tmp_path, store_url, zone, aware), store=open_store(store_url))
    flow = connector.config.flows[0]
    try:
        _at(ifs, steps[0] - STEP)
        made = ifs.control.call("POST", "records/PurchaseOrder", json={"count": ORDERS})["records"]
        orders = [r["OrderNo"] for r in made]
        first = OutboundSync(connector, flow).run()
        assert first.counts["created"] == ORDERS, first.counts
        edits: Counter[str] = Counter()
        latest: dict[str, str] = {}
        previous = set(orders)  # changed at the cursor's time: read again inside the lookback, by design
        for i, when in enumerate(steps):
            _at(ifs, when)
            changed = [orders[(i * EDITS_PER_STEP + j) % ORDERS] for j in range(EDITS_PER_STEP)]
            for order in changed:
                latest[order] = f"edit {i} at {when:%Y-%m-%dT%H:%MZ}"
                ifs.control.call("PATCH", f"records/PurchaseOrder/{order}", json={"Description": latest[order]})
                edits[order] += 1
            report = OutboundSync(connector, flow).run()
            assert report.counts["updated"] == len(changed), (when, report.counts)
            if aware or zone == "Asia/Kolkata" or not _near_fall_back(when):
                # Only this step's changes and those at the cursor itself (within the lookback): no other re-read.
                assert report.counts["fetched"] == len(previous | set(changed)), (when, report.counts)
            previous = set(changed)
        summaries = _latest_descriptions(jira)
        assert {o: summaries[o] for o in orders} == {o: f"PO {o}: {latest[o]}" for o in orders}
        _assert_audit(connector, orders, edits)
    finally:
        connector.close()


def _near_fall_back(when: datetime) -> bool:
    """Runs whose naive cursor lies in Chicago's repeated hour or the hour after it (re-reads expected)."""
    return FALL_BACK + STEP <= when <= datetime(2025, 11, 2, 8, 5, tzinfo=UTC)


def _assert_audit(connector: Connector, orders: list[str], edits: Counter[str]) -> None:
    """Per order: one ``created`` and one ``updated`` per edit in the audit trail, and the record's source time."""
    store = connector.store
    records = {r.ifs_key: r for r in store.records.list(limit=1000)}
    assert sorted(records) == sorted(orders)
    for order in orders:
        trail = Counter(a.event for a in store.audit.trail(records[order].id))
        assert (trail["created"], trail["updated"]) == (1, edits[order]), (order, trail)
        assert parse_ts(records[order].source_ts) is not None
