"""The benchmark harness runs end to end on a tiny size and reports every scenario with every field, per profile.

No timing is asserted (the benchmark is not a test); this only proves ``python -m bench`` works and its JSON is
complete, so a broken harness is found before someone runs the 15-minute ``make bench``.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]

MAIN = {"1", "2a", "2", "3", "4", "5", "1b"}
FIELDS = {"id", "name", "records", "wall_s", "api_calls", "calls_per_record", "http_429", "peak_rss_mb", "targets"}
TINY = ["--records", "200", "--latency-ms", "0", "--writebacks", "20", "--webhook-transitions", "10",
        "--webhook-rate", "50", "--memory-sizes", "100,200", "--memory-repeats", "2", "--baseline-sample", "20",
        "--baseline-sample-incremental", "10"]


def _bench(tmp_path: Path, *args: str) -> dict[str, Any]:
    out = tmp_path / "results"
    command = [sys.executable, "-m", "bench", *TINY, *args, "--output", str(out), "--workdir", str(tmp_path / "work")]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    data: dict[str, Any] = json.loads((out / "latest.json").read_text())
    data["_markdown"] = (out / "latest.md").read_text()
    return data


def test_tiny_bench_reports_every_scenario_and_field_per_profile(tmp_path: Path) -> None:
    data = _bench(tmp_path)
    assert list(data["profiles"]) == ["50ms", "realistic"]
    assert data["_markdown"].count("## Profile ") == 2 and "## Once, outside the profiles" in data["_markdown"]
    assert data["_markdown"].count("\n| ") >= 2 * (len(MAIN) + 1) + 2
    once = {r["id"]: r for r in data["once"]["scenarios"]}
    assert set(once) == {"6"} and "runs once" in data["once"]["note"]
    assert once["6"]["peak_rss_small_mb"] > 0 and once["6"]["rss_ratio"] is not None
    # Two pairs of runs, each figure their median. CPU per record of each run alone: the large run's is its own CPU
    # seconds over its own records (cpu_s_large is that of the pair with the median ratio).
    six = once["6"]
    assert six["repeats"] == 2 and len(six["rss_ratio_runs"]) == len(six["cpu_ms_per_record_large_runs"]) == 2
    assert six["rss_ratio"] == statistics.median(six["rss_ratio_runs"])
    assert six["cpu_ms_per_record_large"] == statistics.median(six["cpu_ms_per_record_large_runs"])
    assert 1000 * six["cpu_s_large"] / 200 in six["cpu_ms_per_record_large_runs"] and six["cpu_s_large"] > 0
    per_pair = zip(six["cpu_ms_per_record_large_runs"], six["calibration_unit_us_runs"], strict=True)
    units = [1000 * ms / unit for ms, unit in per_pair]
    assert six["cpu_units_per_record_large_runs"] == units and all(unit > 0 for unit in units)
    assert six["cpu_units_per_record_large"] == statistics.median(units)
    assert "calibration_unit_us_runs = [" in data["_markdown"] and "cpu_units_per_record_large = " in data["_markdown"]
    assert six["cpu_ms_per_record_small"] > 0 and six["cpu_s_small"] > 0
    assert "cpu_ms_per_record_large" in data["_markdown"]
    assert data["profiles"]["realistic"]["limits"]["server_time_profile"] == "realistic"
    assert data["profiles"]["50ms"]["limits"]["server_time_profile"] is None
    assert data["profiles"]["50ms"]["limits"]["jira_burst_per_second_per_endpoint"]["PUT"] == 50
    for name, profile in data["profiles"].items():
        by_id = {r["id"]: r for r in profile["scenarios"]}
        assert set(by_id) == MAIN, name
        for r in profile["scenarios"]:
            assert r["profile"] == name
            assert set(r) >= FIELDS, (name, r["id"], FIELDS - set(r))
            assert set(r["api_calls"]) == {"ifs", "jira", "total"}
            assert r["peak_rss_mb"] > 0
        for sid in ("1", "2a", "2", "3", "4"):
            assert {"seconds", "binding", "fewest_calls", "chain"} <= set(by_id[sid]["lower_bound"])
            assert by_id[sid]["efficiency"] is not None
        # the work really happened: every order became an issue, nothing re-created on the idle run, edits and
        # write-backs
        assert by_id["1"]["run_counts"]["created"] == 200
        assert by_id["2"]["api_calls"]["jira"]["calls"] == 0
        assert by_id["3"]["jira_calls_for_unchanged_records"] == 0
        assert by_id["4"]["run_counts"]["written_back"] == 20
        assert by_id["5"]["written"] == 10 and by_id["5"]["latency_p95_s"] is not None
        assert by_id["1b"]["jira_calls_per_flow"] <= 2 and by_id["1b"]["search_pages_of_the_whole_window"] == 2
    fast = {r["id"]: r for r in data["profiles"]["50ms"]["scenarios"]}
    slow = {r["id"]: r for r in data["profiles"]["realistic"]["scenarios"]}
    # the realistic bound waits for server time the 50 ms one does not have (here, with no latency at all)
    assert slow["1"]["lower_bound"]["seconds"] > fast["1"]["lower_bound"]["seconds"]
    assert slow["3"]["lower_bound"]["parts"]["chain_s"] > fast["3"]["lower_bound"]["parts"]["chain_s"]
    # the baseline runs under the 50 ms profile only
    assert data["baseline_profile"] == "50ms"
    for sid in ("1", "2a", "2", "3", "4"):
        assert fast[sid]["baseline"]["sample"] > 0 and fast[sid]["vs_baseline_time"] is not None
        assert "baseline" not in slow[sid]
    assert fast["1"]["baseline"]["counts"]["created"] == 20


def test_only_runs_the_chosen_scenarios_with_the_state_they_need(tmp_path: Path) -> None:
    data = _bench(tmp_path, "--only", "3", "--profiles", "realistic", "--no-baseline")
    assert list(data["profiles"]) == ["realistic"] and data["once"]["scenarios"] == []
    (only,) = data["profiles"]["realistic"]["scenarios"]
    assert only["id"] == "3" and only["jira_calls_for_unchanged_records"] == 0
    assert only["api_calls"]["jira"]["by_endpoint"]["PUT /rest/api/3/issue/{id}"] == 2  # the set-up backfill linked


def test_unknown_scenario_or_profile_is_a_usage_error(tmp_path: Path) -> None:
    for args in (["--only", "1,9"], ["--profiles", "fast"]):
        done = subprocess.run([sys.executable, "-m", "bench", *args, "--output", str(tmp_path)], cwd=ROOT,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
        assert ("unknown scenario" in done.stderr) or ("unknown profile" in done.stderr)
