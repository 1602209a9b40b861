"""Issue 9, item 5: rate limits never fail a run. A storm of 429s on Jira's bulk create lasting about ten seconds,
with and without Retry-After, slows the run down; the run succeeds, every record gets exactly one issue, and the
time spent waiting shows in the run report and the metrics. (A storm longer than the run's budget ends in a
``RateLimited`` that proves Jira did not act: see tests/integration/jira/test_client_malformed.py.)"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from e2e.harness import World, connector_config, example_config, make_connector, world
from ml_connector.engine import OutboundSync
from ml_connector.engine.report import RunReport
from ml_connector.errors import RateLimited
from ml_connector.metrics import Metrics
from ml_connector.store import SYNCED

BULK = "POST /rest/api/3/issue/bulk"


def _storm_seconds(w: World) -> float:
    """From the first 429 on bulk create to the first bulk create that got through after it, by the sim's clock."""
    log = [r for r in w.jira_sim.requests()["requests"] if r["path"].endswith("/issue/bulk")]
    first = next(r for r in log if r["status"] == 429)
    last = max(r["time"] for r in log if r["status"] == 429)
    return (datetime.fromisoformat(last) - datetime.fromisoformat(first["time"])).total_seconds()


def _one_issue_per_record(w: World, flows: tuple[str, ...] = ("purchase_orders", "work_orders")) -> None:
    """Every IFS record in scope has exactly one issue (found by the connector's issue property)."""
    refs = Counter(
        (i["properties"]["ml-connector"]["flow"], i["properties"]["ml-connector"]["key"])
        for i in w.jira_issues()
        if "ml-connector" in (i.get("properties") or {})
    )
    assert [ref for ref, n in refs.items() if n > 1] == []
    expected = {("purchase_orders", r["OrderNo"]) for r in w.ifs_rows("PurchaseOrder") if r["Objstate"] != "Cancelled"}
    expected |= {("work_orders", str(r["WoNo"])) for r in w.ifs_rows("WorkOrder")}
    assert set(refs) == {ref for ref in expected if ref[0] in flows}


@pytest.mark.slow
@pytest.mark.parametrize(("retry_after", "refusals"), [(1.0, 24), (None, 36)], ids=["retry-after-1", "no-retry-after"])
def test_a_429_storm_slows_the_run_and_it_succeeds(
    tmp_path: Path, store_url: str, retry_after: float | None, refusals: int
) -> None:
    with world(purchase_orders=120, work_orders=10) as w:
        # Two bulk calls in flight share the storm: each meets 12 or more refusals, past the 8 attempts a call has.
        # Without Retry-After the backoff (0.05 s doubling up to 1 s) needs more refusals to last about 10 s.
        rule: dict[str, Any] = {"status": 429, "count": refusals, "path_contains": "/issue/bulk", "method": "POST"}
        if retry_after is None:
            w.jira_sim.faults(retry_after_seconds=None, fail_next=[rule])
        else:
            w.jira_sim.faults(fail_next=[{**rule, "retry_after": retry_after}])
        config = connector_config(w, tmp_path, store_url=store_url, tweak={"sync": {"bulk_concurrency": 2}})
        metrics = Metrics()
        c = make_connector(config)
        c.observer = metrics
        reports = [OutboundSync(c, f).run() for f in config.flows]
        assert [r.status for r in reports] == ["succeeded", "succeeded"], [r.as_dict() for r in reports]
        assert all(r.failed == 0 for r in reports)
        waited = sum(r.rate_limit_wait_s for r in reports)
        storm = _storm_seconds(w)
        print(f"storm {storm:.1f} s, waited {waited:.1f} s (summed over concurrent calls)")
        assert storm >= 8
        assert waited >= storm  # two calls waited through it side by side
        assert reports[0].as_dict()["rate_limit_wait_s"] == pytest.approx(reports[0].rate_limit_wait_s, abs=0.001)
        assert (
            metrics.registry.get_sample_value("mlc_api_rate_limit_wait_seconds_total", {"system": "jira"}) or 0
        ) >= storm
        assert w.jira_sim.counts()[BULK] >= refusals
        _one_issue_per_record(w)
        assert c.store.records.count_by_state().get(SYNCED) == len({i["id"] for i in w.jira_issues()})
        c.close()


@pytest.mark.slow
def test_sync_exits_0_through_a_storm(tmp_path: Path) -> None:
    with world(purchase_orders=40, work_orders=5) as w:
        w.jira_sim.faults(fail_next=[{"status": 429, "count": 10, "retry_after": 1, "path_contains": "/issue/bulk"}])
        data = example_config()
        data["ifs"].update(url=w.ifs.url, http={"backoff_initial": 0.05, "backoff_max": 0.5, "max_attempts": 3})
        data["jira"].update(url=w.jira.url, http={"backoff_initial": 0.05, "backoff_max": 0.5, "max_attempts": 3})
        data["store"] = {"url": f"sqlite:///{tmp_path / 'state.sqlite'}"}
        data["sync"] = {"reconcile_settle": 1, "retry_initial": 0, "retry_max": 0}
        path = tmp_path / "ml-connector.yaml"
        path.write_text(yaml.safe_dump(data))
        cmd = [sys.executable, "-m", "ml_connector.cli", "sync", "--no-writeback", "-c", str(path)]
        done = subprocess.run(
            cmd, env={**os.environ, "ML_CONNECTOR_LOG_LEVEL": "ERROR"}, capture_output=True, timeout=120
        )
        assert done.returncode == 0, done.stderr.decode()[-2000:]
        assert _storm_seconds(w) >= 8
        _one_issue_per_record(w)


def test_a_stop_request_ends_a_long_rate_limit_wait_within_a_second(tmp_path: Path) -> None:
    with world(purchase_orders=5, work_orders=0) as w:
        w.jira_sim.faults(fail_next=[{"status": 429, "count": 1000, "retry_after": 120, "path_contains": "/myself"}])
        c = make_connector(connector_config(w, tmp_path))
        stop = threading.Event()
        report = RunReport("purchase_orders", "outbound")
        threading.Timer(0.5, stop.set).start()  # SIGTERM arrives half a second into a 120 s wait
        started = time.monotonic()
        with pytest.raises(RateLimited), c.run_row(report, default_system="jira", stop=stop):
            c.jira.myself()
        assert time.monotonic() - started < 1.5
        assert report.rate_limit_wait_s == pytest.approx(0.5, abs=0.3)
        assert c.store.runs.last("purchase_orders") is not None
        c.close()
