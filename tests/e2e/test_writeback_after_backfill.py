"""Issue 14, item 5: the write-back polls after a backfill do not page through every issue the backfill created.

A backfill leaves hundreds of issues "updated" inside the poll's look-back window. The poll reads the window's
newest page and then only the issues whose status changed in it (``status CHANGED AFTER``), so it costs two search
calls whatever the backfill's size, and still sees a person's transition of an issue the backfill created seconds
before. Both simulators run in their own processes; the connector runs as the CLI.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from e2e.harness import REPORT_LINES
from e2e.procs import SimProcess, run_cli, start_all, write_config

POS = 500  # five search pages of the poll's 100: paging through the window would cost five calls or more
PERSON = "ana.alvarez@example.com"
ISSUE_READ = re.compile(r"/issue/(?:\d+|[A-Z][A-Z0-9_]*-\d+)$")  # GET /issue/{id or key}, not createmeta
LAG = 8.0  # longer than a CLI start on a loaded machine: the first poll after the moves cannot see them


def _start(tmp_path: Path, *jira_args: str) -> tuple[SimProcess, SimProcess]:
    ifs, jira = start_all(
        [
            ("ifs", tmp_path / "ifs.log", ("--purchase-orders", str(POS), "--work-orders", "0", "--rate-limit", "0")),
            ("jira", tmp_path / "jira.log", jira_args),
        ]
    )
    return ifs, jira


def _config(tmp_path: Path, ifs: SimProcess, jira: SimProcess, store_url: str) -> Path:
    return write_config(tmp_path / "ml-connector.yaml", ifs_url=ifs.url, jira_url=jira.url, store_url=store_url)


def _sync(config: Path, *args: str) -> None:
    result = run_cli(config, "sync", *args, timeout=300)
    assert result.code == 0 and "Traceback" not in result.output, result.brief()


def _poll_searches(jira: SimProcess) -> list[str]:
    """The JQL of every write-back poll search since the log was cleared (the poll's queries bound ``updated``)."""
    found = []
    for entry in jira.control.requests()["requests"]:
        if entry["endpoint"].endswith("search/jql") and entry["method"] == "POST":
            jql = str(json.loads(entry.get("request_body") or "{}").get("jql", ""))
            if "updated >=" in jql:
                found.append(jql)
    return found


def _writeback_calls(jira: SimProcess) -> int:
    """Jira calls a write-back run made: its poll searches and any single-issue reads (repair reads). An idle
    outbound run in the same ``sync`` reads no issue and searches without an ``updated`` bound."""
    reads = [e for e in jira.control.requests()["requests"] if e["method"] == "GET" and ISSUE_READ.search(e["path"])]
    return len(_poll_searches(jira)) + len(reads)


def _ifs_status_writes(ifs: SimProcess) -> Counter[str]:
    """Successful IFS PATCHes per purchase order (the write-back is the only writer of IFS here)."""
    patches: Counter[str] = Counter()
    for entry in ifs.control.call("GET", "requests")["requests"]:
        if entry["method"] == "PATCH" and entry.get("status") in range(200, 300) and "(OrderNo='" in entry["path"]:
            patches[entry["path"].split("(OrderNo='", 1)[1].rsplit("')", 1)[0].replace("''", "'")] += 1
    return patches


def _order_no(jira: SimProcess, key: str) -> str:
    issue = jira.control.call("GET", f"issues/{key}")
    prop = (issue.get("properties") or {}).get("ml-connector")
    assert isinstance(prop, dict), issue
    return str(prop["key"])


def _ifs_status(ifs: SimProcess, order_no: str) -> Any:
    return ifs.control.call("GET", f"records/PurchaseOrder/{quote(order_no, safe='')}").get("Cf_Jira_Status")


def _move(jira: SimProcess, keys: list[str], status: str) -> None:
    for key in keys:
        jira.control.call("POST", f"issues/{key}/transition", json={"status": status, "as": PERSON})


def _record(jira: SimProcess) -> None:
    jira.control.clear_requests()
    jira.control.call("PUT", "requests", json={"record_exchanges": True})


def _proc_keys(jira: SimProcess) -> list[str]:
    issues = jira.control.call("GET", "issues", params={"project": "PROC"})["issues"]
    return sorted((i["key"] for i in issues), key=lambda k: int(k.split("-")[1]))


@pytest.mark.timeout(600)
def test_post_backfill_polls_cost_two_searches_and_see_every_person_change(tmp_path: Path, store_url: str) -> None:
    ifs, jira = _start(tmp_path)
    try:
        config = _config(tmp_path, ifs, jira, store_url)
        _record(jira)
        _sync(config)  # the backfill, then its first write-back poll: every issue it made is in the window
        keys = _proc_keys(jira)
        assert len(keys) >= 4 * 100, "the window must span several search pages"
        first = _poll_searches(jira)
        assert len(first) <= 2, first
        assert not _ifs_status_writes(ifs), "nobody moved anything: nothing to write back"

        # A person moves three issues the backfill created seconds ago: the oldest, one in the middle, the newest.
        moved = [keys[0], keys[len(keys) // 2], keys[-1]]
        _move(jira, moved, "In Progress")
        _record(jira)
        _sync(config, "--flow", "purchase_orders")
        searches = _poll_searches(jira)
        REPORT_LINES.append(f"post-backfill write-back poll: {len(searches)} searches over {len(keys)} new issues")
        assert len(searches) <= 2, searches
        assert any("status CHANGED AFTER" in q for q in searches), searches
        writes = _ifs_status_writes(ifs)
        assert set(writes) == {_order_no(jira, k) for k in moved}, writes
        assert all(n == 1 for n in writes.values()), writes
        assert all(_ifs_status(ifs, _order_no(jira, k)) == "In Progress" for k in moved)

        # No person change: the next poll costs at most two Jira calls and writes nothing.
        _record(jira)
        _sync(config, "--flow", "purchase_orders")
        assert _writeback_calls(jira) <= 2
        assert _ifs_status_writes(ifs) == writes
    finally:
        ifs.stop()
        jira.stop()


@pytest.mark.timeout(600)
def test_a_change_search_shows_late_is_written_by_the_next_poll(tmp_path: Path, store_url: str) -> None:
    ifs, jira = _start(tmp_path, "--index-lag", str(LAG))
    try:
        config = _config(tmp_path, ifs, jira, store_url)
        _sync(config)
        jira.control.call("POST", "index/flush")
        _sync(config)  # the backfill's issues are all searchable now: the window is several pages
        keys = _proc_keys(jira)
        moved = [keys[1], keys[-2]]
        _move(jira, moved, "In Progress")
        _record(jira)
        _sync(config, "--flow", "purchase_orders")  # at once: search does not show the moves yet
        assert len(_poll_searches(jira)) <= 2
        assert not _ifs_status_writes(ifs), "search could not show the moves yet"
        time.sleep(LAG + 0.5)
        _record(jira)
        _sync(config, "--flow", "purchase_orders")
        assert len(_poll_searches(jira)) <= 2
        writes = _ifs_status_writes(ifs)
        assert set(writes) == {_order_no(jira, k) for k in moved}, writes
    finally:
        ifs.stop()
        jira.stop()
