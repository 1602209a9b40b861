"""``records --format csv|json|table`` on a real SQLite store, read back with the csv and json modules."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import yaml
from e2e.harness import example_config

from ml_connector.records_csv import COLUMNS
from ml_connector.store import Store

_JIRA = "https://example.atlassian.net"
_ERROR = 'field "summary" is too long, 300 > 255\nsecond line'


def _store_with_records(tmp_path: Path) -> Path:
    url = f"sqlite:///{tmp_path / 'state.sqlite'}"
    store = Store.open(url)
    try:
        store.records.insert("purchase_orders", "PO-1", state="synced", jira_key="PROC-1", jira_id="10001")
        store.records.insert("purchase_orders", "=HYPERLINK(\"http://x\")", state="parked", attempts=3,
                             last_error=_ERROR)
        store.records.insert("purchase_orders", "-2+3", state="retry", attempts=1, last_error="@SUM(A1:A9)")
        store.records.insert("purchase_orders", "PO,4", state="pending_create")
    finally:
        store.close()
    data = example_config()
    data["jira"]["url"] = _JIRA
    data["store"] = {"url": url}
    path = tmp_path / "ml-connector.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _records(path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ML_CONNECTOR_LOG_LEVEL": "ERROR", "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "ml_connector.cli", "records", *args, "-c", str(path)],
                          capture_output=True, text=True, env=env, timeout=120)


def test_csv_has_a_header_escapes_and_defuses_formulas(tmp_path: Path) -> None:
    path = _store_with_records(tmp_path)
    done = _records(path, "--format", "csv")
    assert done.returncode == 0, done.stderr
    rows = list(csv.reader(io.StringIO(done.stdout, newline="")))
    assert rows[0] == list(COLUMNS)  # the dashboard's /records.csv, column for column
    by_key = {row[1]: dict(zip(rows[0], row, strict=True)) for row in rows[1:]}
    assert len(by_key) == 4
    assert by_key["PO-1"]["jira_url"] == f"{_JIRA}/browse/PROC-1" and by_key["PO-1"]["jira_key"] == "PROC-1"
    formula = by_key["'=HYPERLINK(\"http://x\")"]  # quotes escaped by doubling, the formula turned into text
    assert formula["last_error"] == _ERROR and formula["attempts"] == "3" and formula["jira_url"] == ""
    assert by_key["'-2+3"]["last_error"] == "'@SUM(A1:A9)"
    assert by_key["PO,4"]["state"] == "pending_create"  # a comma inside a quoted cell, not a new column


def test_json_is_the_same_through_both_spellings_and_lines_parse(tmp_path: Path) -> None:
    path = _store_with_records(tmp_path)
    old, new = _records(path, "--json"), _records(path, "--format", "json")
    assert old.returncode == new.returncode == 0 and old.stdout == new.stdout
    rows = [json.loads(line) for line in new.stdout.splitlines()]
    assert {r["key"] for r in rows} == {"PO-1", '=HYPERLINK("http://x")', "-2+3", "PO,4"}  # JSON keeps raw values
    assert next(r for r in rows if r["key"] == "PO-1")["jira_url"] == f"{_JIRA}/browse/PROC-1"


def test_table_is_the_default_and_disagreeing_options_are_refused(tmp_path: Path) -> None:
    path = _store_with_records(tmp_path)
    table = _records(path, "--format", "table", "--state", "synced")
    assert table.returncode == 0 and f"{_JIRA}/browse/PROC-1" in table.stdout
    assert _records(path, "--state", "synced").stdout == table.stdout
    both = _records(path, "--json", "--format", "csv")
    assert both.returncode == 2 and "--json and --format csv disagree" in both.stderr
    unknown = _records(path, "--format", "xml")
    assert unknown.returncode == 2 and "Traceback" not in unknown.stderr


def test_csv_of_no_records_is_only_the_header(tmp_path: Path) -> None:
    path = _store_with_records(tmp_path)
    done = _records(path, "--format", "csv", "--state", "orphaned")
    assert done.returncode == 0
    assert done.stdout.splitlines() == [",".join(COLUMNS)]
