"""Issue 10, item 3: the IFS budget per client id holds across processes. The IFS simulator (its own process) admits
300 requests per rolling minute per client id; four load processes, each with its own Store and Connector, pace
themselves to 240 requests/min with a burst of 50, so together they want about four times the budget.

With ``runner.rate_buckets: postgres`` they draw on one bucket in PostgreSQL and the simulator answers no 429; with
``local`` buckets the same run overdraws the budget and meets 429s: the shared bucket is what holds it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from e2e.harness import REPORT_LINES, example_config
from e2e.procs import SimProcess, start_all

PROCESSES = 4
THREADS = 4
SECONDS = 12.0
SIM_BUDGET = 300  # requests per rolling minute per client id
RPM, BURST = 240, 50  # each process's pacing: alone it stays within the budget (240 + 50 < 300)
LOAD = Path(__file__).with_name("budget_load.py")


def _config(tmp_path: Path, ifs_url: str, store_url: str, rate_buckets: str) -> Path:
    data = example_config()
    data["ifs"].update(url=ifs_url, realm="mlc", client_id="ml-connector", client_secret="sim-secret")
    data["ifs"]["http"] = {"requests_per_minute": RPM, "burst": BURST, "backoff_initial": 0.05, "backoff_max": 1.0}
    # Never contacted: the load only reads IFS (clients are built on first use).
    data["jira"].update(url="http://127.0.0.1:9", simulator=True, webhook_secret="sim-webhook-secret")
    data["store"] = {"url": store_url}
    data["runner"] = {"rate_buckets": rate_buckets}
    path = tmp_path / f"{rate_buckets}.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def _load(config: Path) -> list[dict[str, int]]:
    """Run the load processes side by side; the tally each one printed."""
    procs = [
        subprocess.Popen(
            [sys.executable, str(LOAD), str(config), str(SECONDS), str(THREADS)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(PROCESSES)
    ]
    tallies = []
    for proc in procs:
        out, err = proc.communicate(timeout=SECONDS + 60)
        assert proc.returncode == 0, err.decode(errors="replace")[-2000:]
        tallies.append(json.loads(out.decode().strip().splitlines()[-1]))
    return tallies


def _statuses(sim: SimProcess) -> list[int | None]:
    entries: list[dict[str, Any]] = sim.control.requests()["requests"]
    return [e["status"] for e in entries if "PurchaseOrderHandling" in e["path"]]


@pytest.mark.postgres
def test_four_processes_share_one_ifs_budget_and_local_buckets_overdraw_it(tmp_path: Path) -> None:
    from conftest import require_pg, reset_postgres

    dsn = require_pg()
    reset_postgres(dsn)
    logs = [(tmp_path / f"ifs-{mode}.log") for mode in ("postgres", "local")]
    sims = start_all([("ifs", log, ("--rate-limit", str(SIM_BUDGET))) for log in logs])
    try:
        results = {}
        for mode, sim in zip(("postgres", "local"), sims, strict=True):
            tallies = _load(_config(tmp_path, sim.url, dsn, mode))
            statuses = _statuses(sim)
            results[mode] = (tallies, statuses.count(200), statuses.count(429))
    finally:
        for sim in sims:
            sim.stop()

    for mode, (tallies, answered, refused) in results.items():
        REPORT_LINES.append(f"rate_buckets={mode}: IFS answered {answered}, 429s {refused}, per process {tallies}")
    tallies, answered, refused = results["postgres"]
    ceiling = BURST + RPM / 60 * SECONDS  # what one bucket allows in the run, whoever takes from it
    assert refused == 0, f"shared buckets: {refused} 429s ({tallies})"
    assert 0.8 * ceiling <= answered <= ceiling + PROCESSES, (answered, ceiling, tallies)
    assert all(t["answered"] > 0 for t in tallies), tallies  # every process got its share, none was starved

    tallies, answered, refused = results["local"]
    assert refused > 0, f"local buckets met no 429 ({answered} answered): the test would prove nothing"
    assert answered >= SIM_BUDGET, (answered, tallies)  # the far side's whole budget went, and then some was refused
