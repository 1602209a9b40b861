"""Outbound flow (IFS → Jira), DESIGN §4.1: the orchestrator.

Per page: plan (``plan``: map every record, compare content hashes), then in one transaction upsert record states,
audit and advance the cursor (``commit``); then apply the Jira writes for that page (``apply``, which reconciles
interrupted creates and 404s through ``reconcile``) in the background (``pipeline``) while the next page is read.
The pages after the one being committed, their records and their lines are read ahead on other threads
(``readahead``); commits stay on the reading thread, in page order. Work that outlives a page (a crash, a retry,
an unconfirmed create) lives in the records table and is picked up at the start of the next run.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any, TypeVar

from ml_connector.config.connections import IFS_MAX_PAGE_SIZE
from ml_connector.config.models import FlowConfig
from ml_connector.engine.apply import Applier
from ml_connector.engine.commit import RunScope, advance_cursor, commit_page
from ml_connector.engine.heap import trim_heap, tune_malloc
from ml_connector.engine.pipeline import PagePipeline
from ml_connector.engine.plan import Fail, MapRow, PageRules, Plan, Row, plan_page, row_key, rows_to_map
from ml_connector.engine.ports import IfsSource, RecordStore
from ml_connector.engine.preview import Previewer
from ml_connector.engine.progress import Phase, PhaseCounter, Progress
from ml_connector.engine.readahead import ReadAhead
from ml_connector.engine.reconcile import NotFoundWatch, Reconciler
from ml_connector.engine.report import RunReport
from ml_connector.engine.runtime import Connector
from ml_connector.engine.timestamps import CursorTime, parse_ts
from ml_connector.errors import MappingError
from ml_connector.http.ratelimit import submit_in_scope
from ml_connector.ifs.bothends import key_getter, read_both_ends
from ml_connector.ifs.client import Page
from ml_connector.ifs.odata import F, Raw, WallTime, and_, filter_text
from ml_connector.jira.fields import FieldRegistry
from ml_connector.mapping import FieldTarget, IssueDraft, MappingContext, map_issue, stable_hash
from ml_connector.reasons import METADATA_REASONS, SOURCE_GONE, Reason
from ml_connector.store import PARKED, PENDING_CREATE, PENDING_UPDATE, RETRY, AuditEvent, RecordRow, utcnow

WORK_QUEUE_BATCH = 500  # records of the work queue taken at once
RANGED_LINES_MIN = 40  # from this many rows, a key-ordered page reads its lines by key range, not by key lists
# A ranged line read covers at most this many parents, so a page of 1,000 reads its lines in two requests at once:
# IFS works about 0.75 ms per row returned, so the ~1,000 lines of each take about as long as the next page of orders
# (one request for all 2,000 would take twice as long); more, smaller requests cost the server a scan each.
LINE_RANGE_PARENTS = 500
# A page's lines are read in at least this many requests (of at least LINE_RANGE_MIN_PARENTS parents each): its
# creates wait for the slowest of them, and the first pages' wait is the run's start (250 orders' lines in one
# request keep IFS 0.55 s, in four 0.2 s).
LINE_READS_PER_PAGE = 4
LINE_RANGE_MIN_PARENTS = 50
# Threads for line reads (both ends, four a page: 8 at once) and the mapping context; the IFS session caps reads
# in flight.
LINE_READS_IN_FLIGHT = 10
READ_AHEAD_PAGES = 2  # pages read and prepared ahead of the one being committed (see readahead)
# The first page is a quarter of the others: Jira's work starts after that page and its lines are read (a page of
# 1,000 orders and their lines keep IFS ~1.7 s), while the pages after it are read at once with that work. The IFS
# client doubles the pages after it up to the page size, so the creates ready grow about as fast as Jira takes them
# (a backfill's calls fill the in-flight limit a page sooner than after 250 rows and then 1,000).
FIRST_PAGE_SHARE = 4
T = TypeVar("T")
Lines = dict[Any, list[dict[str, Any]]]


class OutboundSync:
    """Runs one outbound flow once."""

    def __init__(self, connector: Connector, flow: FlowConfig, *, stop: threading.Event | None = None) -> None:
        self.c = connector
        self.flow = flow
        self.policy = connector.config.sync
        self.stop = stop or threading.Event()
        self._ctx: Future[MappingContext] | None = None
        self._ctx_lock = threading.Lock()
        self._preview: Previewer | None = None
        # How the cursor attribute reads changes no issue: not part of the mapping's fingerprint.
        self._fingerprint = stable_hash(
            flow.model_dump(mode="json", exclude={"schedule", "enabled", "cursor_time_zone_aware"})
        )
        self._cursor_time = CursorTime(None if flow.cursor_time_zone_aware else connector.config.ifs.server_zone)
        self._watch = NotFoundWatch()
        self.store: RecordStore = connector.store
        self._started = utcnow()  # Jira metadata read before the run started may be stale (``_plan_prepared``)

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
        tune_malloc()  # before this run's threads allocate (see there)
        report = RunReport(self.flow.name, "replay" if queue_only else "outbound", dry_run=dry_run)
        self._started = report.started
        report.plan_limit = preview_limit
        scope = RunScope(self.flow, self.policy, report)
        counter = PhaseCounter(progress)
        reconciler = Reconciler(self.c, scope, self._watch, self.stop)
        applier = Applier(self.c, scope, reconciler, self.stop, counter=counter)
        with self.c.run_row(report, default_system="ifs", stop=self.stop):
            try:
                if not dry_run:
                    self._drain_work_queue(applier)
                if not queue_only:
                    self._read_pages(applier, dry_run=dry_run, full=full)
            finally:
                applier.close()
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
        read (``sync.pipeline_pages`` pages at most), and the pages after it are read ahead (``readahead``). Pages
        commit in order, on this thread."""
        # Pages of fewer creates than fill Jira's pipe go deeper (see PagePipeline): one bulk call's worth per slot.
        fill = self.policy.bulk_concurrency * self.policy.bulk_size
        with PagePipeline(applier.apply, 0 if dry_run else self.policy.pipeline_pages, fill=fill) as pipeline:
            newest = self._each_page(applier, pipeline, dry_run=dry_run, full=full)
            applier.read_all()
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
        newest: datetime | None = None
        # Read-ahead follows the pipeline: with pipeline_pages 0 a run reads, writes, then reads the next page.
        ahead = READ_AHEAD_PAGES if self.policy.pipeline_pages else 0
        pages = self._pages(query, order, key_ordered=key_ordered, ahead=ahead)
        with _line_pool() as pool:
            if key_ordered and ahead:
                self._start_early(pool)
            prepare = partial(self._prepare, key_ordered=key_ordered, remap=full, pool=pool)
            with ReadAhead(pages, lambda page: prepare(page.rows), ahead=ahead, stop=self.stop) as reader:
                for prepared in reader:
                    if self.stop.is_set():
                        report.interrupted = True
                        return None
                    rows = prepared.rows
                    if not rows:
                        continue
                    report.add("fetched", len(rows))
                    counter.done(Phase.READ, len(rows))
                    counter.expect(Phase.MAP, len(rows))
                    if pipeline.busy_with(row_key(r, flow.key) for r in rows):
                        # A record read again while its earlier work is in flight: plan it after that work, from the
                        # records as that work left them.
                        pipeline.drain()
                        prepared = prepare(rows)
                    plans = self._plan_prepared(prepared)
                    counter.done(Phase.MAP, len(rows))
                    if dry_run:
                        self._previewer().add_page(plans, report)
                        continue
                    # In key order a page's newest timestamp is no safe cursor (a later page may hold older changes):
                    # the cursor moves once, after the whole pass. A crash before that repeats the pass, which costs
                    # IFS reads only: unchanged records make no Jira call.
                    work, page_newest = self._commit(plans, scope, signpost, move_cursor=not key_ordered)
                    if page_newest is not None and (newest is None or page_newest > newest):
                        newest = page_newest
                    pipeline.submit(work)
                    trim_heap()  # what the pages before this one left freed (see there)
        if self.stop.is_set():  # the pages may have ended because the run is stopping: the pass is not complete
            report.interrupted = True
            return None
        if key_ordered and newest is not None and flow.detection == "cursor":
            return min(newest, signpost)
        return None

    def _start_early(self, pool: Executor) -> None:
        """The line set's keys ($metadata, for the ranged line reads), read with a whole pass's first page instead
        of after it. Its future is not kept: a failure here is met again, and raised, by the first line read (as
        the Jira client's early build in ``_start_context``). The mapping context is not started this early: its
        lookups then compete with the first pages for IFS and the CPU, and the run's first create came later."""
        if self.flow.lines is not None:
            submit_in_scope(pool, self._ifs.key_fields, self.flow.lines.entity_set)

    def _pages(self, query: str | None, order: list[str], *, key_ordered: bool, ahead: int) -> Iterable[Page]:
        """The pass's pages: one chain, or (a whole pass in key order, read ahead) both ends of the key range."""
        flow = self.flow
        size = flow.page_size or self.c.config.ifs.page_size
        read = partial(
            self._ifs.iter_pages,
            flow.entity_set,
            select=flow.read_fields() if flow.select else None,
            filter=query,
            key_fields=[flow.key],
            page_size=size,
            first_page_size=max(1, size // FIRST_PAGE_SHARE) if ahead else None,
        )
        if not (key_ordered and ahead and self.policy.read_both_ends):
            return read(orderby=order)
        return read_both_ends(
            partial(read, orderby=[flow.key]),
            partial(read, orderby=[f"{flow.key} desc"]),
            key_getter(flow.key),
            stop=self.stop,
            # A first run or --full reads everything: both ends at once. A snapshot flow reads every run, often
            # a page or two: its descending end waits until the first page shows there is more.
            eager=flow.detection != "snapshot",
        )

    def read_lines(self, rows: Sequence[Row], *, key_ordered: bool) -> Lines:
        """The lines of ``rows`` (none without ``flow.lines``), grouped by parent key; read one request at a time."""
        return _merged([read() for read in self._line_reads(rows, key_ordered=key_ordered)])

    def _line_reads(self, rows: Sequence[Row], *, key_ordered: bool) -> list[Callable[[], Lines]]:
        """Independent reads that together return the lines of ``rows``, so they can run at once."""
        spec = self.flow.lines
        if spec is None or not rows:
            return []
        if key_ordered and spec.parent_key == self.flow.key and len(rows) > RANGED_LINES_MIN:
            # Key-ordered rows are a contiguous key range: a few ranged reads (paged by the server) cover their lines.
            key = self.flow.key
            return [partial(self._lines_in_range, part[0].get(key), part[-1].get(key)) for part in _parts(rows)]
        parents = [r.get(spec.parent_key) for r in rows if r.get(spec.parent_key) is not None]
        read = partial(
            self._ifs.children_by_parent,
            spec.entity_set,
            spec.parent_key,
            parents,
            select=spec.select or None,
            orderby=spec.orderby or None,
            page_size=IFS_MAX_PAGE_SIZE,
        )
        return [read]

    def _lines_in_range(self, first: Any, last: Any) -> Lines:
        spec = self.flow.lines
        assert spec is not None  # only built for a flow with lines
        grouped: Lines = {}
        in_range = and_(F(spec.parent_key) >= first, F(spec.parent_key) <= last)
        for line in self._ifs.iter_records(
            spec.entity_set,
            select=spec.select or None,
            filter=in_range,
            orderby=spec.orderby or None,
            page_size=IFS_MAX_PAGE_SIZE,
        ):
            grouped.setdefault(line.get(spec.parent_key), []).append(line)
        return grouped

    def _context(self) -> MappingContext:
        """Lookups and Jira metadata, built on first need: a run with nothing to map makes none of those calls."""
        future = self._start_context(None)
        try:
            return future.result()
        except Exception:
            with self._ctx_lock:
                if self._ctx is future:
                    self._ctx = None  # a failed load is raised once; a later need loads again
            raise

    def _start_context(self, pool: Executor | None) -> Future[MappingContext]:
        """The mapping context, loading (in ``pool`` when given, else now) unless loaded or loading already."""
        with self._ctx_lock:
            if self._ctx is None:
                self._ctx = submit_in_scope(pool, self._load_context) if pool else _now(self._load_context)
                if pool is not None:
                    # The Jira client (its TLS context alone takes tens of ms) is built meanwhile, not before the
                    # first write: with kept metadata nothing else builds it before then. A failure here is met
                    # again, and raised, where the client is used.
                    pool.submit(lambda: self.c.jira)
            return self._ctx

    def _load_context(self) -> MappingContext:
        ctx = self.c.mapping_context(self.flow)
        self.c.note_contact("jira")
        return ctx

    # ------------------------------------------------------------------------------------------------ plan, commit

    def _prepare(self, rows: Sequence[Row], *, key_ordered: bool, remap: bool, pool: Executor | None) -> Prepared:
        """A page's records from the store, and (for the rows it must map) its lines and the mapping context, read in
        ``pool`` while the caller goes on (read when first needed without a pool). ``remap`` (``--full``) maps
        unchanged records too, so changed lookups (a supplier's tier) reach Jira."""
        rules = PageRules(self.flow.key, self._fingerprint, utcnow(), remap=remap)
        if not rows:
            return Prepared(rows, {}, rules, _no_lines)
        with self.store.transaction() as tx:
            existing = tx.records.get_many(self.flow.name, [row_key(r, self.flow.key) for r in rows])
        to_map = rows_to_map(rows, existing, rules)
        if not to_map:
            return Prepared(rows, existing, rules, _no_lines)
        reads = self._line_reads(to_map, key_ordered=key_ordered)
        if pool is None:
            return Prepared(rows, existing, rules, lambda: _merged([read() for read in reads]), mapping=True)
        self._start_context(pool)
        futures = [submit_in_scope(pool, read) for read in reads]
        return Prepared(rows, existing, rules, lambda: _merged([f.result() for f in futures]), mapping=True)

    def _plan_prepared(self, prepared: Prepared) -> list[Plan]:
        """The page's plans: its rows mapped (with their lines) where the records say they must be. A record that
        Jira metadata read before this run fails (an option, a priority, a project Jira did not have then) is mapped
        again with the metadata read now: it may have been added since."""
        plans = plan_page(prepared.rows, prepared.existing, self._mapper(prepared), prepared.rules)
        read_at = self.c.jira_metadata_read_at()
        if read_at is None or read_at >= self._started or not any(_metadata_failure(p) for p in plans):
            return plans
        self.c.forget_jira_metadata()
        with self._ctx_lock:
            self._ctx = None
        return plan_page(prepared.rows, prepared.existing, self._mapper(prepared), prepared.rules)

    def _plan(self, rows: Sequence[Row], *, key_ordered: bool) -> list[Plan]:
        return self._plan_prepared(self._prepare(rows, key_ordered=key_ordered, remap=False, pool=None))

    def _previewer(self) -> Previewer:
        """The dry run's previewer; it reads the resolved fields only for a record that needs a payload."""
        if self._preview is None:

            def metadata() -> tuple[Mapping[str, FieldTarget], FieldRegistry]:
                return self._context().fields, self.c.field_registry()

            accounts = partial(self.c.account_ids, remember=False)
            self._preview = Previewer(self.flow, metadata, accounts, flows=self.c.config.flows)
        return self._preview

    def _mapper(self, prepared: Prepared) -> MapRow:
        """The mapping function of a prepared page: takes its lines and the mapping context (none when no rows)."""
        if not prepared.mapping:
            return _nothing_to_map
        flow, ctx, lines = self.flow, self._context(), prepared.lines()

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


def _metadata_failure(plan: Plan) -> bool:
    """A mapping failure that Jira metadata decided (a value Jira did not have when it was read)."""
    error = plan.error if isinstance(plan, Fail) else None
    return isinstance(error, MappingError) and error.reason in METADATA_REASONS


def _nothing_to_map(row: Mapping[str, Any]) -> IssueDraft:
    raise AssertionError("every row of the page is settled; nothing is mapped")


@dataclass(frozen=True)
class Prepared:
    """A page ready to plan: its rows, their records as read, the rules both were judged by, and its lines."""

    rows: Sequence[Row]
    existing: Mapping[str, RecordRow]
    rules: PageRules  # the same ``now`` for choosing the rows to map (and their lines) and for planning them
    lines: Callable[[], Lines]  # waits for the page's line reads
    mapping: bool = False  # some row must be mapped (then its lines were asked for)


def _no_lines() -> Lines:
    return {}


def _merged(parts: Iterable[Lines]) -> Lines:
    """Lines of several reads of disjoint parents, as one mapping."""
    merged: Lines = {}
    for part in parts:
        merged.update(part)
    return merged


def _parts(rows: Sequence[Row]) -> list[Sequence[Row]]:
    """``rows`` cut into even runs of at most ``LINE_RANGE_PARENTS``, and into ``LINE_READS_PER_PAGE`` runs at least
    while each keeps ``LINE_RANGE_MIN_PARENTS``: one ranged line read each."""
    fewest = min(LINE_READS_PER_PAGE, max(1, len(rows) // LINE_RANGE_MIN_PARENTS))
    count = max(-(-len(rows) // LINE_RANGE_PARENTS), fewest)
    size = -(-len(rows) // count)
    return [rows[start : start + size] for start in range(0, len(rows), size)]


def _now(load: Callable[[], T]) -> Future[T]:
    """A future already done with what ``load`` returns (or raises)."""
    future: Future[T] = Future()
    try:
        future.set_result(load())
    except Exception as exc:
        future.set_exception(exc)
    return future


@contextmanager
def _line_pool() -> Iterator[ThreadPoolExecutor]:
    """Threads for a pass's line reads; reads not yet started when the pass ends are dropped, not sent."""
    pool = ThreadPoolExecutor(max_workers=LINE_READS_IN_FLIGHT, thread_name_prefix="mlc-lines")
    try:
        yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
