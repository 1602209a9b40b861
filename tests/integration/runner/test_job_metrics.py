"""A scheduled flow job feeds the daemon's metrics: API calls per system and run counts per flow."""

from __future__ import annotations

import threading
from pathlib import Path

from e2e.harness import connector_config, world

from ml_connector.engine import Connector
from ml_connector.metrics import Metrics
from ml_connector.runner.jobs import run_flow_job
from ml_connector.store import Store


def test_flow_job_counts_calls_and_runs(tmp_path: Path) -> None:
    with world(purchase_orders=12, work_orders=0) as w:
        config = connector_config(w, tmp_path)
        assert config.store.url is not None
        store = Store.open(config.store.url)
        metrics = Metrics(store=store, flows=[f.name for f in config.flows])
        connector = Connector(config=config, store=store, observer=metrics)
        reports = run_flow_job(connector, config.flow("purchase_orders"), threading.Event())
        assert [r.kind for r in reports][:2] == ["outbound", "writeback"]
        ok = metrics.registry.get_sample_value(
            "mlc_runs_total", {"flow": "purchase_orders", "kind": "outbound", "status": "succeeded"}
        )
        assert ok == 1.0
        bulk = metrics.registry.get_sample_value(
            "mlc_api_calls_total", {"system": "jira", "method": "POST", "status": "201"}
        )
        assert bulk is not None and bulk >= 1
        connector.close()
