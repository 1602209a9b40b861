"""Issue 14, items 1-2: the outbound pipeline and the adaptive in-flight limit, over the simulators on loopback.

Page n + 1 is read while page n's Jira work is in flight; a page's failure never moves the cursor past an
uncommitted page; edits run concurrently and a 429 storm shrinks the number in flight.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from e2e.harness import World, connector_config, make_connector, world

from ml_connector.engine import outbound
from ml_connector.engine.apply import Applier
from ml_connector.engine.outbound import FIRST_PAGE_SHARE, OutboundSync
from ml_connector.engine.runtime import Connector
from ml_connector.engine.timestamps import parse_ts
from ml_connector.http.concurrency import MIN_IN_FLIGHT, ConcurrencyGate
from ml_connector.ifs.client import IfsClient
from ml_connector.jira.client import JiraClient
from ml_connector.store import RETRY, SYNCED, RecordRow

FLOW = "purchase_orders"
EDIT = "PUT /rest/api/{id}/issue/{id}"


class Timeline:
    """When each IFS page of orders was read and when each page's Jira work started and ended (monotonic seconds)."""

    def __init__(self, c: Connector, monkeypatch: pytest.MonkeyPatch) -> None:
        self.pages: list[float] = []
        self.applies: list[tuple[float, float, int]] = []
        self._lock = threading.Lock()
        ifs = c.ifs
        read = ifs.iter_pages

        def iter_pages(entity_set: str, *args: Any, **kwargs: Any) -> Iterator[Any]:
            for page in read(entity_set, *args, **kwargs):
                if entity_set.endswith("/PurchaseOrderSet"):  # the flow's pages, not its lines or lookups
                    self.pages.append(time.monotonic())
                yield page

        monkeypatch.setattr(ifs, "iter_pages", iter_pages)
        apply = Applier.apply

        def timed_apply(applier: Applier, records: Sequence[RecordRow]) -> None:
            started = time.monotonic()
            try:
                apply(applier, records)
            finally:
                with self._lock:
                    self.applies.append((started, time.monotonic(), len(records)))

        monkeypatch.setattr(Applier, "apply", timed_apply)


def _config(w: World, tmp_path: Path, **sync: Any) -> Any:
    tweak = {"sync": {"bulk_size": 5, **sync}, "jira": {"http": {"max_attempts": 2}}}
    config = connector_config(w, tmp_path, tweak=tweak)
    flow = config.flow(FLOW).model_copy(update={"page_size": 10})
    return config.model_copy(update={"flows": [flow]})


@pytest.mark.parametrize("depth", [1, 0], ids=["pipelined", "lock-step"])
def test_the_next_page_is_read_while_the_previous_pages_creates_are_in_flight(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, depth: int
) -> None:
    with world(purchase_orders=40, work_orders=0) as w:
        w.jira_sim.faults(latency_ms=300)  # every bulk create takes 0.3 s: page 1's work outlasts page 2's read
        c = make_connector(_config(w, tmp_path, pipeline_pages=depth))
        try:
            timeline = Timeline(c, monkeypatch)
            report = OutboundSync(c, c.config.flow(FLOW)).run()
            assert report.status == "succeeded", report.as_dict()
            first_work = min(timeline.applies)  # page 1's work (the drained work queue is empty)
            second_page = timeline.pages[1]
            if depth:
                assert second_page < first_work[1]  # read before page 1's bulk creates were done (or even begun)
            else:
                assert second_page >= first_work[1]
            counts = w.issues_per_key()
            assert len(counts) == report.counts["created"] > 0 and set(counts.values()) == {1}
        finally:
            c.close()


def test_each_page_with_records_hands_the_heap_it_left_freed_back_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with world(purchase_orders=40, work_orders=0) as w:
        c = make_connector(_config(w, tmp_path))
        try:
            pages: list[int] = []  # the records of each page the run planned
            plan = OutboundSync._plan_prepared

            def counted(sync: OutboundSync, prepared: Any) -> Any:
                pages.append(len(prepared.rows))
                return plan(sync, prepared)

            trims: list[int] = []
            monkeypatch.setattr(OutboundSync, "_plan_prepared", counted)
            monkeypatch.setattr(outbound, "trim_heap", lambda: trims.append(len(pages)))
            report = OutboundSync(c, c.config.flow(FLOW)).run()
            assert report.status == "succeeded", report.as_dict()
            assert sum(pages) == report.counts["fetched"] > 30 and len(pages) >= 4
            assert trims == list(range(1, len(pages) + 1))  # once a page, after it was planned
        finally:
            c.close()


def _gate_samples(monkeypatch: pytest.MonkeyPatch) -> list[tuple[float, str, int, int]]:
    """(time, endpoint, in flight, allowed) at every slot taken, any gate."""
    samples: list[tuple[float, str, int, int]] = []
    acquire = ConcurrencyGate.acquire

    def recording(gate: ConcurrencyGate, stop: threading.Event | None = None) -> None:
        acquire(gate, stop)
        samples.append((time.monotonic(), str(id(gate)), gate.in_flight, gate.limit.allowed))

    monkeypatch.setattr(ConcurrencyGate, "acquire", recording)
    return samples


def _edit_all(w: World, c: Connector, text: str) -> list[RecordRow]:
    records = sorted(c.store.records.list(flow=FLOW, limit=1000), key=lambda r: r.ifs_key)
    for r in records:
        w.ifs_state.edit("PurchaseOrder", r.ifs_key, {"Description": text})
    return records


def test_edits_run_concurrently_and_a_429_storm_shrinks_the_number_in_flight(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with world(purchase_orders=60, work_orders=0) as w:
        c = make_connector(_config(w, tmp_path, edit_concurrency=16))
        try:
            flow = c.config.flow(FLOW)
            OutboundSync(c, flow).run()
            w.jira_sim.faults(latency_ms=100)
            _edit_all(w, c, "first edit")
            OutboundSync(c, flow).run()
            calm = c.jira.session.gates[EDIT]
            assert calm.high_water > 4  # many at once: it starts at what PUT's pacing lets out at once

            samples = _gate_samples(monkeypatch)
            before = calm.limit.allowed
            records = _edit_all(w, c, "second edit")
            # 40: more than the first round trip's calls can meet, so the storm outlasts the 0.3 s hold it sets and
            # the limit is cut in a second round trip too (with 20, whether one round trip met them all was timing)
            storm = {"status": 429, "count": 40, "retry_after": 0.3, "path_contains": "/issue/", "method": "PUT"}
            w.jira_sim.faults(fail_next=[storm])
            report = OutboundSync(c, flow).run()
            assert report.status == "succeeded" and report.counts["updated"] == len(records), report.as_dict()
            edit_samples = [s for s in samples if s[1] == str(id(calm))]
            assert min(s[3] for s in edit_samples) <= max(MIN_IN_FLIGHT, before // 4)  # halved, more than once
            assert max(s[2] for s in edit_samples[-5:]) < calm.high_water  # in flight dropped and stayed lower
            statuses = [r["status"] for r in w.jira_sim.requests()["requests"] if r["method"] == "PUT"]
            assert statuses.count(429) == 40
            assert all(i["summary"].endswith("second edit") for i in w.jira_issues() if "PROC" in i["key"])
        finally:
            c.close()


def test_a_runs_first_changed_page_reads_its_lines_lookups_and_jira_metadata_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """None of the three needs another: with 200 ms per call they overlap instead of adding up."""
    spans: dict[str, tuple[float, float]] = {}

    def timed(owner: Any, name: str) -> None:
        original = getattr(owner, name)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.monotonic()
            try:
                return original(*args, **kwargs)
            finally:
                # from the first call's start to the last one's end (a lookup the flow does not use returns at once)
                first, last = spans.get(name, (started, 0.0))
                spans[name] = (min(first, started), max(last, time.monotonic()))

        monkeypatch.setattr(owner, name, wrapper)

    with world(purchase_orders=20, work_orders=0) as w:
        c = make_connector(_config(w, tmp_path))
        try:
            flow = c.config.flow(FLOW)
            OutboundSync(c, flow).run()
            edited = _edit_all(w, c, "overlap")
            fresh = make_connector(_config(w, tmp_path))  # nothing cached: lookups and metadata are read again
            fresh.forget_jira_metadata()  # (Jira metadata is kept in the store across processes)
            c.close()
            c = fresh
            for owner, name in ((IfsClient, "children_by_parent"), (Connector, "_lookup"), (JiraClient, "projects")):
                timed(owner, name)
            w.ifs_sim.faults(latency_ms=200)
            w.jira_sim.faults(latency_ms=200)
            report = OutboundSync(c, flow).run()
            assert report.counts["updated"] == len(edited), report.as_dict()
            lines, lookups, jira = spans["children_by_parent"], spans["_lookup"], spans["projects"]
            assert lines[0] < lookups[1] and lookups[0] < lines[1]  # the lines and the lookups overlap
            assert lookups[0] < jira[1] and jira[0] < lookups[1]  # the lookups and the Jira metadata overlap
        finally:
            c.close()


def test_persistent_429s_on_edits_end_the_run_with_the_records_waiting_and_the_next_run_finishes_them(
    tmp_path: Path,
) -> None:
    """A 429 that never lifts: the run spends its rate-limit budget (sync.rate_limit_wait_max), then stops waiting;
    the edits wait as retries (nothing is lost, nothing is marked synced), and a later run, once Jira answers again,
    makes every one of them."""
    with world(purchase_orders=20, work_orders=0) as w:
        c = make_connector(_config(w, tmp_path, rate_limit_wait_max=1))
        try:
            flow = c.config.flow(FLOW)
            OutboundSync(c, flow).run()
            edited = _edit_all(w, c, "throttled edit")
            storm = {"status": 429, "count": 100_000, "retry_after": 0.2, "path_contains": "/issue/", "method": "PUT"}
            w.jira_sim.faults(fail_next=[storm])
            started = time.monotonic()
            report = OutboundSync(c, flow).run()
            assert time.monotonic() - started < 30  # the budget ended the waits
            assert report.counts.get("updated", 0) == 0 and report.counts.get("waiting") == len(edited)
            states = {r.ifs_key: r for r in c.store.records.list(flow=FLOW, limit=1000)}
            assert {states[r.ifs_key].state for r in edited} == {RETRY}
            assert not any(i["summary"].endswith("throttled edit") for i in w.jira_issues())

            w.jira_sim.faults(fail_next=[])
            time.sleep(0.5)  # past the Retry-After each record waits for
            again = OutboundSync(c, flow).run()
            assert again.counts["updated"] == len(edited), again.as_dict()
            assert {r.state for r in c.store.records.list(flow=FLOW, limit=1000)} == {SYNCED}
            assert sum(i["summary"].endswith("throttled edit") for i in w.jira_issues()) == len(edited)
        finally:
            c.close()


def test_a_page_whose_edits_fail_persistently_is_retried_and_the_cursor_holds_only_committed_pages(
    tmp_path: Path,
) -> None:
    """Page n fails at Jira, page n + 1 succeeds: both pages are committed (their records carry the work), so the
    cursor passes them, and page n's records wait as retries that the next run's work queue finishes."""
    with world(purchase_orders=30, work_orders=0) as w:
        c = make_connector(_config(w, tmp_path))
        try:
            flow = c.config.flow(FLOW)
            OutboundSync(c, flow).run()
            edited = _edit_all(w, c, "changed")
            failing, passing = edited[:10], edited[10:]
            rules = [
                {"status": 500, "count": 1000, "path_contains": f"/issue/{r.jira_id}", "method": "PUT"} for r in failing
            ]
            w.jira_sim.faults(fail_next=rules)
            report = OutboundSync(c, flow).run()
            assert report.counts["updated"] == len(passing)
            states = {r.ifs_key: r for r in c.store.records.list(flow=FLOW, limit=1000)}
            assert {states[r.ifs_key].state for r in failing} == {RETRY}
            assert {states[r.ifs_key].state for r in passing} == {SYNCED}
            cursor = parse_ts(c.store.cursors.get(FLOW))
            newest = max(parse_ts(row["Cf_Changed_At"]) for row in w.ifs_rows("PurchaseOrder"))
            assert cursor is not None and newest is not None and cursor <= newest

            w.jira_sim.faults(fail_next=[])
            again = OutboundSync(c, flow).run()
            assert again.counts["updated"] == len(failing)
            assert {r.state for r in c.store.records.list(flow=FLOW, limit=1000)} == {SYNCED}
        finally:
            c.close()


def test_a_page_that_cannot_be_read_holds_the_cursor_at_the_last_committed_page(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Page n + 1's read fails persistently while page n's work is in flight: page n's work finishes, the cursor
    stays within page n, and the next run reads the rest again."""
    with world(purchase_orders=30, work_orders=0) as w:
        c = make_connector(_config(w, tmp_path))
        try:
            flow = c.config.flow(FLOW)
            OutboundSync(c, flow).run()
            edited = _edit_all(w, c, "changed")
            stamps = {r["OrderNo"]: parse_ts(r["Cf_Changed_At"]) for r in w.ifs_rows("PurchaseOrder")}
            w.jira_sim.faults(latency_ms=200)
            ifs = c.ifs
            read = ifs.iter_pages

            def first_page_then_outage(*args: Any, **kwargs: Any) -> Iterator[Any]:
                for page in read(*args, **kwargs):
                    yield page
                    # From now on IFS answers 500 to every page read: the run gives up on page 2.
                    w.ifs_sim.faults(fail_next=[{"status": 500, "count": 1000, "path_contains": "PurchaseOrderSet"}])

            monkeypatch.setattr(ifs, "iter_pages", first_page_then_outage)
            with pytest.raises(Exception, match="500"):
                OutboundSync(c, flow).run()
            first_page = edited[: 10 // FIRST_PAGE_SHARE]  # a run's first page is the smaller one
            cursor = parse_ts(c.store.cursors.get(FLOW))
            assert cursor is not None and cursor <= max(stamps[r.ifs_key] for r in first_page)  # type: ignore[type-var]
            issues = {i["id"]: i for i in w.jira_issues()}
            done = [r for r in edited if issues[r.jira_id]["summary"].endswith("changed")]
            assert {r.ifs_key for r in done} == {r.ifs_key for r in first_page}  # page 1's work finished

            monkeypatch.undo()
            w.ifs_sim.faults(fail_next=[])
            OutboundSync(c, flow).run()
            assert all(i["summary"].endswith("changed") for i in w.jira_issues())
            assert set(w.issues_per_key().values()) == {1}
        finally:
            c.close()
