"""Outbound flow (IFS → Jira), DESIGN §4.1: the orchestrator.

Per page: plan (``plan``: map every record, compare content hashes), then in one transaction upsert record states,
audit and advance the cursor (``commit``); then apply the Jira writes for that page (``apply``, which reconciles
interrupted creates and 404s through ``reconcile``) in the background (``pipeline``) while the next page is read.
Work that outlives a page (a crash, a retry, an unconfirmed create) lives in the records table and is picked up at
the start of the next run.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from ml_connector.config.models import FlowConfig
from ml_connector.engine.apply import Applier
from ml_connector.engine.commit import RunScope, advance_cursor, commit_page
from ml_connector.engine.pipeline import PagePipeline, cap_malloc_arenas
from ml_connector.engine.plan import MapRow, PageRules, Plan, Row, plan_page, row_key, rows_to_map
from ml_connector.engine.ports import IfsSource, RecordStore
from ml_connector.engine.preview import Previewer
from ml_connector.engine.progress import Phase, PhaseCounter, Progress
from ml_connector.engine.reconcile import NotFoundWatch, Reconciler
from ml_connector.engine.report import RunReport
from ml_connector.engine.runtime import Connector
from ml_connector.engine.timestamps import CursorTime, parse_ts
from ml_connector.ifs.odata import F, Raw, WallTime, and_, filter_text
from ml_connector.jira.fields import FieldRegistry
from ml_connector.mapping import FieldTarget, IssueDraft, MappingContext, map_issue, stable_hash
from ml_connector.reasons import SOURCE_GONE, Reason
from ml_connector.store import PARKED, PENDING_CREATE, PENDING_UPDATE, RETRY, AuditEvent, RecordRow, utcnow

WORK_QUEUE_BATCH = 500  # records of the work queue taken at once
RANGED_LINES_MIN = 40  # from this many rows, a key-ordered page reads its lines with one key-range request


class OutboundSync:
    """Runs one outbound flow once."""

    def __init__(self, connector: Connector, flow: FlowConfig, *, stop: threading.Event | None = None) -> None:
        self.c = connector
        self.flow = flow
        self.policy = connector.config.sync
        self.stop = stop or threading.Event()
        self._ctx: MappingContext | None = None
        self._preview: Previewer | None = None
        # How the cursor attribute reads changes no issue: not part of the mapping's fingerprint.
        self._fingerprint = stable_hash(
            flow.model_dump(mode="json", exclude={"schedule", "enabled", "cursor_time_zone_aware"})
        )
        self._cursor_time = CursorTime(None if flow.cursor_time_zone_aware else connector.config.ifs.server_zone)
        self._watch = NotFoundWatch()
        self.store: RecordStore = connector.store

    @property
    def _ifs(self) -> IfsSource:
        """The IFS client, built on first use (as the connector builds it)."""
        return self.c.ifs

    # ------------------------------------------------------------------------------------------------ entry point

    def run(
        self,
        *,
        dry_run: bool = False,
        full: bool = False,
        queue_only: bool = False,
        progress: Progress | None = None,
        preview_limit: int | None = None,
    ) -> RunReport:
        """One run: drain the work queue (retries, replays, unconfirmed creates), then read IFS pages.

        ``queue_only`` skips reading IFS (replay); ``full`` ignores the cursor; ``dry_run`` writes nothing anywhere
        and keeps a preview of the first ``preview_limit`` records (all when None) in ``report.plan``.
        """
        cap_malloc_arenas()  # before this run's threads allocate (see there)
        report = RunReport(self.flow.name, "replay" if queue_only else "outbound", dry_run=dry_run)
        report.plan_limit = preview_limit
        scope = RunScope(self.flow, self.policy, report)
        counter = PhaseCounter(progress)
        reconciler = Reconciler(self.c, scope, self._watch, self.stop)
        applier = Applier(self.c, scope, reconciler, self.stop, counter=counter)
        with self.c.run_row(report, default_system="ifs", stop=self.stop):
            if not dry_run:
                self._drain_work_queue(applier)
            if not queue_only:
                self._read_pages(applier, dry_run=dry_run, full=full)
            self.c.note_contact("ifs")
            if not dry_run:
                self._count_waiting(report)
        return report

    def _count_waiting(self, report: RunReport) -> None:
        """Records of the flow still waiting for a retry or a confirmation: the run did not finish them."""
        states = self.store.records.count_by_state(self.flow.name)
        waiting = states.get(RETRY, 0) + states.get(PENDING_CREATE, 0) + states.get(PENDING_UPDATE, 0)
        if waiting:
            report.add("waiting", waiting)

    # ------------------------------------------------------------------------------------------------ reading

    def _query(self, full: bool) -> tuple[str | None, list[str], bool]:
        """(filter, order, key_ordered). Without a cursor (first run, ``--full``, snapshot mode) pages go in key
        order, so each page's lines can be read with one key-range request instead of many key lists."""
        flow = self.flow
        base = flow.filter
        if flow.detection == "snapshot" or flow.cursor_field is None:
            return base, [flow.key], True
        cursor = None if full else parse_ts(self.store.cursors.get(flow.name))
        if cursor is None:
            return base, [flow.key], True
        since = self._cursor_time.since(cursor - timedelta(seconds=flow.lookback))
        condition = F(flow.cursor_field) >= (since if flow.cursor_time_zone_aware else WallTime(since))
        return filter_text(and_(Raw(base) if base else None, condition)), [flow.cursor_field, flow.key], False

    def _read_pages(self, applier: Applier, *, dry_run: bool, full: bool) -> None:
        """Read, plan and commit page after page; each page's Jira work runs in the pipeline while the next page is
        read (``sync.pipeline_pages`` pages at most). Pages commit in order, on this thread."""
        with PagePipeline(applier.apply, 0 if dry_run else self.policy.pipeline_pages) as pipeline:
            newest = self._each_page(applier, pipeline, dry_run=dry_run, full=full)
            pipeline.drain()
        report = applier.scope.report
        if newest is not None and not report.interrupted:
            with self.store.transaction(report.run_id) as tx:
                advance_cursor(tx, self.flow.name, newest)

    def _each_page(self, applier: Applier, pipeline: PagePipeline, *, dry_run: bool, full: bool) -> datetime | None:
        """The pages of one pass; returns where the cursor goes after the pass (key order only, else None)."""
        flow, scope, counter = self.flow, applier.scope, applier.counter
        report = scope.report
        signpost = utcnow()
        query, order, key_ordered = self._query(full)
        select = flow.read_fields() if flow.select else None
        newest: datetime | None = None
        for page in self._ifs.iter_pages(
            flow.entity_set, select=select, filter=query, orderby=order, key_fields=[flow.key], page_size=flow.page_size
        ):
            if self.stop.is_set():
                report.interrupted = True
                return None
            if not page.rows:
                continue
            report.add("fetched", len(page.rows))
            counter.done(Phase.READ, len(page.rows))
            counter.expect(Phase.MAP, len(page.rows))
            if pipeline.busy_with(row_key(r, flow.key) for r in page.rows):
                pipeline.drain()  # a record read again while its earlier work is in flight: plan it after that work
            plans = self._plan(page.rows, key_ordered=key_ordered, remap=full)
            counter.done(Phase.MAP, len(page.rows))
            if dry_run:
                self._previewer().add_page(plans, report)
                continue
            # In key order a page's newest timestamp is no safe cursor (a later page may hold older changes): the
            # cursor moves once, after the whole pass. A crash before that repeats the pass, which costs IFS reads
            # only: unchanged records make no Jira call.
            work, page_newest = self._commit(plans, scope, signpost, move_cursor=not key_ordered)
            if page_newest is not None and (newest is None or page_newest > newest):
                newest = page_newest
            pipeline.submit(work)
        if key_ordered and newest is not None and flow.detection == "cursor":
            return min(newest, signpost)
        return None

    def read_lines(self, rows: Sequence[Row], *, key_ordered: bool) -> dict[Any, list[dict[str, Any]]]:
        spec = self.flow.lines
        if spec is None:
            return {}
        if key_ordered and spec.parent_key == self.flow.key and len(rows) > RANGED_LINES_MIN:
            # A key-ordered page is a contiguous key range: one ranged read (paged by the server) covers its lines.
            first, last = rows[0].get(self.flow.key), rows[-1].get(self.flow.key)
            grouped: dict[Any, list[dict[str, Any]]] = {}
            in_range = and_(F(spec.parent_key) >= first, F(spec.parent_key) <= last)
            for line in self._ifs.iter_records(
                spec.entity_set, select=spec.select or None, filter=in_range, orderby=spec.orderby or None
            ):
                grouped.setdefault(line.get(spec.parent_key), []).append(line)
            return grouped
        parents = [r.get(spec.parent_key) for r in rows if r.get(spec.parent_key) is not None]
        return self._ifs.children_by_parent(
            spec.entity_set, spec.parent_key, parents, select=spec.select or None, orderby=spec.orderby or None
        )

    def _context(self) -> MappingContext:
        """Lookups and Jira metadata, built on first need: a run with nothing to map makes none of those calls."""
        if self._ctx is None:
            self._ctx = self.c.mapping_context(self.flow)
            self.c.note_contact("jira")
        return self._ctx

    # ------------------------------------------------------------------------------------------------ plan, commit

    def _plan(self, rows: Sequence[Row], *, key_ordered: bool, remap: bool = False) -> list[Plan]:
        """``remap`` (``--full``) maps unchanged records too, so changed lookups (a supplier's tier) reach Jira."""
        with self.store.transaction() as tx:
            existing = tx.records.get_many(self.flow.name, [row_key(r, self.flow.key) for r in rows])
        rules = PageRules(self.flow.key, self._fingerprint, utcnow(), remap=remap)
        to_map = rows_to_map(rows, existing, rules)
        return plan_page(rows, existing, self._mapper(to_map, key_ordered=key_ordered), rules)

    def _previewer(self) -> Previewer:
        """The dry run's previewer; it reads the resolved fields only for a record that needs a payload."""
        if self._preview is None:

            def metadata() -> tuple[Mapping[str, FieldTarget], FieldRegistry]:
                return self._context().fields, self.c.field_registry()

            accounts = partial(self.c.account_ids, remember=False)
            self._preview = Previewer(self.flow, metadata, accounts, flows=self.c.config.flows)
        return self._preview

    def _mapper(self, rows: Sequence[Row], *, key_ordered: bool) -> MapRow:
        """The mapping function for ``rows``: reads their lines and the mapping context first (none when no rows)."""
        if not rows:
            return _nothing_to_map
        flow, ctx = self.flow, self._context()
        lines = self.read_lines(rows, key_ordered=key_ordered)

        def map_row(row: Row) -> IssueDraft:
            return map_issue(row, flow, ctx, lines=lines.get(row.get(flow.lines.parent_key), []) if flow.lines else ())

        return map_row

    def _commit(
        self, plans: Sequence[Plan], scope: RunScope, signpost: datetime, *, move_cursor: bool
    ) -> tuple[list[RecordRow], datetime | None]:
        return commit_page(self.store, scope, plans, signpost, move_cursor=move_cursor, read_ts=self._cursor_time.read)

    # ------------------------------------------------------------------------------------------------ work queue

    def _drain_work_queue(self, applier: Applier) -> None:
        """Leftovers from earlier runs: unconfirmed creates, due retries, replays."""
        signpost = utcnow()
        while not self.stop.is_set():
            batch = self.store.records.work_queue(self.flow.name, limit=WORK_QUEUE_BATCH)
            if not batch:
                return
            stale = [r for r in batch if r.draft is None]
            if stale:
                # Replayed records are mapped again from fresh IFS data (the config may have been fixed since).
                applier.apply(self._refetch(stale, applier.scope, signpost))
            applier.apply([r for r in batch if r.draft is not None])
            after = self.store.records.work_queue(self.flow.name, limit=WORK_QUEUE_BATCH)
            if _progress_marks(batch) <= _progress_marks(after):
                return  # nothing moved (all deferred); leave them for a later run

    def _refetch(self, records: Sequence[RecordRow], scope: RunScope, signpost: datetime) -> list[RecordRow]:
        flow, report = self.flow, scope.report
        keys: list[dict[str, str | int]] = [
            {flow.key: int(r.ifs_key) if flow.key_type == "int" else r.ifs_key} for r in records
        ]
        select = flow.read_fields() if flow.select else None
        found = self._ifs.get_many_by_keys(flow.entity_set, keys, select=select)
        rows = [row for row, _etag in found.values()]
        present = {row_key(row, flow.key) for row in rows}
        missing = [r for r in records if r.ifs_key not in present]
        if missing:
            with self.store.transaction(report.run_id) as tx:
                for record in missing:
                    tx.records.update(
                        record.id,
                        state=PARKED,
                        last_error="no longer in IFS (or outside the filter)",
                        reason=SOURCE_GONE,
                        reason_value=None,
                    )
                    tx.audit.add(record.id, AuditEvent("failed", "error", "replay: the record is no longer in IFS"))
                    report.add("parked")
                    report.causes[Reason(SOURCE_GONE)] += 1
        if not rows:
            return []
        plans = self._plan(rows, key_ordered=False)
        report.add("fetched", len(rows))
        return self._commit(plans, scope, signpost, move_cursor=False)[0]


def _progress_marks(records: Sequence[RecordRow]) -> set[tuple[Any, ...]]:
    """What changes when the work queue makes progress on a record."""
    return {(r.id, r.state, r.jira_id, r.attempts, r.draft_hash) for r in records}


def _nothing_to_map(row: Mapping[str, Any]) -> IssueDraft:
    raise AssertionError("every row of the page is settled; nothing is mapped")
