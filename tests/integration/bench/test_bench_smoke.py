"""The benchmark harness runs end to end on a tiny size and reports every scenario with every field.

No timing is asserted (the benchmark is not a test); this only proves ``python -m bench`` works and its JSON is
complete, so a broken harness is found before someone runs the 15-minute ``make bench``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

SCENARIOS = {"1", "2a", "2", "3", "4", "5", "6"}
FIELDS = {"id", "name", "records", "wall_s", "api_calls", "calls_per_record", "http_429", "peak_rss_mb", "targets"}


def test_tiny_bench_reports_every_scenario_and_field(tmp_path: Path) -> None:
    out = tmp_path / "results"
    args = [
        "--records", "200", "--latency-ms", "0", "--writebacks", "20", "--webhook-transitions", "10",
        "--webhook-rate", "50", "--memory-sizes", "100,200", "--baseline-sample", "20",
        "--baseline-sample-incremental", "10", "--output", str(out), "--workdir", str(tmp_path / "work"),
    ]
    done = subprocess.run([sys.executable, "-m", "bench", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    data = json.loads((out / "latest.json").read_text())
    assert (out / "latest.md").read_text().count("\n| ") >= len(SCENARIOS) + 1
    by_id = {r["id"]: r for r in data["scenarios"]}
    assert set(by_id) == SCENARIOS
    for r in data["scenarios"]:
        assert set(r) >= FIELDS, (r["id"], FIELDS - set(r))
        assert set(r["api_calls"]) == {"ifs", "jira", "total"}
        assert r["peak_rss_mb"] > 0
    for sid in ("1", "2a", "2", "3", "4"):
        assert {"seconds", "binding", "fewest_calls", "chain"} <= set(by_id[sid]["lower_bound"])
        assert by_id[sid]["efficiency"] is not None
        assert by_id[sid]["baseline"]["sample"] > 0 and by_id[sid]["vs_baseline_time"] is not None
    # the work really happened: every order became an issue, nothing re-created on the idle run, edits and write-backs
    assert by_id["1"]["run_counts"]["created"] == 200
    assert by_id["2"]["api_calls"]["jira"]["calls"] == 0
    assert by_id["3"]["jira_calls_for_unchanged_records"] == 0
    assert by_id["4"]["run_counts"]["written_back"] == 20
    assert by_id["5"]["written"] == 10 and by_id["5"]["latency_p95_s"] is not None
    assert by_id["6"]["peak_rss_small_mb"] > 0 and by_id["6"]["rss_ratio"] is not None
    assert by_id["1"]["baseline"]["counts"]["created"] == 20
