"""End to end: IFS and Jira simulators, one outbound sync, the web app under uvicorn receiving the Jira simulator's
signed admin-webhook deliveries; a status change made by a person in Jira reaches IFS within seconds."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx2
import pytest

from ml_connector.engine import Connector, OutboundSync
from ml_connector.metrics import Metrics
from ml_connector.serve import ServerHandle, serve_in_thread
from ml_connector.web import create_app

from .support import WEBHOOK_SECRET, Sims, enable_webhooks, make_connector, simulators, wait_for


@pytest.fixture(scope="module")
def sims() -> Iterator[Sims]:
    with simulators(purchase_orders=30, work_orders=10) as running:
        yield running


@pytest.fixture
def setup(sims: Sims, tmp_path: Path) -> Iterator[tuple[Connector, ServerHandle]]:
    connector = make_connector(tmp_path, ifs_url=sims.ifs.url, jira_url=sims.jira.url, tweak=enable_webhooks)
    web = serve_in_thread(create_app(connector))
    hook = sims.jira_app.state.sim.register_admin_webhook(
        {
            "name": "ml-connector",
            "url": f"{web.url}/webhooks/jira",
            "events": ["jira:issue_updated"],
            "secret": WEBHOOK_SECRET,
        }
    )
    yield connector, web
    sims.jira_app.state.sim.admin_webhooks.pop(hook.id, None)
    sims.jira_control("PUT", "faults", json={"duplicate_delivery_rate": 0.0})
    web.stop()
    connector.close()
    connector.store.close()


def _ifs_po(sims: Sims, key: str) -> dict[str, Any]:
    data: dict[str, Any] = sims.ifs_control("GET", f"records/PurchaseOrder/{quote(key, safe='')}")
    return data


def _linked_po(connector: Connector) -> Any:
    OutboundSync(connector, connector.config.flow("purchase_orders")).run()
    linked = [r for r in connector.store.records.linked("purchase_orders") if r.jira_key]
    assert len(linked) >= 20
    return linked[0]


def test_transition_in_jira_reaches_ifs_within_seconds(sims: Sims, setup: tuple[Connector, ServerHandle]) -> None:
    connector, _web = setup
    record = _linked_po(connector)
    assert _ifs_po(sims, record.ifs_key).get("Cf_Jira_Status") in (None, "")
    sims.jira_control("POST", f"issues/{record.jira_key}/transition", json={"status": "In Progress"})
    reached = wait_for(lambda: _ifs_po(sims, record.ifs_key).get("Cf_Jira_Status") == "In Progress", timeout=5.0)
    assert reached, "the webhook write-back did not reach IFS within 5 s"
    # The row is marked once the whole batch is through (after the IFS write and the applier's lease release).
    assert wait_for(lambda: connector.store.inbox.count("processed") >= 1, timeout=5.0)
    metrics = connector.observer
    assert isinstance(metrics, Metrics)
    assert (metrics.registry.get_sample_value("mlc_webhook_deliveries_total", {"result": "accepted"}) or 0) >= 1


def test_duplicate_deliveries_are_written_once(sims: Sims, setup: tuple[Connector, ServerHandle]) -> None:
    connector, _web = setup
    record = _linked_po(connector)
    sims.jira_control("PUT", "faults", json={"duplicate_delivery_rate": 1.0})  # every delivery arrives twice
    sims.ifs_control("DELETE", "requests")
    sims.jira_control("POST", f"issues/{record.jira_key}/transition", json={"status": "In Progress"})
    assert wait_for(lambda: _ifs_po(sims, record.ifs_key).get("Cf_Jira_Status") == "In Progress", timeout=5.0)
    assert sims.jira_app.state.sim.wait_deliveries(10)
    deliveries = [d for d in sims.jira_control("GET", "webhook-deliveries")["deliveries"] if d["kind"] == "admin"]
    last = deliveries[-1]["identifier"]
    copies = [d for d in deliveries if d["identifier"] == last]
    assert len(copies) == 2 and {d["status"] for d in copies} == {200, 202}
    # IFS may already hold this status from an earlier test (shared simulators): wait for the event, not the value.
    assert wait_for(lambda: connector.store.inbox.count("processed") == 1, timeout=5.0)
    assert connector.store.inbox.count() == 1
    patches = [r for r in sims.ifs_control("GET", "requests")["requests"] if r["method"] == "PATCH"]
    assert len(patches) == 1


def test_metrics_move_after_a_sync(sims: Sims, setup: tuple[Connector, ServerHandle]) -> None:
    connector, web = setup
    before = httpx2.get(f"{web.url}/metrics").text
    assert "mlc_api_calls_total{" not in before
    started = OutboundSync(connector, connector.config.flow("work_orders")).run()
    metrics = connector.observer
    assert isinstance(metrics, Metrics)
    metrics.observe_run(started, 0.5)
    text = httpx2.get(f"{web.url}/metrics").text
    for name in (
        'mlc_api_calls_total{method="GET",status="200",system="ifs"}',
        'mlc_api_calls_total{method="POST",status="201",system="jira"}',
        'mlc_records{flow="work_orders",state="synced"}',
        'mlc_failed_queue_size{flow="work_orders"}',
        'mlc_last_success_timestamp_seconds{flow="work_orders",kind="outbound"}',
        'mlc_records_processed_total{flow="work_orders",outcome="created"}',
        'mlc_run_duration_seconds_count{flow="work_orders",kind="outbound"}',
        "mlc_api_rate_limited_total",
        "mlc_api_retries_total",
    ):
        assert name in text, name
    synced = metrics.registry.get_sample_value("mlc_records", {"flow": "work_orders", "state": "synced"})
    assert synced == 10
    ready = httpx2.get(f"{web.url}/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["systems"]["jira"]["status"] == "operational"
