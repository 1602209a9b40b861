"""`sync --dry-run` as an operator runs it: per record the issue that would be created (or the fields that would
change) by Jira field name, the whole batch's counts and failures by reason, and not one write on either side."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from e2e.harness import World, example_config, world

from ml_connector.cli.app import ExitCode

CUSTOM = {"GL Account", "Cost Center (textfield)", "Cost Center (select)", "Supplier", "IFS Reference"}

TOO_LONG_FIX = (
    "change the template flows[0].mapping.summary to stay within 255 characters "
    "(e.g. {{ Description | truncate(200) }})"
)


def _config(w: World, tmp_path: Path) -> Path:
    data = example_config()
    data["ifs"].update(url=w.ifs.url)
    data["jira"].update(url=w.jira.url)
    data["store"] = {"url": f"sqlite:///{tmp_path / 'state.sqlite'}"}
    path = tmp_path / "ml-connector.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ML_CONNECTOR_LOG_LEVEL": "ERROR", "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "ml_connector.cli", *args], capture_output=True, text=True, env=env, timeout=300
    )


def _no_writes(w: World) -> None:
    """The request logs hold reads only: Jira GETs and searches, IFS GETs and the token."""
    assert w.jira_writes() == {}
    ifs = [k for k in w.ifs_sim.counts() if not k.startswith("GET ") and "openid-connect/token" not in k]
    assert ifs == []


def _rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as conn:
        return list(conn.execute(sql))


def _flow(document: dict[str, Any], name: str) -> dict[str, Any]:
    [flow] = [f for f in document["flows"] if f["flow"] == name and f["kind"] == "outbound"]
    return flow


def test_dry_run_json_lists_every_record_and_writes_nothing(tmp_path: Path) -> None:
    with world(purchase_orders=200, work_orders=0) as w:
        orders = {r["OrderNo"]: r for r in w.ifs_rows("PurchaseOrder") if r["Objstate"] != "Cancelled"}
        too_long = sorted(orders)[0]
        w.ifs_state.edit("PurchaseOrder", too_long, {"Description": "z" * 300})
        path = _config(w, tmp_path)
        w.jira_sim.clear_requests()
        w.ifs_sim.clear_requests()

        done = _cli("sync", "--dry-run", "--json", "-c", str(path))

        assert done.returncode == ExitCode.RECORDS_FAILED, done.stderr  # one record would fail
        document = json.loads(done.stdout)  # one JSON document, nothing else on stdout
        po = _flow(document, "purchase_orders")
        records = {r["key"]: r for r in po["records"]}
        assert set(records) == set(orders)  # every record, not a first page
        assert po["counts"] == {"fetched": len(orders), "would_create": len(orders) - 1, "would_fail": 1}
        assert document["totals"]["would_create"] == len(orders) - 1
        for key, record in records.items():
            if key == too_long:
                continue
            fields = record["fields"]
            assert record["action"] == "create"
            assert fields["Project"] in {"PROC", "CAPEX"} and fields["Issue Type"] == "Purchase Order"
            assert fields["Summary"] == f"PO {key}: {orders[key]['Description']}"
            assert fields["Priority"] in {"High", "Medium", "Low"}
            assert fields["IFS Reference"] == key and fields["Supplier"] == orders[key]["VendorNo"]
            assert not [name for name in fields if name.startswith("customfield_")]  # names, never ids
        assert sum(set(r["fields"]) >= CUSTOM for r in records.values()) > len(orders) / 2
        assert any(r["fields"].get("Assignee", "").endswith("@example.com") for r in records.values())
        failed = records[too_long]
        assert failed["action"] == "fail" and failed["error_class"] == "MappingError"
        assert failed["fix"] == TOO_LONG_FIX and failed["reason_code"] == "summary_too_long"
        assert document["failures"] == [
            {
                "reason": "summary_too_long",
                "label": "summary too long",
                "count": 1,
                "values": [{"value": None, "count": 1}],
                "example": f"summary is {len(f'PO {too_long}: ') + 300} characters; Jira allows 255",
                "fix": TOO_LONG_FIX,
                "flow": "purchase_orders",
            }
        ]
        assert po["failures"] == document["failures"]
        _no_writes(w)
        # The store holds only the schema and the last contact per system (system_health, what /readyz reads): no
        # record, run, cursor, audit event or cached user lookup.
        db = tmp_path / "state.sqlite"
        tables = [name for (name,) in _rows(db, "SELECT name FROM sqlite_master WHERE type = 'table'")]
        assert {"records", "runs", "cursors", "audit_events", "jira_users"} <= set(tables)
        filled = {t for t in tables if _rows(db, f"SELECT count(*) FROM {t}") != [(0,)]}
        assert filled == {"alembic_version", "system_health"}


def test_limit_shows_a_few_and_counts_the_whole_batch(tmp_path: Path) -> None:
    with world(purchase_orders=60, work_orders=0) as w:
        in_scope = [r for r in w.ifs_rows("PurchaseOrder") if r["Objstate"] != "Cancelled"]
        path = _config(w, tmp_path)
        data = yaml.safe_load(path.read_text())
        del data["flows"][0]["mapping"]["project"]["default"]  # records of unmapped projects would fail
        path.write_text(yaml.safe_dump(data))
        unmapped: dict[str, int] = {}
        for row in in_scope:
            if row["ProjectId"] not in ("PRJ-1000", "PRJ-1001"):
                unmapped[row["ProjectId"] or ""] = unmapped.get(row["ProjectId"] or "", 0) + 1

        short = json.loads(_cli("sync", "--dry-run", "--json", "--limit", "3", "-c", str(path)).stdout)
        po = _flow(short, "purchase_orders")
        assert len(po["records"]) == 3
        assert po["counts"]["would_fail"] == sum(unmapped.values())
        [group] = short["failures"]  # one reason code; its values counted over the whole batch
        assert (group["reason"], group["count"]) == ("unmapped_project", sum(unmapped.values()))
        assert {v["value"] or "": v["count"] for v in group["values"]} == unmapped
        top = [repr(v["value"]) for v in group["values"] if v["value"] is not None][:5]
        assert group["fix"] == (
            f"add {', '.join(top)} under flows[0].mapping.project.map (or set flows[0].mapping.project.default)"
        )

        table = _cli("sync", "--dry-run", "--limit", "2", "-c", str(path))
        out = " ".join(table.stdout.split())
        assert table.returncode == ExitCode.RECORDS_FAILED, table.stderr
        assert f"purchase_orders: what would be written (first 2 of {len(in_scope)} records)" in out
        # The same lines a real sync prints under "Why": count, label, values, the fix naming them.
        first = group["values"][0]  # the most frequent value, as the JSON counted it
        shown = f"{first['value']!r} x{first['count']}" if first["value"] else f"(blank) x{first['count']}"
        assert f"Would fail (purchase_orders): {sum(unmapped.values())} x no project mapped: {shown}" in out
        assert f"fix: add {top[0]}" in out and "under flows[0].mapping.project.map" in out
        assert "customfield_" not in out and "HTTP Request" not in table.stderr
        refused = _cli("sync", "--json", "-c", str(path))  # the preview options need --dry-run: never a real run
        assert refused.returncode == ExitCode.CONFIG and "add --dry-run" in refused.stderr
        _no_writes(w)


def test_changed_records_show_only_the_fields_that_change(tmp_path: Path) -> None:
    with world(purchase_orders=8, work_orders=0) as w:
        path = _config(w, tmp_path)
        first = _cli("sync", "--no-writeback", "-c", str(path))
        assert first.returncode == ExitCode.OK, first.stdout + first.stderr
        key = sorted(r["OrderNo"] for r in w.ifs_rows("PurchaseOrder") if r["Objstate"] != "Cancelled")[0]
        w.ifs_state.edit("PurchaseOrder", key, {"Description": "Changed in IFS", "TotalAmount": 1234.5})
        db = tmp_path / "state.sqlite"
        before = _rows(db, "SELECT * FROM records ORDER BY id")
        w.jira_sim.clear_requests()
        w.ifs_sim.clear_requests()

        document = json.loads(_cli("sync", "--dry-run", "--json", "-c", str(path)).stdout)

        records = {r["key"]: r for r in _flow(document, "purchase_orders")["records"]}
        changed = records[key]
        assert changed["action"] == "update"
        assert set(changed["fields"]) == {"Summary", "Description"}
        assert changed["fields"]["Summary"]["to"] == f"PO {key}: Changed in IFS"
        assert changed["fields"]["Summary"]["from"].startswith(f"PO {key}: ")
        assert "total 1234.5" in changed["fields"]["Description"]["to"]
        assert "total 1234.5" not in changed["fields"]["Description"]["from"]
        assert {r["action"] for k, r in records.items() if k != key} == {"skip"}
        _no_writes(w)
        assert _rows(db, "SELECT * FROM records ORDER BY id") == before


def test_jira_user_search_down_stops_the_preview_with_a_reason_and_no_traceback(tmp_path: Path) -> None:
    """A persistent 503 on the user search: the flows end with the error named (in the JSON too), nothing written."""
    with world(purchase_orders=12, work_orders=3) as w:
        path = _config(w, tmp_path)
        data = yaml.safe_load(path.read_text())
        data["jira"]["http"] = {"backoff_initial": 0.01, "backoff_max": 0.05, "max_attempts": 2}
        path.write_text(yaml.safe_dump(data))
        w.jira_sim.faults(fail_next=[{"status": 503, "count": 1000, "path_contains": "user/search"}])
        w.jira_sim.clear_requests()
        w.ifs_sim.clear_requests()

        done = _cli("sync", "--dry-run", "--json", "-c", str(path))

        assert done.returncode not in (ExitCode.OK, ExitCode.RECORDS_FAILED, ExitCode.INTERNAL), done.stderr
        assert "Traceback" not in done.stderr
        document = json.loads(done.stdout)  # still one parseable document
        assert len(document["errors"]) == 2 and all("503" in e for e in document["errors"])
        assert [f["status"] for f in document["flows"] if f["kind"] == "outbound"] == ["failed", "failed"]
        assert w.jira_sim.counts().get("GET /rest/api/3/user/search", 0) >= 2  # it did try
        _no_writes(w)
