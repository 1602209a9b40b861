"""Outbound flow (IFS → Jira), DESIGN §4.1.

Per page: plan (map every record, compare content hashes), then in one transaction upsert record states, audit and
advance the cursor; then apply the Jira writes for that page. Work that outlives a page (a crash, a retry, an
unconfirmed create) lives in the records table and is picked up at the start of the next run.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import structlog

from ml_connector.config.models import FlowConfig
from ml_connector.engine.failures import FailureDecision, create_failure_error, decide, describe, is_systemic
from ml_connector.engine.report import PlannedAction, RunReport
from ml_connector.engine.runtime import Connector
from ml_connector.engine.timestamps import format_ts, parse_ts
from ml_connector.errors import AuthError, NotFound, PermanentError
from ml_connector.ifs.odata import F, Raw, and_, filter_text
from ml_connector.jira import adf, jql
from ml_connector.jira.models import DraftIssue
from ml_connector.mapping import (
    IDENTITY_PROPERTY,
    IssueDraft,
    MappingContext,
    build_issue_fields,
    identity_label,
    map_issue,
    stable_hash,
)
from ml_connector.store import (
    ORPHANED,
    PARKED,
    PENDING_CREATE,
    PENDING_UPDATE,
    RETRY,
    SYNCED,
    AuditEvent,
    RecordRow,
    Tx,
    utcnow,
)

log = structlog.get_logger("ml_connector.engine")

Progress = Callable[[int], None]

SEARCH_LABELS = 50  # identity labels per reconciliation search (one JQL ``labels in (...)``)
NOT_FOUND = "NotFound"  # error_class of a record whose issue answered 404, until that is confirmed or disproved


@dataclass
class _Planned:
    key: str
    action: str  # create | update | skip | fail | requeue
    record: Mapping[str, Any]
    draft: IssueDraft | None = None
    error: Exception | None = None
    existing: RecordRow | None = None
    source_hash: str = ""


class OutboundSync:
    """Runs one outbound flow once."""

    def __init__(self, connector: Connector, flow: FlowConfig, *, stop: threading.Event | None = None) -> None:
        self.c = connector
        self.flow = flow
        self.policy = connector.config.sync
        self.stop = stop or threading.Event()
        self._ctx: MappingContext | None = None
        self._fingerprint = stable_hash(flow.model_dump(mode="json", exclude={"schedule", "enabled"}))
        # Per run: records whose issue was edited or read, those that answered 404, and those first seen 404 in
        # this run (a 404 is confirmed only on a later run). Sets: a record edited twice in a run counts once.
        self._edited: set[int] = set()
        self._not_found: set[int] = set()
        self._not_found_alert = False
        self._suspected: set[int] = set()

    # ------------------------------------------------------------------------------------------------ entry point

    def run(
        self,
        *,
        dry_run: bool = False,
        full: bool = False,
        queue_only: bool = False,
        progress: Progress | None = None,
    ) -> RunReport:
        """One run: drain the work queue (retries, replays, unconfirmed creates), then read IFS pages.

        ``queue_only`` skips reading IFS (replay); ``full`` ignores the cursor; ``dry_run`` writes nothing anywhere.
        """
        report = RunReport(self.flow.name, "replay" if queue_only else "outbound", dry_run=dry_run)
        with self.c.run_row(report, default_system="ifs", stop=self.stop):
            if not dry_run:
                self._drain_work_queue(report)
            if not queue_only:
                self._read_pages(report, dry_run=dry_run, full=full, progress=progress)
            self.c.note_contact("ifs")
            if not dry_run:
                self._count_waiting(report)
        return report

    def _count_waiting(self, report: RunReport) -> None:
        """Records of the flow still waiting for a retry or a confirmation: the run did not finish them."""
        states = self.c.store.records.count_by_state(self.flow.name)
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
        cursor = None if full else parse_ts(self.c.store.cursors.get(flow.name))
        if cursor is None:
            return base, [flow.key], True
        since = cursor - timedelta(seconds=flow.lookback)
        condition = F(flow.cursor_field) >= since
        return filter_text(and_(Raw(base) if base else None, condition)), [flow.cursor_field, flow.key], False

    def _read_pages(self, report: RunReport, *, dry_run: bool, full: bool, progress: Progress | None) -> None:
        flow = self.flow
        signpost = utcnow()
        query, order, key_ordered = self._query(full)
        select = flow.read_fields() if flow.select else None
        newest: datetime | None = None
        for page in self.c.ifs.iter_pages(
            flow.entity_set, select=select, filter=query, orderby=order, key_fields=[flow.key], page_size=flow.page_size
        ):
            if self.stop.is_set():
                report.interrupted = True
                return
            if not page.rows:
                continue
            report.add("fetched", len(page.rows))
            planned = self._plan(page.rows, key_ordered=key_ordered, remap=full)
            if dry_run:
                for p in planned:
                    report.add({"fail": "would_fail"}.get(p.action, f"would_{p.action}"))
                    report.plan.append(
                        PlannedAction(
                            p.key,
                            p.action,
                            p.draft.summary if p.draft else None,
                            describe(p.error) if p.error else None,
                        )
                    )
            else:
                # In key order a page's newest timestamp is no safe cursor (a later page may hold older changes):
                # the cursor moves once, after the whole pass. A crash before that repeats the pass, which costs IFS
                # reads only: unchanged records make no Jira call.
                work, page_newest = self._commit_page(planned, report, signpost, move_cursor=not key_ordered)
                if page_newest is not None and (newest is None or page_newest > newest):
                    newest = page_newest
                self._apply(work, report)
            if progress:
                progress(len(page.rows))
        if key_ordered and newest is not None and flow.detection == "cursor" and not report.interrupted:
            with self.c.store.transaction(report.run_id) as tx:
                self._advance_cursor(tx, min(newest, signpost))

    def _lines(self, rows: Sequence[Mapping[str, Any]], *, key_ordered: bool) -> dict[Any, list[dict[str, Any]]]:
        spec = self.flow.lines
        if spec is None:
            return {}
        if key_ordered and spec.parent_key == self.flow.key and len(rows) > 40:
            # A key-ordered page is a contiguous key range: one ranged read (paged by the server) covers its lines.
            first, last = rows[0].get(self.flow.key), rows[-1].get(self.flow.key)
            grouped: dict[Any, list[dict[str, Any]]] = {}
            in_range = and_(F(spec.parent_key) >= first, F(spec.parent_key) <= last)
            for line in self.c.ifs.iter_records(
                spec.entity_set, select=spec.select or None, filter=in_range, orderby=spec.orderby or None
            ):
                grouped.setdefault(line.get(spec.parent_key), []).append(line)
            return grouped
        parents = [r.get(spec.parent_key) for r in rows if r.get(spec.parent_key) is not None]
        return self.c.ifs.children_by_parent(
            spec.entity_set, spec.parent_key, parents, select=spec.select or None, orderby=spec.orderby or None
        )

    def _context(self) -> MappingContext:
        """Lookups and Jira metadata, built on first need: a run with nothing to map makes none of those calls."""
        if self._ctx is None:
            self._ctx = self.c.mapping_context(self.flow)
            self.c.note_contact("jira")
        return self._ctx

    def _source_hash(self, row: Mapping[str, Any]) -> str:
        """The record's content plus the flow's config: either changing means the issue must be mapped again."""
        return stable_hash(
            {"record": {k: v for k, v in row.items() if not k.startswith("@")}, "config": self._fingerprint}
        )

    def _plan(self, rows: Sequence[Mapping[str, Any]], *, key_ordered: bool, remap: bool = False) -> list[_Planned]:
        """``remap`` (``--full``) maps unchanged records too, so changed lookups (a supplier's tier) reach Jira."""
        flow = self.flow
        keys = [str(r.get(flow.key)) for r in rows]
        with self.c.store.transaction() as tx:
            existing = tx.records.get_many(flow.name, keys)
        planned: dict[str, _Planned] = {}
        to_map: list[tuple[Mapping[str, Any], str, str]] = []
        now = utcnow()
        for row, key in zip(rows, keys, strict=True):
            current, source_hash = existing.get(key), self._source_hash(row)
            if current is not None and _settled(current, source_hash, now, remap=remap):
                # Seen before, unchanged (the cursor's lookback overlap, an idle run): no mapping, no lookups.
                planned[key] = _Planned(key, "skip", row, existing=current, source_hash=source_hash)
            else:
                to_map.append((row, key, source_hash))
        if to_map:
            ctx = self._context()
            lines = self._lines([row for row, _, _ in to_map], key_ordered=key_ordered)
            for row, key, source_hash in to_map:
                planned[key] = self._map_one(row, key, source_hash, existing.get(key), ctx, lines)
        return [planned[key] for key in dict.fromkeys(keys)]

    def _map_one(
        self,
        row: Mapping[str, Any],
        key: str,
        source_hash: str,
        current: RecordRow | None,
        ctx: MappingContext,
        lines: Mapping[Any, list[dict[str, Any]]],
    ) -> _Planned:
        flow = self.flow
        try:
            draft = map_issue(row, flow, ctx, lines=lines.get(row.get(flow.lines.parent_key), []) if flow.lines else ())
        except Exception as exc:  # a bug in a template or a value map fails this record, not the page
            if is_systemic(exc):
                raise
            return _Planned(key, "fail", row, error=exc, existing=current, source_hash=source_hash)
        if current is None or current.jira_id is None:
            action = "create"
        elif current.state == ORPHANED or (current.draft_hash == draft.content_hash and current.state == SYNCED):
            action = "skip"
        else:
            action = "update"
        return _Planned(key, action, row, draft=draft, existing=current, source_hash=source_hash)

    def _commit_page(
        self, planned: Sequence[_Planned], report: RunReport, signpost: datetime, *, move_cursor: bool = True
    ) -> tuple[list[RecordRow], datetime | None]:
        """One transaction: record states, audit events, cursor. Returns the records with Jira work to do and the
        newest source timestamp of the page."""
        flow = self.flow
        newest: datetime | None = None
        work_ids: list[int] = []
        new_rows: list[tuple[str, dict[str, Any]]] = []  # inserted in one statement after the loop
        new_audits: list[tuple[str, AuditEvent]] = []
        with self.c.store.transaction(report.run_id) as tx:
            audits: list[tuple[int, AuditEvent]] = []
            for p in planned:
                source_hash = p.source_hash
                ts = p.record.get(flow.cursor_field) if flow.cursor_field else None
                stamp = parse_ts(ts)
                if stamp is not None and (newest is None or stamp > newest):
                    newest = stamp
                source_ts = str(ts) if ts is not None else None
                rec = p.existing
                if p.action == "fail":
                    assert p.error is not None
                    attempts = rec.attempts if rec is not None else 0
                    decision = decide(p.error, attempts_so_far=attempts, policy=self.policy, now=utcnow())
                    message = f"mapping failed: {decision.message}"
                    values: dict[str, Any] = {
                        "state": decision.state,
                        "source_hash": source_hash,
                        "source_ts": source_ts,
                        "error_class": decision.error_class,
                        "last_error": message,
                        "attempts": decision.attempts,
                        "next_attempt_at": decision.next_attempt_at,
                        "draft": None,  # mapped again from fresh IFS data when retried or replayed
                        "draft_hash": None,
                    }
                    if rec is None:
                        rec = tx.records.insert(flow.name, p.key, **values)
                    elif rec.state != PARKED or rec.last_error != message or rec.source_hash != source_hash:
                        tx.records.update(rec.id, **values)
                    else:
                        continue  # the same bad record seen again: already parked with this reason
                    detail = {
                        **decision.audit_detail(),
                        "field": getattr(p.error, "field", None),
                        "source_hash": source_hash,
                    }
                    audits.append((rec.id, AuditEvent("failed", "error", message, detail)))
                    report.add_failure(decision)
                    continue
                if p.action == "skip":
                    if rec is not None and rec.source_hash != source_hash:
                        tx.records.update(rec.id, source_hash=source_hash, source_ts=source_ts)
                        audits.append((rec.id, AuditEvent("skipped", message="source changed, issue content did not")))
                    report.add("unchanged")
                    continue
                assert p.draft is not None
                draft = p.draft.as_dict()
                state = PENDING_CREATE if p.action == "create" else PENDING_UPDATE
                outcome = "warning" if p.draft.warnings else "ok"
                mapped = AuditEvent("mapped", outcome, "; ".join(p.draft.warnings) or None, {"draft": draft})
                if rec is None:
                    values = {
                        "state": state,
                        "source_hash": source_hash,
                        "source_ts": source_ts,
                        "draft": draft,
                        "draft_hash": p.draft.content_hash,
                    }
                    new_rows.append((p.key, values))
                    new_audits += [(p.key, AuditEvent("fetched", detail={"source_ts": source_ts})), (p.key, mapped)]
                    continue
                elif _awaiting_404_check(rec):
                    # Keep the 404 check's schedule (a record changing every run must not postpone it forever):
                    # store the new content; the check edits with it or recreates from it.
                    tx.records.update(
                        rec.id,
                        source_hash=source_hash,
                        source_ts=source_ts,
                        draft=draft,
                        draft_hash=p.draft.content_hash,
                    )
                    audits.append((rec.id, mapped))
                    continue
                else:
                    tx.records.update(
                        rec.id,
                        state=state,
                        source_hash=source_hash,
                        source_ts=source_ts,
                        draft=draft,
                        draft_hash=p.draft.content_hash,
                        next_attempt_at=None,
                        attempts=0 if rec.state in (PARKED, RETRY) else rec.attempts,
                        error_class=None,
                        last_error=None,
                    )
                audits.append((rec.id, mapped))
                work_ids.append(rec.id)
            new_ids = tx.records.insert_many(flow.name, new_rows)
            work_ids += [new_ids[key] for key, _ in new_rows]
            audits += [(new_ids[key], event) for key, event in new_audits]
            tx.audit.add_many(audits)
            if newest is not None and move_cursor:
                self._advance_cursor(tx, min(newest, signpost))
        return self._rows(work_ids), newest

    def _advance_cursor(self, tx: Tx, candidate: datetime) -> None:
        previous = parse_ts(tx.cursors.get(self.flow.name))
        if previous is None or candidate > previous:
            tx.cursors.set(self.flow.name, format_ts(candidate))

    def _rows(self, ids: Iterable[int]) -> list[RecordRow]:
        return self.c.store.records.by_ids(list(ids))

    # ------------------------------------------------------------------------------------------------ Jira writes

    def _drain_work_queue(self, report: RunReport) -> None:
        """Leftovers from earlier runs: unconfirmed creates, due retries, replays."""
        signpost = utcnow()
        while not self.stop.is_set():
            batch = self.c.store.records.work_queue(self.flow.name, limit=500)
            if not batch:
                return
            before = {(r.id, r.state, r.jira_id, r.attempts, r.draft_hash) for r in batch}
            stale = [r for r in batch if r.draft is None]
            if stale:
                # Replayed records are mapped again from fresh IFS data (the config may have been fixed since).
                self._apply(self._refetch(stale, report, signpost), report)
            self._apply([r for r in batch if r.draft is not None], report)
            after = {
                (r.id, r.state, r.jira_id, r.attempts, r.draft_hash)
                for r in self.c.store.records.work_queue(self.flow.name, limit=500)
            }
            if before <= after:
                return  # nothing moved (all deferred); leave them for a later run

    def _refetch(self, records: Sequence[RecordRow], report: RunReport, signpost: datetime) -> list[RecordRow]:
        flow = self.flow
        keys: list[dict[str, str | int]] = [
            {flow.key: int(r.ifs_key) if flow.key_type == "int" else r.ifs_key} for r in records
        ]
        select = flow.read_fields() if flow.select else None
        found = self.c.ifs.get_many_by_keys(flow.entity_set, keys, select=select)
        rows = [row for row, _etag in found.values()]
        present = {str(row.get(flow.key)) for row in rows}
        missing = [r for r in records if r.ifs_key not in present]
        if missing:
            with self.c.store.transaction(report.run_id) as tx:
                for record in missing:
                    tx.records.update(record.id, state=PARKED, last_error="no longer in IFS (or outside the filter)")
                    tx.audit.add(record.id, AuditEvent("failed", "error", "replay: the record is no longer in IFS"))
                    report.add("parked")
        if not rows:
            return []
        planned = self._plan(rows, key_ordered=False)
        report.add("fetched", len(rows))
        return self._commit_page(planned, report, signpost, move_cursor=False)[0]

    def _apply(self, records: Sequence[RecordRow], report: RunReport) -> None:
        """Jira writes for ``records``. Whatever goes wrong for one record fails that record only; a lookup that
        fails for all of them (user search, fields) fails each of them. Systemic errors, and a refusal of those shared
        lookups, stop the flow."""
        if not records:
            return
        try:
            emails = {str(r.draft.get("assignee_email")) for r in records if r.draft and r.draft.get("assignee_email")}
            if self._fallback_email:
                emails.add(self._fallback_email)
            accounts = self.c.account_ids(emails)
            fields_ctx = self.c.resolve_fields(self.flow)
        except (AuthError, PermanentError):
            raise  # a refused shared lookup is no record's fault (a 403 is no record's permission): stop the flow
        except Exception as exc:
            self._fail_unfinished(records, exc, report)
            return
        creates = [r for r in records if r.jira_id is None]
        updates = [r for r in records if r.jira_id is not None]
        suspects = [r for r in updates if _awaiting_404_check(r)]
        if suspects:
            ids = {r.id for r in suspects}
            try:
                visible, gone = self._confirm_missing(suspects, report)
            except Exception as exc:
                self._fail_unfinished(suspects, exc, report)
                visible, gone = [], []
            updates = [r for r in updates if r.id not in ids] + visible
            creates += gone
        if creates:
            try:
                updates += self._create(creates, accounts, fields_ctx, report)
            except Exception as exc:
                self._fail_unfinished(creates, exc, report)
        for record in updates:
            if self.stop.is_set():
                report.interrupted = True
                return
            try:
                if record.id in self._suspected:
                    self._deleted(record, report)  # 404 earlier in this run (the record was read again): no new edit
                    continue
                self._edited.add(record.id)
                self._update(record, accounts, fields_ctx, report)
            except Exception as exc:
                self._fail_unfinished([record], exc, report)

    def _fail_unfinished(self, records: Sequence[RecordRow], error: Exception, report: RunReport) -> None:
        """Fail those of ``records`` that still wait for this run's work (re-read: some may be done or deferred).

        An intent stays: the failed call may have reached Jira, so the next attempt reconciles first."""
        if is_systemic(error):
            raise error
        now = utcnow()
        current = self.c.store.records.by_ids([r.id for r in records])
        with self.c.store.transaction(report.run_id) as tx:
            for record in current:
                waiting = record.next_attempt_at is None or record.next_attempt_at <= now
                if record.state in (PENDING_CREATE, PENDING_UPDATE, RETRY) and waiting:
                    self._fail(tx, record, error, report=report)

    @property
    def _fallback_email(self) -> str | None:
        spec = self.flow.mapping.assignee
        return spec.fallback_email.strip().lower() if spec and spec.fallback_email else None

    def _payload(
        self, record: RecordRow, accounts: Mapping[str, str | None], fields_ctx: Mapping[str, Any]
    ) -> tuple[dict[str, Any], list[str]]:
        assert record.draft is not None
        draft = draft_from_dict(record.draft)
        warnings: list[str] = []
        account = None
        if draft.assignee_email:
            account = accounts.get(draft.assignee_email)
            if account is None:
                fallback = accounts.get(self._fallback_email) if self._fallback_email else None
                if fallback is not None and draft.assignee_email != self._fallback_email:
                    account = fallback
                    warnings.append(
                        f"no Jira user for {draft.assignee_email}; assigned to the fallback {self._fallback_email}"
                    )
                else:
                    warnings.append(f"no Jira user for {draft.assignee_email}; left unassigned")
        fields = build_issue_fields(draft, field_ids=fields_ctx, account_id=account, to_adf=adf.text_to_adf)
        return fields, warnings

    def _create(
        self,
        records: Sequence[RecordRow],
        accounts: Mapping[str, str | None],
        fields_ctx: Mapping[str, Any],
        report: RunReport,
    ) -> list[RecordRow]:
        """Bulk-create; returns records that reconciliation linked to an existing issue (they need an edit)."""
        store = self.c.store
        fresh = [r for r in records if r.create_attempted_at is None]
        linked: list[RecordRow] = []
        interrupted = [r for r in records if r.create_attempted_at is not None]
        if interrupted:
            linked, confirmed_absent = self._reconcile(interrupted, utcnow(), report)
            fresh += confirmed_absent
        for start in range(0, len(fresh), self.policy.bulk_size * 10):
            if self.stop.is_set():
                report.interrupted = True
                return linked
            chunk = fresh[start : start + self.policy.bulk_size * 10]
            drafts: list[DraftIssue] = []
            ready: list[RecordRow] = []
            warned: list[tuple[int, AuditEvent]] = []
            with store.transaction(report.run_id) as tx:
                for record in chunk:
                    try:
                        fields, warnings = self._payload(record, accounts, fields_ctx)
                    except Exception as exc:
                        self._fail(tx, record, exc, report=report)
                        continue
                    drafts.append(
                        DraftIssue(
                            fields=fields,
                            ref=record.ifs_key,
                            # "draft": what this create carries, so reconciliation can tell whether the issue an
                            # interrupted create made is current (no edit needed) or needs the newer content.
                            properties={
                                IDENTITY_PROPERTY: {
                                    "flow": self.flow.name,
                                    "key": record.ifs_key,
                                    "draft": record.draft_hash,
                                }
                            },
                        )
                    )
                    ready.append(record)
                    if warnings:
                        warned.append((record.id, AuditEvent("mapped", "warning", "; ".join(warnings))))
                # The durable intent: from here on a crash means "may exist in Jira; reconcile first".
                tx.records.set_many([r.id for r in ready], create_attempted_at=utcnow())
                tx.audit.add_many(warned)
            if not drafts:
                continue
            try:
                outcomes = self.c.jira.bulk_create(drafts, concurrency=self.policy.bulk_concurrency)
            except Exception as exc:  # the answer is unknown: intents stay, the next attempt reconciles
                self._fail_unfinished(ready, exc, report)
                continue
            with store.transaction(report.run_id) as tx:
                created: list[tuple[int, dict[str, Any]]] = []
                for record, outcome in zip(ready, outcomes, strict=True):
                    if outcome.issue is not None:
                        created.append((record.id, {"jira_id": outcome.issue.id, "jira_key": outcome.issue.key}))
                        continue
                    failure = outcome.failure
                    assert failure is not None
                    # An uncertain failure may have created the issue: the intent stays, a later attempt reconciles.
                    self._fail(tx, record, create_failure_error(failure), report=report, keep_intent=failure.uncertain)
                done = {
                    "state": SYNCED,
                    "create_attempted_at": None,
                    "attempts": 0,
                    "next_attempt_at": None,
                    "error_class": None,
                    "last_error": None,
                }
                tx.records.update_many([(record_id, {**link, **done}) for record_id, link in created])
                tx.audit.add_many([(record_id, AuditEvent("created", detail=link)) for record_id, link in created])
                report.add("created", len(created))
        return linked

    def _reconcile(
        self, records: Sequence[RecordRow], now: datetime, report: RunReport
    ) -> tuple[list[RecordRow], list[RecordRow]]:
        """Earlier creates may have reached Jira: returns (linked to what they made and needing an edit, confirmed
        absent: create again). An issue made from the record's current draft is linked as ``synced``, no edit.

        The rest are deferred (search may lag) or, when the run is stopped, left untouched with their intent for the
        next run."""
        found = self._find_by_identity(records)
        linked: list[int] = []
        absent: list[RecordRow] = []
        settle = timedelta(seconds=self.policy.reconcile_settle)
        audits: list[tuple[int, AuditEvent]] = []
        synced = 0
        with self.c.store.transaction(report.run_id) as tx:
            for record in records:
                issues = found.get(record.id)
                if issues is None:
                    continue  # not searched before a stop: the intent stays for the next run
                assert record.create_attempted_at is not None
                if issues:
                    issue = issues[0]
                    # Made from the current draft (the hash it carries): the issue is up to date, no edit needed.
                    current = record.draft_hash is not None and _identity(issue).get("draft") == record.draft_hash
                    values: dict[str, Any] = {
                        "jira_id": str(issue["id"]),
                        "jira_key": str(issue["key"]),
                        "state": PENDING_UPDATE,
                        "create_attempted_at": None,
                    }
                    if current:
                        values.update(state=SYNCED, attempts=0, next_attempt_at=None, error_class=None, last_error=None)
                    tx.records.update(record.id, **values)
                    message = "found the issue an interrupted create had made; linked instead of creating again"
                    message += " (its content is current)" if current else " (sending the current content)"
                    if len(issues) > 1:
                        message += f" (also found {', '.join(str(i['key']) for i in issues[1:])}: duplicates to review)"
                    detail = {"jira_id": issue["id"], "jira_key": issue["key"]}
                    audits.append(
                        (record.id, AuditEvent("reconciled", "warning" if len(issues) > 1 else "ok", message, detail))
                    )
                    if not current:
                        linked.append(record.id)
                    synced += current
                elif now - record.create_attempted_at < settle:
                    # Search may lag behind the create: an empty answer right after it proves nothing yet.
                    tx.records.update(record.id, next_attempt_at=record.create_attempted_at + settle)
                    audits.append(
                        (
                            record.id,
                            AuditEvent(
                                "retried", "warning", "create unconfirmed and search may lag; checking again later"
                            ),
                        )
                    )
                    report.add("deferred")
                else:
                    tx.records.update(record.id, create_attempted_at=None)
                    audits.append(
                        (record.id, AuditEvent("reconciled", message="no issue from the interrupted create; creating"))
                    )
                    absent.append(record)
            tx.audit.add_many(audits)
        report.add("reconciled", len(linked) + synced)
        if len(found) < len(records):
            report.interrupted = True
        return self._rows(linked), [replace(r, create_attempted_at=None) for r in absent]

    def _find_by_identity(self, records: Sequence[RecordRow]) -> dict[int, list[dict[str, Any]]]:
        """Jira issues carrying each record's identity label, oldest first: one ``labels in (...)`` search per 50
        records, a few in flight at once. Records not searched (the run was stopped) are absent from the answer.

        An issue counts for a record when its identity property names that record, or is missing (a create that
        failed half-way may have set the label without the property)."""
        by_label = {identity_label(self.flow.name, r.ifs_key): r for r in records}
        labels = list(by_label)
        chunks = [labels[i : i + SEARCH_LABELS] for i in range(0, len(labels), SEARCH_LABELS)]

        def search(chunk: list[str]) -> list[dict[str, Any]] | None:
            if self.stop.is_set():
                return None
            issues = self.c.jira.search(jql.in_("labels", chunk), fields=("labels",), properties=(IDENTITY_PROPERTY,))
            return list(issues)

        workers = max(1, min(self.policy.bulk_concurrency, len(chunks)))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mlc-reconcile") as pool:
            answers = list(pool.map(search, chunks))
        found: dict[int, list[dict[str, Any]]] = {}
        for chunk, issues in zip(chunks, answers, strict=True):
            if issues is None:
                continue
            for label in chunk:
                found[by_label[label].id] = []
            for issue in issues:
                identity = _identity(issue)
                for label in (issue.get("fields") or {}).get("labels") or ():
                    record = by_label.get(label)
                    if record is None or identity.get("key", record.ifs_key) != record.ifs_key:
                        continue
                    if identity.get("flow", self.flow.name) == self.flow.name:
                        found[record.id].append(issue)
        for issues in found.values():
            issues.sort(key=lambda i: int(i["id"]))
        return found

    def _update(
        self, record: RecordRow, accounts: Mapping[str, str | None], fields_ctx: Mapping[str, Any], report: RunReport
    ) -> None:
        assert record.jira_id is not None
        store = self.c.store
        try:
            fields, warnings = self._payload(record, accounts, fields_ctx)
        except Exception as exc:
            with store.transaction(report.run_id) as tx:
                self._fail(tx, record, exc, report=report)
            return
        labels = fields.pop("labels", [])
        fields.pop("project", None)
        fields.pop("issuetype", None)
        try:
            self.c.jira.edit_issue(record.jira_id, fields, update={"labels": [{"add": label} for label in labels]})
        except NotFound:
            self._deleted(record, report)
            return
        except Exception as exc:
            with store.transaction(report.run_id) as tx:
                self._fail(tx, record, exc, report=report)
            return
        with store.transaction(report.run_id) as tx:
            tx.records.update(
                record.id, state=SYNCED, attempts=0, next_attempt_at=None, error_class=None, last_error=None
            )
            tx.audit.add(
                record.id,
                AuditEvent(
                    "updated",
                    "warning" if warnings else "ok",
                    "; ".join(warnings) or None,
                    {"jira_id": record.jira_id, "fields": sorted(fields)},
                ),
            )
        report.add("updated")

    def _deleted(self, record: RecordRow, report: RunReport) -> None:
        """An edit answered 404: the issue was deleted, or the connector can no longer see it (a permission scheme
        change, an archived project, a glitch). One 404 proves neither, so nothing is recreated now: the record waits
        for a later run, after ``deleted_issue_grace``, where :meth:`_confirm_missing` reads again and searches."""
        first = record.id not in self._suspected
        self._not_found.add(record.id)
        self._suspected.add(record.id)
        alert = self._check_not_found_share(report)
        grace = self.policy.deleted_issue_grace
        confirm_after = utcnow() + timedelta(seconds=grace)
        message = f"Jira answered 404 for {record.jira_key}; confirming on a later run (after {grace:g} s)"
        with self.c.store.transaction(report.run_id) as tx:
            tx.records.update(
                record.id, state=RETRY, next_attempt_at=confirm_after, error_class=NOT_FOUND, last_error=message
            )
            detail = {
                "jira_id": record.jira_id,
                "jira_key": record.jira_key,
                "confirm_after": confirm_after.isoformat(),
            }
            if alert:
                detail["alert"] = self._alert_text()
            if first:
                tx.audit.add(record.id, AuditEvent("not_found", "warning", message, detail))
        if first:
            report.add("not_found")

    def _confirm_missing(
        self, records: Sequence[RecordRow], report: RunReport
    ) -> tuple[list[RecordRow], list[RecordRow]]:
        """Records whose issue answered 404 on an earlier run: (still there: edit it, gone: create it again).

        Still there means the identity-label search finds it (relinked when it moved to another id) or a second read
        of its id succeeds. Gone needs both to fail, the deletion policy to be ``recreate`` and the run not to be in a
        404 alert; otherwise the record is left orphaned (policy) or waits for a later run (alert, stop)."""
        records = [r for r in records if r.id not in self._suspected]  # the 404 came in this run: not yet
        if not records:
            return [], []
        found = self._find_by_identity(records)
        relinked: list[tuple[RecordRow, dict[str, Any]]] = []
        visible: list[RecordRow] = []
        gone: list[RecordRow] = []
        for record in records:
            if record.id not in found or self.stop.is_set():
                continue
            issues = found[record.id]
            if issues:
                same = [i for i in issues if str(i["id"]) == record.jira_id]
                relinked.append((record, (same or issues)[0]))
            elif self._not_found_alert:
                gone.append(record)  # no second read: nothing will be recreated in this run anyway
            elif self._read_again(record, report):
                visible.append(record)
            else:
                gone.append(record)
        recreate = self.policy.deleted_issue == "recreate" and not self._not_found_alert
        with self.c.store.transaction(report.run_id) as tx:
            for record, issue in relinked:
                self._relink(tx, record, issue)
            for record in visible:
                tx.records.update(record.id, state=PENDING_UPDATE, next_attempt_at=None, error_class=None)
                tx.audit.add(record.id, AuditEvent("found", message=f"Jira issue {record.jira_key} is readable again"))
            for record in gone:
                self._gone(tx, record, recreate=recreate, report=report)
        ids = [r.id for r, _ in relinked] + [r.id for r in visible]
        return self._rows(ids), self._rows([r.id for r in gone]) if recreate else []

    def _read_again(self, record: RecordRow, report: RunReport) -> bool:
        """The second read of a 404'd issue: True when Jira shows it again."""
        assert record.jira_id is not None
        self._edited.add(record.id)
        try:
            self.c.jira.get_issue(record.jira_id, fields=("labels",))
        except NotFound:
            self._not_found.add(record.id)
            self._check_not_found_share(report)
            return False
        return True

    def _relink(self, tx: Tx, record: RecordRow, issue: Mapping[str, Any]) -> None:
        moved = str(issue["id"]) != record.jira_id
        message = (
            f"issue {record.jira_key} answered 404 but the identity search found {issue['key']}; relinked"
            if moved
            else f"issue {record.jira_key} answered 404 but the identity search still finds it; editing again"
        )
        tx.records.update(
            record.id,
            jira_id=str(issue["id"]),
            jira_key=str(issue["key"]),
            state=PENDING_UPDATE,
            next_attempt_at=None,
            error_class=None,
        )
        tx.audit.add(
            record.id,
            AuditEvent(
                "reconciled", "warning" if moved else "ok", message, {"jira_id": issue["id"], "jira_key": issue["key"]}
            ),
        )

    def _gone(self, tx: Tx, record: RecordRow, *, recreate: bool, report: RunReport) -> None:
        """A confirmed 404 (two reads on two runs, no issue carries its label): act per policy, unless alerted."""
        if self._not_found_alert:
            confirm_after = utcnow() + timedelta(seconds=self.policy.deleted_issue_grace)
            tx.records.update(record.id, next_attempt_at=confirm_after)
            tx.audit.add(
                record.id,
                AuditEvent(
                    "not_found",
                    "warning",
                    f"Jira issue {record.jira_key} still answers 404; not recreated while the flow is alerted",
                    {"alert": self._alert_text(), "confirm_after": confirm_after.isoformat()},
                ),
            )
            report.add("not_found")
        elif recreate:
            tx.records.update(
                record.id,
                jira_id=None,
                jira_key=None,
                state=PENDING_CREATE,
                create_attempted_at=None,
                next_attempt_at=None,
                error_class=None,
                last_error=None,
            )
            tx.audit.add(
                record.id,
                AuditEvent("deleted", "warning", f"Jira issue {record.jira_key} was deleted; recreating (policy)"),
            )
            report.add("recreate")
        else:
            tx.records.update(record.id, state=ORPHANED, next_attempt_at=None)
            tx.audit.add(
                record.id,
                AuditEvent("deleted", "warning", f"Jira issue {record.jira_key} was deleted; left deleted (policy)"),
            )
            report.add("orphaned")

    def _check_not_found_share(self, report: RunReport) -> bool:
        """Raise the run's 404 alert (once) when too many of its issue reads and edits answered 404."""
        policy = self.policy
        missing, edited = len(self._not_found), len(self._edited | self._not_found)
        if not self._not_found_alert and (
            missing >= policy.not_found_alert_min and missing > policy.max_not_found_share * edited
        ):
            self._not_found_alert = True
            report.add("not_found_alert")
            log.warning("flow.not_found_alert", flow=self.flow.name, not_found=missing, edited=edited)
        return self._not_found_alert

    def _alert_text(self) -> str:
        return (
            f"{len(self._not_found)} of {len(self._edited | self._not_found)} Jira issues edited or read in this run "
            f"answered 404 (limit "
            f"{self.policy.max_not_found_share:.0%}); recreating is suspended: check the connector user's permissions "
            "and archived projects"
        )

    def _fail(
        self,
        tx: Tx,
        record: RecordRow,
        error: BaseException,
        *,
        report: RunReport,
        keep_intent: bool = True,
    ) -> FailureDecision:
        """Store the policy's decision for ``record`` and audit it; systemic errors propagate (``decide``).

        ``keep_intent=False`` only when Jira certainly made nothing (it refused the create)."""
        decision = decide(error, attempts_so_far=record.attempts, policy=self.policy, now=utcnow())
        values: dict[str, Any] = {
            "state": decision.state,
            "attempts": decision.attempts,
            "next_attempt_at": decision.next_attempt_at,
            "error_class": decision.error_class,
            "last_error": decision.message,
        }
        if not keep_intent:
            values["create_attempted_at"] = None
        tx.records.update(record.id, **values)
        if decision.deferred:  # back-pressure, not a failure
            event = AuditEvent(
                "retried", "warning", f"rate limited, waiting: {decision.message}", decision.audit_detail()
            )
        else:
            event = AuditEvent("failed", "error", decision.message, decision.audit_detail())
        tx.audit.add(record.id, event)
        report.add_failure(decision)
        log.warning(
            "record.failed", flow=self.flow.name, key=record.ifs_key, state=decision.state, error=decision.message
        )
        return decision


def _identity(issue: Mapping[str, Any]) -> dict[str, Any]:
    """The issue's ``ml-connector`` property as a search returned it ({} when missing or malformed)."""
    value = (issue.get("properties") or {}).get(IDENTITY_PROPERTY)
    return value if isinstance(value, dict) else {}


def _awaiting_404_check(record: RecordRow) -> bool:
    """Its issue answered 404 and that is not yet confirmed or disproved (see ``OutboundSync._deleted``)."""
    return record.state == RETRY and record.error_class == NOT_FOUND and record.jira_id is not None


def _settled(current: RecordRow, source_hash: str, now: datetime, *, remap: bool) -> bool:
    """Nothing to do for an unchanged record: synced (unless ``--full`` remaps), parked (until its source changes or
    it is replayed), waiting for its retry time (the work queue brings it back), or orphaned by policy."""
    if current.state == ORPHANED:
        return True
    if current.source_hash != source_hash:
        return False
    if current.state == PARKED:
        return True
    if current.state == RETRY:
        return current.next_attempt_at is not None and current.next_attempt_at > now
    return not remap and current.state == SYNCED


def draft_from_dict(data: Mapping[str, Any]) -> IssueDraft:
    return IssueDraft(
        project=str(data["project"]),
        issue_type=str(data["issue_type"]),
        summary=str(data["summary"]),
        description=data.get("description"),
        priority=data.get("priority"),
        assignee_email=data.get("assignee_email"),
        custom_fields=dict(data.get("custom_fields") or {}),
        labels=tuple(data.get("labels") or ()),
        identity_label=str(data["identity_label"]),
    )
