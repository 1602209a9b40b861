"""Issue 10, item 3: the IFS budget per client id holds across processes. The IFS simulator (its own process) admits
300 requests per rolling minute per client id; four load processes, each with its own Store and Connector, pace
themselves to 240 requests/min with a burst of 50, so together they want about four times the budget.

With ``runner.rate_buckets: postgres`` they draw on one bucket in PostgreSQL and the simulator answers no 429; with
``local`` buckets the same run overdraws the budget and meets 429s: the shared bucket is what holds it."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from e2e.harness import REPORT_LINES, example_config
from e2e.procs import SimProcess, start_all
from ml_connector.store import Store

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


def _start(config: Path) -> list[subprocess.Popen[bytes]]:
    return [
        subprocess.Popen(
            [sys.executable, str(LOAD), str(config), str(SECONDS), str(THREADS)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(PROCESSES)
    ]


def _tallies(procs: list[subprocess.Popen[bytes]]) -> list[dict[str, int]]:
    """The tally each load process printed."""
    tallies = []
    for proc in procs:
        out, err = proc.communicate(timeout=SECONDS + 60)
        assert proc.returncode == 0, err.decode(errors="replace")[-2000:]
        tallies.append(json.loads(out.decode().strip().splitlines()[-1]))
    return tallies


@dataclass
class Outcome:
    tallies: list[dict[str, int]]
    answered: int
    refused: int
    span: float  # seconds from the first to the last request the simulator admitted

    @classmethod
    def of(cls, procs: list[subprocess.Popen[bytes]], sim: SimProcess) -> Outcome:
        tallies = _tallies(procs)
        entries: list[dict[str, Any]] = sim.control.requests()["requests"]
        load = [e for e in entries if "PurchaseOrderHandling" in e["path"]]
        times = [datetime.fromisoformat(e["time"]) for e in load if e["status"] == 200]
        span = (max(times) - min(times)).total_seconds() if times else 0.0
        statuses = [e["status"] for e in load]
        return cls(tallies, statuses.count(200), statuses.count(429), span)


@pytest.mark.postgres
def test_four_processes_share_one_ifs_budget_and_local_buckets_overdraw_it(tmp_path: Path) -> None:
    from conftest import require_pg, reset_postgres

    dsn = require_pg()
    reset_postgres(dsn)
    Store.open(dsn).close()  # migrated once here, not by four processes at once
    modes = ("postgres", "local")
    sims = start_all([("ifs", tmp_path / f"ifs-{mode}.log", ("--rate-limit", str(SIM_BUDGET))) for mode in modes])
    try:
        # Both runs at once, each against its own simulator: the test takes one run's time.
        loads = {mode: _start(_config(tmp_path, sim.url, dsn, mode)) for mode, sim in zip(modes, sims, strict=True)}
        results = {mode: Outcome.of(loads[mode], sim) for mode, sim in zip(modes, sims, strict=True)}
    finally:
        for sim in sims:
            sim.stop()
    for mode, r in results.items():
        REPORT_LINES.append(
            f"rate_buckets={mode}: IFS answered {r.answered} over {r.span:.1f} s, 429s {r.refused}, "
            f"per process {r.tallies}"
        )

    shared = results["postgres"]
    allowed = BURST + RPM / 60 * shared.span  # what one bucket allows over the run, whoever takes from it
    assert shared.refused == 0, f"shared buckets: {shared.refused} 429s ({shared.tallies})"
    assert 0.8 * allowed <= shared.answered <= allowed + 3, (shared.answered, allowed, shared.tallies)
    assert all(t["answered"] > 0 for t in shared.tallies), shared.tallies  # every process got its share

    local = results["local"]
    assert local.refused > 0, f"local buckets met no 429 ({local.answered} answered): the test would prove nothing"
    assert local.answered >= SIM_BUDGET, (local.answered, local.tallies)  # the whole budget went, then 429s
