"""ml_connector.metrics: the CallObserver counters, run metrics and the store-derived gauges."""

from __future__ import annotations

from pathlib import Path

from integration.web.support import make_connector

from ml_connector.engine import RunReport
from ml_connector.errors import RateLimited, Unavailable
from ml_connector.metrics import Metrics


def test_observer_counts_calls_429s_and_retries() -> None:
    m = Metrics()
    m.on_response("jira", "post", "/rest/api/3/issue/bulk", 201, 0.05)
    m.on_response("jira", "POST", "/rest/api/3/issue/bulk", 429, 0.01)
    m.on_response("ifs", "GET", "/x", 0, 0.2)
    m.on_retry("jira", RateLimited("slow down", system="jira", retry_after=1.0), 1.0)
    m.on_retry("ifs", Unavailable("reset", system="ifs"), 0.3)
    assert (
        m.registry.get_sample_value("mlc_api_calls_total", {"system": "jira", "method": "POST", "status": "201"}) == 1
    )
    assert m.registry.get_sample_value("mlc_api_calls_total", {"system": "ifs", "method": "GET", "status": "0"}) == 1
    assert m.registry.get_sample_value("mlc_api_rate_limited_total", {"system": "jira"}) == 1
    assert m.registry.get_sample_value("mlc_api_retries_total", {"system": "jira", "error": "RateLimited"}) == 1
    assert m.registry.get_sample_value("mlc_api_retries_total", {"system": "ifs", "error": "Unavailable"}) == 1
    assert m.registry.get_sample_value("mlc_api_call_duration_seconds_count", {"system": "jira"}) == 2


def test_runs_count_outcomes_but_dry_runs_do_not() -> None:
    m = Metrics()
    report = RunReport("purchase_orders", "outbound")
    report.add("created", 3)
    report.add("parked")
    m.observe_run(report, 2.0)
    dry = RunReport("purchase_orders", "outbound", dry_run=True)
    dry.add("created", 5)
    m.observe_run(dry, 1.0)
    assert (
        m.registry.get_sample_value("mlc_records_processed_total", {"flow": "purchase_orders", "outcome": "created"})
        == 3
    )
    assert (
        m.registry.get_sample_value(
            "mlc_runs_total", {"flow": "purchase_orders", "kind": "outbound", "status": "partial"}
        )
        == 1
    )
    assert (
        m.registry.get_sample_value("mlc_run_duration_seconds_sum", {"flow": "purchase_orders", "kind": "outbound"})
        == 2.0
    )


def test_store_gauges_follow_the_store(tmp_path: Path) -> None:
    connector = make_connector(tmp_path)
    m = connector.observer
    assert isinstance(m, Metrics)
    assert m.registry.get_sample_value("mlc_failed_queue_size", {"flow": "work_orders"}) == 0
    with connector.store.transaction() as tx:
        tx.records.insert("work_orders", "1", state="parked")
        tx.records.insert("work_orders", "2", state="retry")
        tx.records.insert("work_orders", "3", state="synced")
    run = connector.store.runs.start("work_orders", "outbound")
    connector.store.runs.finish(run, "succeeded", {"created": 1})
    assert m.registry.get_sample_value("mlc_failed_queue_size", {"flow": "work_orders"}) == 2
    assert m.registry.get_sample_value("mlc_records", {"flow": "work_orders", "state": "synced"}) == 1
    last = m.registry.get_sample_value(
        "mlc_last_success_timestamp_seconds", {"flow": "work_orders", "kind": "outbound"}
    )
    assert last is not None and last > 1_600_000_000
    assert m.registry.get_sample_value("mlc_webhook_inbox_pending", {}) == 0
    connector.store.close()


def test_the_metrics_failed_queue_is_the_stores() -> None:
    """metrics.py may not import the store (layer rule), so it names the failed states itself: they must not drift."""
    from ml_connector import metrics
    from ml_connector.store import FAILED_STATES

    assert tuple(metrics.FAILED_STATES) == tuple(FAILED_STATES)
