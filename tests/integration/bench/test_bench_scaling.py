"""The scaling scenario's plumbing at a tiny size: 2 connections (4 simulator processes), rounds of 1 and 2
``ml-connector worker`` processes on PostgreSQL, 20 orders each. No timing is asserted; the rounds must really have
synced every order once, measured the workers' CPU, and landed in their own section of latest.{json,md}."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import require_pg

ROOT = Path(__file__).resolve().parents[3]
TINY = ["--only", "scaling", "--scaling-workers", "1,2", "--scaling-connections", "2", "--scaling-records", "20",
        "--latency-ms", "0", "--no-baseline"]


def _bench(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "bench", *args, "--output", str(tmp_path / "results"),
               "--workdir", str(tmp_path / "work")]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=240,
                          env={**os.environ, **(env or {})})


@pytest.mark.postgres
def test_tiny_scaling_rounds_sync_every_order_once_and_report_their_own_section(tmp_path: Path) -> None:
    done = _bench(tmp_path, *TINY, "--pg-dsn", require_pg())
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    data: dict[str, Any] = json.loads((tmp_path / "results" / "latest.json").read_text())
    markdown = (tmp_path / "results" / "latest.md").read_text()
    assert list(data["profiles"]) == ["50ms"]  # the scenario runs under the 50 ms profile only
    (result,) = data["profiles"]["50ms"]["scenarios"]
    assert result["id"] == "scaling" and result["records"] == 80
    assert [r["workers"] for r in result["rounds"]] == [1, 2]
    for r in result["rounds"]:
        assert r["records"] == 40 and r["jobs"] == 2, r
        assert r["runs"]["outbound succeeded"] == 2, r["runs"]
        assert r["duplicates"] == 0 and r["missing"] == 0
        assert r["cpu_s"] > 0 and r["startup_cpu_s"] > 0 and r["cpu_ms_per_record"] > 0
        assert r["records_per_s"] > 0 and r["peak_rss_mb"] > 0
        assert r["api_calls"]["ifs"]["calls"] > 0 and r["api_calls"]["jira"]["calls"] > 0
        assert r["api_calls"]["jira"]["by_endpoint"]["POST /rest/api/3/issue/bulk"] >= 2  # each connection created
    assert all(t["met"] for t in result["targets"]), result["targets"]
    assert "pg_dsn" not in data["options"] and data["pg_dsn"]
    # its own section, with one row per round; no main table (no main scenario ran)
    assert "## Scaling: worker processes over connections — profile 50ms" in markdown
    assert "## Profile " not in markdown
    rows = [line for line in markdown.splitlines() if line.startswith("| 1 |") or line.startswith("| 2 |")]
    assert len(rows) == 2


def test_scaling_needs_a_scratch_database_and_the_50ms_profile(tmp_path: Path) -> None:
    no_dsn = _bench(tmp_path, "--only", "scaling", env={"ML_CONNECTOR_BENCH_PG_DSN": ""})
    assert no_dsn.returncode == 2 and "--pg-dsn" in no_dsn.stderr and "Traceback" not in no_dsn.stderr
    wrong = _bench(tmp_path, "--only", "scaling", "--profiles", "realistic", "--pg-dsn", "postgresql+psycopg://x/y")
    assert wrong.returncode == 2 and "50ms profile" in wrong.stderr and "Traceback" not in wrong.stderr
    bad = _bench(tmp_path, "--only", "scaling", "--scaling-workers", "0,2", "--pg-dsn", "postgresql+psycopg://x/y")
    assert bad.returncode == 2 and "--scaling-workers" in bad.stderr
