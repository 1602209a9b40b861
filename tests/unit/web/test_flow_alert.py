"""The flow alert raised by a run with too many Jira 404s shows on the dashboard and as a gauge."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from integration.web.support import ADMIN_TOKEN, make_connector

from ml_connector.metrics import Metrics
from ml_connector.web import create_app

HEADERS = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
LABELS = {"flow": "purchase_orders", "alert": "jira_not_found"}


def test_a_not_found_alert_shows_on_the_flow_pages_and_in_metrics(tmp_path: Path) -> None:
    c = make_connector(tmp_path, admin_token=ADMIN_TOKEN)
    store = c.store
    metrics = Metrics(store=store, flows=["purchase_orders"])
    calm = store.runs.start("purchase_orders", "outbound")
    store.runs.finish(calm, "succeeded", {"updated": 3})
    with TestClient(create_app(c), base_url="http://127.0.0.1", client=("127.0.0.1", 40000)) as client:
        assert "too many Jira 404s" not in client.get("/runs?flow=purchase_orders", headers=HEADERS).text
        assert metrics.registry.get_sample_value("mlc_flow_alert", LABELS) == 0.0

        alerted = store.runs.start("purchase_orders", "outbound")
        store.runs.finish(alerted, "partial", {"not_found": 9, "not_found_alert": 1, "updated": 2})
        runs = client.get("/runs?flow=purchase_orders", headers=HEADERS).text
        assert "too many Jira 404s" in runs and "(9 issues)" in runs
        assert "too many Jira 404s" in client.get("/", headers=HEADERS).text  # the flow row's last run
        assert metrics.registry.get_sample_value("mlc_flow_alert", LABELS) == 1.0

        later = store.runs.start("purchase_orders", "outbound")  # the next outbound run passed without it
        store.runs.finish(later, "succeeded", {"updated": 1})
        assert metrics.registry.get_sample_value("mlc_flow_alert", LABELS) == 0.0
    store.close()
