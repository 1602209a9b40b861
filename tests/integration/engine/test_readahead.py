"""Issue 14: IFS reads ahead of the commits, over the simulators on loopback.

A page's lines are read in key ranges at once, at the IFS maximum page size, while the next page of orders is read;
the mapping context's lookups go out together; a read that fails on a page read ahead ends the run at that page:
the pages before it are committed and their work done, nothing after it is, the cursor never passes it, and the
next run finishes the rest with no duplicate and no gap.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e.harness import World, connector_config, world

from ml_connector.config.connections import IFS_MAX_PAGE_SIZE
from ml_connector.config.models import ConnectorConfig
from ml_connector.engine import outbound
from ml_connector.engine.outbound import FIRST_PAGE_SHARE, LINE_RANGE_PARENTS, OutboundSync
from ml_connector.engine.runtime import Connector
from ml_connector.engine.timestamps import parse_ts
from ml_connector.errors import ConnectorError
from ml_connector.store import Store

FLOW = "purchase_orders"
PAGE = 100
FIRST = PAGE // FIRST_PAGE_SHARE  # rows of a run's first page
ORDERS = "/PurchaseOrderSet"
LINES = "/PurchaseOrderLinePartSet"


class Calls:
    """Every answered call: (started, ended, endpoint), from the client's observer (monotonic seconds)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.spans: list[tuple[float, float, str]] = []

    def on_response(self, system: str, method: str, endpoint: str, status: int, seconds: float) -> None:
        now = time.monotonic()
        with self.lock:
            self.spans.append((now - seconds, now, endpoint))

    def on_retry(self, system: str, error: ConnectorError, delay: float) -> None:
        return None

    def on_quota_points(self, system: str, points: int) -> None:
        return None

    def of(self, suffix: str) -> list[tuple[float, float, str]]:
        return sorted(s for s in self.spans if s[2].endswith(suffix))


def _config(w: World, tmp_path: Path, page_size: int) -> ConnectorConfig:
    tweak = {"ifs": {"http": {"max_attempts": 2}}, "jira": {"http": {"max_attempts": 2}}}
    config = connector_config(w, tmp_path, tweak=tweak)
    flow = config.flow(FLOW).model_copy(update={"page_size": page_size})
    return config.model_copy(update={"flows": [flow]})


def _connector(config: ConnectorConfig, calls: Calls | None = None) -> Connector:
    assert config.store.url is not None
    return Connector(config=config, store=Store.open(config.store.url), observer=calls)


def _in_scope(c: Connector) -> list[str]:
    """The flow's keys in IFS, in key order (the order of a first run's pages), read by a client of its own."""
    flow = c.config.flow(FLOW)
    own = Connector(config=c.config, store=c.store)
    try:
        rows = own.ifs.iter_records(flow.entity_set, select=[flow.key], filter=flow.filter, orderby=[flow.key])
        return [str(r[flow.key]) for r in rows]
    finally:
        own.close()


def _overlap(a: tuple[float, float, str], b: tuple[float, float, str]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def test_a_pages_lines_are_read_in_ranges_at_once_while_the_next_page_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with world(purchase_orders=1700, work_orders=0) as w:
        w.ifs_sim.faults(latency_ms=300)  # every IFS read takes 0.3 s: reads made at once overlap visibly
        calls = Calls()
        c = _connector(_config(w, tmp_path, page_size=4 * LINE_RANGE_PARENTS), calls)
        try:
            scope = _in_scope(c)
            lines_set = c.config.flow(FLOW).lines
            assert lines_set is not None
            c.ifs.key_fields(lines_set.entity_set)  # $metadata read before: the line reads start when asked for
            calls.spans.clear()
            line_reads: list[dict[str, Any]] = []
            page_rows: dict[bool, list[int]] = {False: [], True: []}  # rows per order page, by descending
            parted: list[list[int]] = []  # the parents of each ranged line read, per page
            ifs, read = c.ifs, c.ifs.iter_pages

            def spy(entity_set: str, **kwargs: Any) -> Iterator[Any]:
                if entity_set.endswith(LINES):
                    line_reads.append(kwargs)
                for page in read(entity_set, **kwargs):
                    if entity_set.endswith(ORDERS):
                        page_rows["desc" in str(kwargs["orderby"])].append(len(page.rows))
                    yield page

            def parts(rows: Any) -> Any:
                cut = split(rows)
                parted.append([len(p) for p in cut])
                return cut

            monkeypatch.setattr(ifs, "iter_pages", spy)
            split = outbound._parts
            monkeypatch.setattr(outbound, "_parts", parts)
            report = OutboundSync(c, c.config.flow(FLOW)).run()
            assert report.status == "succeeded", report.as_dict()
            assert w.issues_per_key() == dict.fromkeys(scope, 1)

            pages, lines = calls.of(ORDERS), calls.of(LINES)
            # The first page of each end is a quarter of the page size (Jira's work starts sooner); the next, twice
            # as large. Both ends were read, and met: the orders came once each, at most a page's worth read twice.
            assert page_rows[False][:2] == [LINE_RANGE_PARENTS, 2 * LINE_RANGE_PARENTS]
            assert page_rows[True][0] == LINE_RANGE_PARENTS
            # at most the last page of each end read past the meeting point
            assert 1700 <= sum(page_rows[False] + page_rows[True]) <= 1700 + page_rows[False][-1] + page_rows[True][-1]
            # Each page reads its lines in ranges of at most LINE_RANGE_PARENTS orders, each in one server page, and
            # in four at least (a page's creates wait for its slowest line read).
            assert len(lines) == len(line_reads) == sum(len(p) for p in parted)
            assert all(max(p) <= LINE_RANGE_PARENTS and (len(p) >= 4 or sum(p) < 200) for p in parted)
            assert all(r["page_size"] == IFS_MAX_PAGE_SIZE for r in line_reads)
            assert all(" ge " in str(r["filter"]) and " le " in str(r["filter"]) for r in line_reads)
            assert any(_overlap(lines[0], p) for p in pages[2:])  # a first page's lines while next pages are read
            assert _overlap(lines[1], lines[2])  # page 1's ranges at once
            lookups = calls.of("/SupplierInfoGeneralSet") + calls.of("/PersonInfoSet")
            assert len(lookups) == 2 and _overlap(lookups[0], lookups[1])  # the mapping context's reads at once
        finally:
            c.close()


def test_a_persistent_fault_reading_ahead_fails_the_run_at_that_page_and_skips_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Key order (a first run, read from both ends): no second page of orders can be read while the first pages are
    committed. The run fails, the first pages' records are committed and created, no other record is, the cursor is
    not set (the pass is incomplete); the next run creates the rest."""
    with world(purchase_orders=300, work_orders=0) as w:
        c = _connector(_config(w, tmp_path, page_size=PAGE))
        try:
            flow = c.config.flow(FLOW)
            scope = _in_scope(c)
            ifs, read = c.ifs, c.ifs.iter_pages

            first_pages: list[str] = []
            lock, both = threading.Lock(), threading.Event()

            def first_page_then_outage(entity_set: str, **kwargs: Any) -> Iterator[Any]:
                for page in read(entity_set, **kwargs):
                    if entity_set.endswith(ORDERS):
                        with lock:
                            first_pages.append(str(kwargs["orderby"]))
                            if len(first_pages) == 2:  # both ends' first pages are in: from now on every read of
                                # orders answers 500
                                w.ifs_sim.faults(fail_next=[{"status": 500, "count": 1000, "path_contains": ORDERS}])
                                both.set()
                        both.wait(10)  # neither end asks for its next page before the outage
                    yield page

            monkeypatch.setattr(ifs, "iter_pages", first_page_then_outage)
            with pytest.raises(Exception, match="500"):
                OutboundSync(c, flow).run()
            stored = sorted(r.ifs_key for r in c.store.records.list(flow=FLOW, limit=1000))
            # exactly the first page of each end (read from both at once): nothing after them, nothing skipped
            firsts = sorted(scope[:FIRST] + scope[-FIRST:])
            assert stored == firsts
            assert w.issues_per_key() == dict.fromkeys(firsts, 1)  # their work finished
            assert c.store.cursors.get(FLOW) is None

            monkeypatch.undo()
            w.ifs_sim.faults(fail_next=[])
            assert OutboundSync(c, flow).run().status == "succeeded"
            assert w.issues_per_key() == dict.fromkeys(scope, 1)
            assert c.store.cursors.get(FLOW) is not None
        finally:
            c.close()


def test_a_pass_read_from_both_ends_misses_no_order_created_while_it_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A first run reads from both ends. Orders created once the descending end has passed the top of the key range
    (new keys land there) and in the middle of it are not lost: this pass or the next run (from the cursor) creates
    each once, and every order that was there throughout is created by this pass."""
    with world(purchase_orders=600, work_orders=0) as w:
        w.ifs_sim.faults(latency_ms=20)
        c = _connector(_config(w, tmp_path, page_size=PAGE))
        try:
            flow = c.config.flow(FLOW)
            before = _in_scope(c)
            ifs, read = c.ifs, c.ifs.iter_pages
            orders: list[str] = []  # the $orderby of each order read

            def create_meanwhile(entity_set: str, **kwargs: Any) -> Iterator[Any]:
                for number, page in enumerate(read(entity_set, **kwargs), start=1):
                    if entity_set.endswith(ORDERS):
                        orders.append(str(kwargs["orderby"]))
                        if "desc" in orders[-1] and number == 2:
                            w.ifs_state.create("PurchaseOrder", count=5)  # above the descending end's start
                            for suffix in "ABC":  # between the two ends
                                values = {"OrderNo": f"{before[300]}{suffix}", "Objstate": "Released"}
                                w.ifs_state.create("PurchaseOrder", values=values)
                    yield page

            monkeypatch.setattr(ifs, "iter_pages", create_meanwhile)
            assert OutboundSync(c, flow).run().status == "succeeded"
            assert any("desc" in o for o in orders) and any("desc" not in o for o in orders)
            first = w.issues_per_key()
            assert all(first[key] == 1 for key in before) and max(first.values()) == 1

            monkeypatch.undo()
            assert OutboundSync(c, flow).run().status == "succeeded"
            after = _in_scope(c)
            assert w.issues_per_key() == dict.fromkeys(after, 1)
            assert {f"{before[300]}{suffix}" for suffix in "ABC"} <= set(after) and len(after) > len(before) + 2
        finally:
            c.close()


def test_one_chain_when_reading_from_both_ends_is_off(tmp_path: Path) -> None:
    with world(purchase_orders=300, work_orders=0) as w:
        config = _config(w, tmp_path, page_size=PAGE)
        config = config.model_copy(update={"sync": config.sync.model_copy(update={"read_both_ends": False})})
        c = _connector(config)
        try:
            assert OutboundSync(c, config.flow(FLOW)).run().status == "succeeded"
            reads = [r for r in w.ifs_sim.requests()["requests"] if r["path"].endswith(ORDERS)]
            assert reads and not any("desc" in r["query"] for r in reads)
            assert w.issues_per_key() == dict.fromkeys(_in_scope(c), 1)
        finally:
            c.close()


def test_lines_that_cannot_be_read_for_the_next_page_hold_the_cursor_at_the_last_committed_page(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cursor order: page 1's lines are read, every later line read answers 500. The run fails after committing
    page 1 only; the cursor moves within page 1; the next run edits the rest."""
    with world(purchase_orders=300, work_orders=0) as w:
        c = _connector(_config(w, tmp_path, page_size=PAGE))
        try:
            flow = c.config.flow(FLOW)
            OutboundSync(c, flow).run()
            records = {r.ifs_key: r for r in c.store.records.list(flow=FLOW, limit=1000)}
            for key in sorted(records):
                w.ifs_state.edit("PurchaseOrder", key, {"Description": "changed"})
            stamps = {r["OrderNo"]: parse_ts(r["Cf_Changed_At"]) for r in w.ifs_rows("PurchaseOrder")}
            order = sorted(records, key=lambda k: (stamps[k], k))  # the pages' order: stamp, then key
            ifs, children = c.ifs, c.ifs.children_by_parent
            first_done = threading.Event()

            def first_then_outage(entity_set: str, parent_field: str, parents: list[Any], **kwargs: Any) -> Any:
                if order[0] not in parents:  # a later page's lines (read ahead, maybe at once with page 1's)
                    first_done.wait(10)  # ... meet the outage
                    return children(entity_set, parent_field, parents, **kwargs)
                try:
                    return children(entity_set, parent_field, parents, **kwargs)
                finally:  # page 1's lines were read: from now on every line read answers 500
                    w.ifs_sim.faults(fail_next=[{"status": 500, "count": 1000, "path_contains": LINES}])
                    first_done.set()

            monkeypatch.setattr(ifs, "children_by_parent", first_then_outage)
            with pytest.raises(Exception, match="500"):
                OutboundSync(c, flow).run()

            after = {r.ifs_key: r for r in c.store.records.list(flow=FLOW, limit=1000)}
            committed = {k for k in records if after[k].source_hash != records[k].source_hash}
            assert committed == set(order[:FIRST])  # exactly page 1: nothing after it, nothing skipped
            cursor = parse_ts(c.store.cursors.get(FLOW))
            assert cursor is not None and cursor <= max(stamps[k] for k in committed)  # type: ignore[type-var]
            issues = {i["id"]: i for i in w.jira_issues()}
            edited = {k for k in records if issues[records[k].jira_id]["summary"].endswith("changed")}
            assert edited == committed  # page 1's work finished, no later record was touched

            monkeypatch.undo()
            w.ifs_sim.faults(fail_next=[])
            assert OutboundSync(c, flow).run().status == "succeeded"
            issues = {i["id"]: i for i in w.jira_issues()}
            assert all(issues[r.jira_id]["summary"].endswith("changed") for r in records.values())
            assert set(w.issues_per_key().values()) == {1}
        finally:
            c.close()



def test_a_mapping_context_that_cannot_be_loaded_fails_the_run_after_one_attempt(tmp_path: Path) -> None:
    """The context loads on a reading thread, at once with page 1's lines; its failure is raised where page 1 is
    mapped, once: the reading thread does not load it again, and nothing is committed."""
    with world(purchase_orders=100, work_orders=0) as w:
        c = _connector(_config(w, tmp_path, page_size=PAGE))
        try:
            w.jira_sim.faults(fail_next=[{"status": 403, "count": 1000, "path_contains": "/rest/api/3/field"}])
            with pytest.raises(Exception, match="403"):
                OutboundSync(c, c.config.flow(FLOW)).run()
            assert w.jira_sim.counts().get("GET /rest/api/3/field") == 1
            assert c.store.records.list(flow=FLOW, limit=1000) == []
        finally:
            c.close()
