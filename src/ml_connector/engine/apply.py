"""The Jira writes of an outbound run: bulk creates (after reconciling interrupted ones) and edits.

Whatever goes wrong for one record fails that record only (``commit.record_failure``); systemic errors stop the flow.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from ml_connector.config.models import FlowConfig
from ml_connector.engine.callshares import CallShares
from ml_connector.engine.commit import SYNCED_CLEAN, RunScope, fail_unfinished, record_failure
from ml_connector.engine.failures import create_failure_error
from ml_connector.engine.groupcommit import GroupCommit
from ml_connector.engine.plan import awaiting_404_check
from ml_connector.engine.ports import JiraWiring, RecordTx
from ml_connector.engine.progress import Phase, PhaseCounter
from ml_connector.engine.reconcile import Reconciler
from ml_connector.errors import AuthError, NotFound, PermanentError
from ml_connector.http.ratelimit import submit_in_scope
from ml_connector.jira import adf
from ml_connector.jira.models import CreatedIssue, CreateOutcome, DraftIssue
from ml_connector.mapping import IDENTITY_PROPERTY, IssueDraft, build_issue_fields
from ml_connector.reasons import USER_NOT_FOUND, Reason
from ml_connector.store import AuditEvent, RecordRow, utcnow

T = TypeVar("T")

Accounts = Mapping[str, str | None]
Register = Callable[[Sequence[RecordRow]], deque[RecordRow]]  # a page's creates, handed to ``CallShares``
# One create thread more per this many calls in flight: it builds and stores the next call's payloads and intents
# (or the last call's outcomes) while the others wait for Jira, so no call's place waits on the store.
STORING_SHARE = 8


class Applier:
    """Jira writes for one run of one flow."""

    def __init__(
        self,
        wiring: JiraWiring,
        scope: RunScope,
        reconciler: Reconciler,
        stop: threading.Event,
        *,
        counter: PhaseCounter | None = None,
    ) -> None:
        self.wiring = wiring
        self.counter = counter or PhaseCounter()
        self.scope = scope
        self.flow = scope.flow
        self.policy = scope.policy
        self.reconciler = reconciler
        self.stop = stop
        self.fallback_email = fallback_email_of(self.flow)
        self._issue_locks: dict[str, threading.Lock] = {}
        self._locks_lock = threading.Lock()
        self._creates: ThreadPoolExecutor | None = None  # see _create_pool
        self._sending = Turns(self.policy.bulk_concurrency)  # bulk-create calls in flight
        self._shares = CallShares(self.policy.bulk_size, self.policy.bulk_concurrency)  # how many issues a call takes
        self._metadata_read_at: datetime | None = None
        # The store writes of the create calls, those handed over meanwhile in one transaction (see _write_calls).
        self._writes = GroupCommit(wiring.store, lambda: scope.report.run_id, self._write_calls)

    def _fail_unfinished(self, records: Sequence[RecordRow], error: Exception) -> None:
        fail_unfinished(self.wiring.store, records, error, self.scope)

    def apply(self, records: Sequence[RecordRow]) -> None:
        """Jira writes for ``records``. Whatever goes wrong for one record fails that record only; a lookup that
        fails for all of them (user search, fields) fails each of them. Systemic errors, and a refusal of those shared
        lookups, stop the flow."""
        if not records:
            return
        with self._shares.page() as register:
            self._apply(records, register)

    def read_all(self) -> None:
        """The pass's last page has been handed over (the last calls of the run then share the issues left)."""
        self._shares.read_all()

    def _apply(self, records: Sequence[RecordRow], register: Register) -> None:
        try:
            emails = {str(r.draft.get("assignee_email")) for r in records if r.draft and r.draft.get("assignee_email")}
            if self.fallback_email:
                emails.add(self.fallback_email)
            accounts = self.wiring.account_ids(emails)
            fields_ctx = self.wiring.resolve_fields(self.flow)
            # What this work's payloads are built from was read then: a refusal over a field may mean it is stale.
            self._metadata_read_at = self.wiring.jira_metadata_read_at()
        except (AuthError, PermanentError):
            raise  # a refused shared lookup is no record's fault (a 403 is no record's permission): stop the flow
        except Exception as exc:
            self._fail_unfinished(records, exc)
            return
        creates, updates = self._sort_suspects(records)
        self.counter.expect(Phase.CREATE, len(creates))
        if creates:
            try:
                updates += self._create(creates, accounts, fields_ctx, register)
            except Exception as exc:
                self._fail_unfinished(creates, exc)
        self.counter.settle(Phase.CREATE)  # linked by reconciliation or failed: handled either way
        self.counter.expect(Phase.EDIT, len(updates))
        self._update_all(updates, accounts, fields_ctx)

    def _sort_suspects(self, records: Sequence[RecordRow]) -> tuple[list[RecordRow], list[RecordRow]]:
        """(to create, to edit): records awaiting a 404 check are confirmed first and land in one or the other."""
        creates = [r for r in records if r.jira_id is None]
        updates = [r for r in records if r.jira_id is not None]
        suspects = [r for r in updates if awaiting_404_check(r)]
        if not suspects:
            return creates, updates
        ids = {r.id for r in suspects}
        try:
            visible, gone = self.reconciler.confirm_missing(suspects)
        except Exception as exc:
            self._fail_unfinished(suspects, exc)
            visible, gone = [], []
        return creates + gone, [r for r in updates if r.id not in ids] + visible

    def _update_all(self, records: Sequence[RecordRow], accounts: Accounts, fields_ctx: Mapping[str, Any]) -> None:
        """Edits run concurrently across issues; the edits of one issue run one after the other (``_issue_lock``)."""
        by_issue: dict[str, list[RecordRow]] = {}
        for record in records:
            by_issue.setdefault(str(record.jira_id), []).append(record)
        self._in_parallel(
            lambda group: self._update_issue(group, accounts, fields_ctx),
            list(by_issue.values()),
            workers=self.policy.edit_concurrency,
        )

    def _update_issue(self, records: Sequence[RecordRow], accounts: Accounts, fields_ctx: Mapping[str, Any]) -> None:
        watch = self.reconciler.watch
        with self._issue_lock(str(records[0].jira_id)):
            for record in records:
                if self._stopping():
                    return
                try:
                    if record.id in watch.suspected:
                        self.reconciler.deleted(record)  # 404 earlier in this run (read again): no new edit
                        continue
                    watch.edited.add(record.id)
                    self._update(record, accounts, fields_ctx)
                except Exception as exc:
                    self._fail_unfinished([record], exc)
                finally:
                    self.counter.done(Phase.EDIT)

    def _issue_lock(self, issue_id: str) -> threading.Lock:
        """One lock per issue for the life of this applier: never two writes to one issue at once, even when pages
        overlap in the pipeline."""
        with self._locks_lock:
            return self._issue_locks.setdefault(issue_id, threading.Lock())

    def _in_parallel(
        self,
        work: Callable[[T], None],
        items: Sequence[T],
        *,
        workers: int = 1,
        pool: ThreadPoolExecutor | None = None,
    ) -> None:
        """``work`` on each item, ``workers`` at a time, or in ``pool`` when given (each in a copy of this context, so
        the run's rate-limit budget applies there too). The first error stops new items from starting and is raised
        when all are done; a stop request leaves the rest for a later run."""
        if not items:
            return
        failed = threading.Event()

        def one(item: T) -> None:
            if self._stopping():
                return
            if not failed.is_set():
                try:
                    work(item)
                except BaseException:
                    failed.set()
                    raise

        if pool is None and min(workers, len(items)) <= 1:
            for item in items:
                one(item)
            return
        if pool is None:
            with ThreadPoolExecutor(max_workers=min(workers, len(items)), thread_name_prefix="mlc-apply") as own:
                futures = [submit_in_scope(own, one, item) for item in items]
        else:
            futures = [submit_in_scope(pool, one, item) for item in items]
            wait(futures)
        errors = [error for future in futures if (error := future.exception()) is not None]
        if errors:
            raise errors[0]

    def _payload(
        self, record: RecordRow, accounts: Accounts, fields_ctx: Mapping[str, Any]
    ) -> tuple[dict[str, Any], list[str]]:
        assert record.draft is not None
        draft = draft_from_dict(record.draft)
        if draft.assignee_email and accounts.get(draft.assignee_email) is None:
            self.scope.report.note_warnings([Reason.of(USER_NOT_FOUND, draft.assignee_email)])
        return issue_payload(draft, accounts, fields_ctx, self.fallback_email)

    # ------------------------------------------------------------------------------------ creates

    def _create(
        self,
        records: Sequence[RecordRow],
        accounts: Accounts,
        fields_ctx: Mapping[str, Any],
        register: Register,
    ) -> list[RecordRow]:
        """Bulk-create; returns records that reconciliation linked to an existing issue (they need an edit)."""
        fresh = [r for r in records if r.create_attempted_at is None]
        linked: list[RecordRow] = []
        interrupted = [r for r in records if r.create_attempted_at is not None]
        if interrupted:
            linked, confirmed_absent = self.reconciler.interrupted_creates(interrupted, utcnow())
            fresh += confirmed_absent
        waiting = register(fresh)
        # A task per call of the smallest size a call may take (``CallShares``): the tasks left once the page's
        # records are all taken end at once, and shrinking calls never run one after another on fewer threads.
        tasks = range(math.ceil(len(fresh) / self._shares.floor))
        self._in_parallel(lambda _: self._create_calls(waiting, accounts, fields_ctx), tasks, pool=self._create_pool())
        return linked

    def _create_calls(self, waiting: deque[RecordRow], accounts: Accounts, fields_ctx: Mapping[str, Any]) -> None:
        """Bulk-create calls of the page's waiting records, each taking its share (``CallShares``) when its turn
        comes, until none is left or the run stops."""
        while not self._stopping() and (call := self._shares.take(waiting)):
            self._create_call(call, accounts, fields_ctx)

    def _stopping(self) -> bool:
        """Whether the run is stopping (then it is reported interrupted): work not started now is left for later."""
        if self.stop.is_set():
            self.scope.report.interrupted = True
            return True
        return False

    def _create_pool(self) -> ThreadPoolExecutor:
        """The run's threads for bulk-create calls, shared by the pages in the pipeline: its queue is first in, first
        out, so a page's calls go out right behind the page before it and the calls in flight stay at
        ``sync.bulk_concurrency`` across page boundaries. A few threads more than calls may be in flight
        (``_sending`` holds them to it) store the intents of the next calls and the outcomes of the last ones
        meanwhile, so those store writes take no call's place."""
        with self._locks_lock:
            if self._creates is None:
                workers = self.policy.bulk_concurrency + max(1, self.policy.bulk_concurrency // STORING_SHARE)
                self._creates = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mlc-create")
            return self._creates

    def close(self) -> None:
        """Let the create threads go (the calls of every page have been waited for by then)."""
        with self._locks_lock:
            pool, self._creates = self._creates, None
        if pool is not None:
            pool.shutdown(wait=True)

    def _create_call(self, records: Sequence[RecordRow], accounts: Accounts, fields_ctx: Mapping[str, Any]) -> None:
        """One bulk-create call: its records' intents stored just before it goes out, its outcomes right after (each
        in the transaction of the writes other calls hand over meanwhile: ``GroupCommit``)."""
        ready, drafts = self._mark_intents(records, accounts, fields_ctx)
        if not drafts:
            self.counter.done(Phase.CREATE, len(records))
            return
        try:
            with self._sending.turn():
                outcomes = self.wiring.jira.bulk_create(drafts)
        except Exception as exc:  # the answer is unknown: intents stay, the next attempt reconciles
            self._fail_unfinished(ready, exc)
            return
        finally:
            self.counter.done(Phase.CREATE, len(records))
        self._store_outcomes(ready, outcomes)

    def _mark_intents(
        self, records: Sequence[RecordRow], accounts: Accounts, fields_ctx: Mapping[str, Any]
    ) -> tuple[list[RecordRow], list[DraftIssue]]:
        """Build each record's create payload, then store the intents to create (and the payloads' failures)."""
        drafts: list[DraftIssue] = []
        ready: list[RecordRow] = []
        writes = CallWrites()
        for record in records:
            try:
                fields, warnings = self._payload(record, accounts, fields_ctx)
            except Exception as exc:
                writes.failures.append((record, exc, True))
                continue
            drafts.append(self._draft_issue(record, fields))
            ready.append(record)
            if warnings:
                writes.audits.append((record.id, AuditEvent("mapped", "warning", "; ".join(warnings))))
        # The durable intent: from here on a crash means "may exist in Jira; reconcile first".
        writes.intents = [r.id for r in ready]
        self._writes.write(writes)
        return ready, drafts

    def _draft_issue(self, record: RecordRow, fields: dict[str, Any]) -> DraftIssue:
        # "draft": what this create carries, so reconciliation can tell whether the issue an interrupted create made
        # is current (no edit needed) or needs the newer content.
        identity = {"flow": self.flow.name, "key": record.ifs_key, "draft": record.draft_hash}
        return DraftIssue(fields=fields, ref=record.ifs_key, properties={IDENTITY_PROPERTY: identity})

    def _store_outcomes(self, ready: Sequence[RecordRow], outcomes: Sequence[CreateOutcome]) -> None:
        writes = CallWrites()
        for record, outcome in zip(ready, outcomes, strict=True):
            if outcome.issue is not None:
                link = _link(outcome.issue)
                writes.created.append((record.id, link))
                writes.audits.append((record.id, AuditEvent("created", detail=link)))
                continue
            failure = outcome.failure
            assert failure is not None
            # An uncertain failure may have created the issue: the intent stays, a later attempt reconciles.
            writes.failures.append((record, self._judged(create_failure_error(failure)), failure.uncertain))
        self._writes.write(writes)
        self.scope.report.add("created", len(writes.created))  # once committed

    def _write_calls(self, tx: RecordTx, group: Sequence[CallWrites]) -> None:
        """The writes of the calls in one group: a statement or two per kind for them all. Calls carry disjoint
        records, and a call's outcomes are never grouped with its intents (they are committed before it goes out)."""
        for writes in group:
            for record, error, keep_intent in writes.failures:
                record_failure(tx, record, error, self.scope, keep_intent=keep_intent)
        tx.records.set_many([i for writes in group for i in writes.intents], create_attempted_at=utcnow())
        done = {**SYNCED_CLEAN, "create_attempted_at": None}
        tx.records.update_many([(i, {**link, **done}) for writes in group for i, link in writes.created])
        tx.audit.add_many([event for writes in group for event in writes.audits])

    # ------------------------------------------------------------------------------------ edits

    def _fail_one(self, record: RecordRow, error: Exception) -> None:
        with self.wiring.store.transaction(self.scope.report.run_id) as tx:
            record_failure(tx, record, error, self.scope)

    def _judged(self, error: Exception) -> Exception:
        """A Jira refusal as the record's failure: a retry instead when the metadata it was built from is stale."""
        since = self.scope.report.started
        return self.wiring.stale_metadata(error, read_at=self._metadata_read_at, since=since) or error

    def _update(self, record: RecordRow, accounts: Accounts, fields_ctx: Mapping[str, Any]) -> None:
        assert record.jira_id is not None
        try:
            fields, warnings = self._payload(record, accounts, fields_ctx)
        except Exception as exc:
            self._fail_one(record, exc)
            return
        fields, labels = edit_payload(fields)
        try:
            self.wiring.jira.edit_issue(record.jira_id, fields, update={"labels": [{"add": label} for label in labels]})
        except NotFound:
            self.reconciler.deleted(record)
            return
        except Exception as exc:
            self._fail_one(record, self._judged(exc))
            return
        with self.wiring.store.transaction(self.scope.report.run_id) as tx:
            tx.records.update(record.id, **SYNCED_CLEAN)
            detail = {"jira_id": record.jira_id, "fields": sorted(fields)}
            message = "; ".join(warnings) or None
            tx.audit.add(record.id, AuditEvent("updated", "warning" if message else "ok", message, detail))
        self.scope.report.add("updated")


@dataclass
class CallWrites:
    """What one bulk-create call stores before it goes out (intents) or after (outcomes)."""

    intents: list[int] = field(default_factory=list)  # records about to go out
    created: list[tuple[int, dict[str, Any]]] = field(default_factory=list)  # record id, its issue
    failures: list[tuple[RecordRow, Exception, bool]] = field(default_factory=list)  # record, error, keep_intent
    audits: list[tuple[int, AuditEvent]] = field(default_factory=list)


class Turns:
    """At most ``slots`` holders at once, let in in the order they asked. (``threading.Semaphore`` lets a thread that
    releases and asks again overtake those waiting: a later page's call could go out before an earlier page's.)"""

    def __init__(self, slots: int) -> None:
        self._free = slots
        self._waiting: deque[threading.Event] = deque()
        self._lock = threading.Lock()

    @contextmanager
    def turn(self) -> Iterator[None]:
        with self._lock:
            mine = None if self._free and not self._waiting else threading.Event()
            if mine is None:
                self._free -= 1
            else:
                self._waiting.append(mine)
        if mine is not None:
            mine.wait()  # the slot is handed over by the holder that leaves (see below)
        try:
            yield
        finally:
            with self._lock:
                if self._waiting:
                    self._waiting.popleft().set()
                else:
                    self._free += 1


def fallback_email_of(flow: FlowConfig) -> str | None:
    """The flow's fallback assignee, as user lookups key it."""
    spec = flow.mapping.assignee
    return spec.fallback_email.strip().lower() if spec and spec.fallback_email else None


def issue_payload(
    draft: IssueDraft, accounts: Accounts, fields_ctx: Mapping[str, Any], fallback_email: str | None
) -> tuple[dict[str, Any], list[str]]:
    """The Jira ``fields`` of a create (or, through :func:`edit_payload`, an edit) and the warnings to audit: an
    assignee without a Jira user goes to the fallback user when that one exists, else stays unassigned."""
    warnings: list[str] = []
    account = None
    if draft.assignee_email:
        account = accounts.get(draft.assignee_email)
        if account is None:
            fallback_account = accounts.get(fallback_email) if fallback_email else None
            if fallback_account is not None and draft.assignee_email != fallback_email:
                account = fallback_account
                warnings.append(f"no Jira user for {draft.assignee_email}; assigned to the fallback {fallback_email}")
            else:
                warnings.append(f"no Jira user for {draft.assignee_email}; left unassigned")
    fields = build_issue_fields(draft, field_ids=fields_ctx, account_id=account, to_adf=adf.text_to_adf)
    return fields, warnings


def edit_payload(fields: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """(fields, labels to add) of an edit: an edit never moves an issue to another project or type, and adds labels
    (people may have added their own) instead of replacing them."""
    edit = {k: v for k, v in fields.items() if k not in {"project", "issuetype", "labels"}}
    return edit, list(fields.get("labels", []))


def _link(issue: CreatedIssue) -> dict[str, Any]:
    return {"jira_id": issue.id, "jira_key": issue.key}


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
