"""Summaries that lead somewhere (issue 11): `sync` and `status` group failed records by reason, with counts and
the fix; `/metrics` counts them by error class. Real simulators in their own processes, a real SQLite store."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import yaml
from e2e.harness import World, example_config, world

from ml_connector.metrics import Metrics
from ml_connector.store import Store

MAPPED = {"PRJ-1000": "CAPEX", "PRJ-1001": "CAPEX"}
GHOST = "ghost@example.com"


def _config(w: World, tmp_path: Path, buyers: list[str]) -> Path:
    """The example config with the project map's default removed: POs of other projects cannot be mapped."""
    data = example_config()
    data["ifs"].update(url=w.ifs.url, http={"backoff_initial": 0.05, "backoff_max": 0.2, "max_attempts": 2})
    data["jira"].update(url=w.jira.url, http={"backoff_initial": 0.05, "backoff_max": 0.2, "max_attempts": 2})
    data["store"] = {"url": f"sqlite:///{tmp_path / 'state.sqlite'}"}
    flow = next(f for f in data["flows"] if f["name"] == "purchase_orders")
    flow["mapping"]["project"] = {"source": "ProjectId", "map": MAPPED}
    # Every buyer is someone Jira does not know: each created issue is left unassigned, with a warning.
    flow["mapping"]["assignee"] = {"source": "BuyerCode", "emails": dict.fromkeys(buyers, GHOST), "from_persons": False}
    path = tmp_path / "ml-connector.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _cli(*args: str, columns: int = 200) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ML_CONNECTOR_LOG_LEVEL": "ERROR", "COLUMNS": str(columns)}
    return subprocess.run(
        [sys.executable, "-m", "ml_connector.cli", *args], capture_output=True, text=True, env=env, timeout=120
    )


def _rows(w: World) -> list[dict[str, object]]:
    """The POs the flow reads (its filter leaves cancelled ones out)."""
    return [r for r in w.ifs_rows("PurchaseOrder") if r["Objstate"] != "Cancelled"]


def test_sync_and_status_group_failures_by_reason_with_the_fix(tmp_path: Path) -> None:
    with world(purchase_orders=60, work_orders=5) as w:
        path = _config(w, tmp_path, sorted({str(r["BuyerCode"]) for r in _rows(w)}))
        first = _cli("sync", "-c", str(path))
        assert first.returncode == 1, first.stdout + first.stderr
        out = first.stdout
        parked = _cli("records", "--state", "parked", "--json", "-n", "1000", "-c", str(path))
        rows = [json.loads(line) for line in parked.stdout.splitlines()]
        found = [re.search(r"ProjectId='([^']*)'", r["error"]) for r in rows]
        expected = Counter(m.group(1) for m in found if m is not None)
        projects = Counter({k: n for k, n in expected.items() if k})  # blank ProjectIds group as "(blank)"
        assert len(projects) >= 2 and sum(expected.values()) == len(rows), expected
        (top, top_n), (second, second_n) = projects.most_common(2)
        total = len(rows)
        assert f"{total} parked in the failed queue" in out
        assert "Why (purchase_orders):" in out
        head = next(line.strip() for line in out.splitlines() if "no project mapped" in line)
        assert head.startswith(f"{total} x no project mapped: "), head
        assert f"{top!r} x{top_n}" in head and (f"{second!r} x{second_n}" in head or "more" in head)
        if expected[""]:
            assert f"(blank) x{expected['']}" in head
        fix = next(line.strip() for line in out.splitlines() if "mapping.project.map" in line)
        assert fix.startswith(f"fix: add {top!r}") and "under flows[0].mapping.project.map" in fix
        assert "replay --failed" in out
        created = sum(1 for r in _rows(w) if str(r.get("ProjectId")) in MAPPED)
        warned = f"{created} x no Jira user (left unassigned or given the fallback): {GHOST!r} x{created}"
        assert created and warned in out
        assert "Warnings (purchase_orders):" in out and "mapping.assignee.fallback_email" in out

        status = _cli("status", "-c", str(path), columns=80)
        assert status.returncode == 0, status.stderr
        lines = status.stdout.splitlines()
        assert all(len(line) <= 80 for line in lines), "\n".join(line for line in lines if len(line) > 80)
        at = next(i for i, line in enumerate(lines) if line.lstrip().startswith("purchase_orders "))
        row = " ".join(lines[at : at + 2])  # the outcome cell may wrap onto a second line
        assert "partial (outbound)" in lines[at]  # the outbound's partial, not the later write-back's succeeded
        assert re.search(rf"\b{total}\b.*\bparked\b", row) and lines[at].rstrip().endswith(f" {total}"), row
        text = " ".join(status.stdout.split())  # wrapped lines joined
        assert "Failed records (purchase_orders):" in text
        assert f"{total} x no project mapped: " in text and f"{top!r} x{top_n}" in text
        assert "fix: add" in text and "under flows[0].mapping.project.map" in text

        again = _cli("sync", "-c", str(path))  # nothing new: exit 0, but the failed queue and why are still said
        assert again.returncode == 0, again.stdout + again.stderr
        assert f"{total} record(s) parked by earlier runs" in again.stdout
        assert "Failed queue (purchase_orders):" in again.stdout and "mapping.project.map" in again.stdout

        store = Store.open(f"sqlite:///{tmp_path / 'state.sqlite'}")
        try:
            metrics = Metrics(store=store, flows=["purchase_orders", "work_orders"])
            registry = metrics.registry
            labels = {"flow": "purchase_orders", "error_class": "unmapped_project"}
            assert registry.get_sample_value("mlc_failed_records", labels) == total
            assert b'error_class="PRJ-' not in metrics.render()  # the value never becomes a label
        finally:
            store.close()
