"""Helpers for the engine's unit tests: a flow, a mapping stand-in, a page driver and a fake Jira (no HTTP)."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ml_connector.config.models import FlowConfig, SyncPolicy
from ml_connector.engine.apply import Applier
from ml_connector.engine.commit import RunScope, commit_page
from ml_connector.engine.plan import PageRules, Plan, plan_page
from ml_connector.engine.reconcile import NotFoundWatch, Reconciler
from ml_connector.engine.report import RunReport
from ml_connector.errors import NotFound, StaleMetadata, TransientError
from ml_connector.jira.models import CreatedIssue, CreateOutcome, DraftIssue, JiraFailure
from ml_connector.mapping import FieldTarget, IssueDraft, MappingContext, identity_label
from ml_connector.store import SYNCED, RecordRow, Store, utcnow

FLOW = FlowConfig.model_validate(
    {
        "name": "purchase_orders",
        "preset": "purchase_orders",
        "mapping": {"project": {"source": "ProjectId", "default": "PROC"}, "issue_type": "Task", "summary": "PO"},
    }
)
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SIGNPOST = NOW - timedelta(seconds=1)
T1, T2 = "2026-03-01T10:00:00Z", "2026-03-01T11:00:00Z"


def draft_of(row: Mapping[str, Any]) -> IssueDraft:
    """A stand-in for ``map_issue``: the summary carries the row's text; the identity label is the real one."""
    if row.get("Text") == "template bug":
        raise TypeError("template bug")
    label = identity_label(FLOW.name, str(row["OrderNo"]))
    custom = {"Cost Center": "CC-1"} if row.get("Text") == "unknown field" else {}  # FakeWiring knows no fields
    summary = f"PO {row['OrderNo']}: {row.get('Text')}"
    return IssueDraft("PROC", "Task", summary, None, None, None, custom, (label,), label)


def row(key: str, text: str = "v1", changed: str = T1) -> dict[str, Any]:
    return {"OrderNo": key, "Text": text, "Cf_Changed_At": changed}


class Page:
    """One outbound page: plan from the store's records, then commit, as the orchestrator does."""

    def __init__(self, store: Store, policy: SyncPolicy | None = None) -> None:
        self.store = store
        self.report = RunReport(FLOW.name, "outbound")
        self.report.run_id = store.runs.start(FLOW.name, "outbound")
        self.scope = RunScope(FLOW, policy or SyncPolicy(), self.report)

    def plan(self, rows: Sequence[Mapping[str, Any]], *, remap: bool = False) -> list[Plan]:
        with self.store.transaction() as tx:
            existing = tx.records.get_many(FLOW.name, [str(r["OrderNo"]) for r in rows])
        return plan_page(rows, existing, draft_of, PageRules(FLOW.key, "config", NOW, remap=remap))

    def commit_records(self, rows: Sequence[Mapping[str, Any]], *, move_cursor: bool = True) -> list[RecordRow]:
        """Commit a page; the records left with Jira work."""
        work, _newest = commit_page(self.store, self.scope, self.plan(rows), SIGNPOST, move_cursor=move_cursor)
        return work

    def commit(self, rows: Sequence[Mapping[str, Any]], *, move_cursor: bool = True) -> list[str]:
        return [r.ifs_key for r in self.commit_records(rows, move_cursor=move_cursor)]


def record(store: Store, key: str) -> RecordRow:
    found = store.records.get(FLOW.name, key)
    assert found is not None
    return found


def events(store: Store, key: str) -> list[str]:
    return [a.event for a in store.audit.trail(record(store, key).id)]


def mark(store: Store, key: str, **values: Any) -> None:
    with store.transaction() as tx:
        tx.records.update(record(store, key).id, **values)


@dataclass
class FakeJira:
    """Issues in a dict; implements the ``JiraSink`` protocol. ``down`` makes every call fail with that error;
    ``lose_answers`` makes bulk creates create, then fail as if the answer was lost."""

    issues: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)
    down: Exception | None = None
    lose_answers: bool = False
    refuse_creates: JiraFailure | None = None  # every element of a bulk create is refused with this
    created: int = 0

    def _call(self, name: str, target: str = "") -> None:
        self.calls.append((name, target))
        if self.down is not None:
            raise self.down

    def add(self, draft: DraftIssue) -> CreatedIssue:
        self.created += 1
        issue_id, key = str(10000 + self.created), f"PROC-{self.created}"
        labels = list(draft.fields.get("labels", []))
        self.issues[issue_id] = {"id": issue_id, "key": key, "fields": {**draft.fields, "labels": labels}}
        self.issues[issue_id]["properties"] = dict(draft.properties or {})
        return CreatedIssue(issue_id, key)

    def bulk_create(self, drafts: Sequence[DraftIssue], *, concurrency: int = 1) -> list[CreateOutcome]:
        self._call("bulk_create", ",".join(d.ref or "" for d in drafts))
        if self.refuse_creates is not None:
            return [CreateOutcome(i, draft, failure=self.refuse_creates) for i, draft in enumerate(drafts)]
        outcomes = [CreateOutcome(i, draft, issue=self.add(draft)) for i, draft in enumerate(drafts)]
        if self.lose_answers:
            raise TransientError("connection reset after the request was sent", system="jira")
        return outcomes

    def edit_issue(
        self, id_or_key: str, fields: Mapping[str, Any] | None = None, *, update: Mapping[str, Any] | None = None
    ) -> None:
        self._call("edit_issue", id_or_key)
        self.get_issue(id_or_key)["fields"].update(fields or {})

    def get_issue(self, id_or_key: str, *, fields: Sequence[str] | None = None) -> dict[str, Any]:
        if id_or_key not in self.issues:
            raise NotFound(f"issue {id_or_key} does not exist", system="jira", status=404)
        return self.issues[id_or_key]

    def search(
        self, jql: str, *, fields: Sequence[str] = (), properties: Sequence[str] = ()
    ) -> Iterator[dict[str, Any]]:
        self._call("search", jql)
        wanted = set(re.findall(r'"([^"]+)"', jql))
        return iter([i for i in self.issues.values() if wanted & set(i["fields"]["labels"])])


@dataclass
class FakeWiring:
    """The ``JiraWiring`` protocol: a real store, a fake Jira, lookups that find no users and no custom fields."""

    store: Store
    jira: FakeJira
    metadata_read_at: datetime | None = None  # no metadata held: a refusal is the record's own
    metadata_stale: bool = False
    judged: list[tuple[BaseException, datetime | None, datetime]] = field(default_factory=list)

    def account_ids(self, emails: set[str]) -> dict[str, str | None]:
        return dict.fromkeys(emails)

    def resolve_fields(self, flow: FlowConfig) -> dict[str, FieldTarget]:
        return {}

    def mapping_context(self, flow: FlowConfig) -> MappingContext:
        raise AssertionError("the apply step maps nothing")

    def jira_metadata_read_at(self) -> datetime | None:
        return self.metadata_read_at

    def stale_metadata(
        self, error: BaseException, *, read_at: datetime | None, since: datetime
    ) -> StaleMetadata | None:
        """``metadata_stale``: every refusal with metadata read before the run is blamed on it (the rule itself is
        the connector's, tested with it)."""
        self.judged.append((error, read_at, since))
        if self.metadata_stale and read_at is not None and read_at < since:
            return StaleMetadata(f"{error} (metadata read before the run)", system="jira")
        return None


@dataclass
class Run:
    """One run's page, applier and 404 watch."""

    page: Page
    applier: Applier
    watch: NotFoundWatch

    @classmethod
    def start(
        cls, store: Store, jira: FakeJira, policy: SyncPolicy | None = None, wiring: FakeWiring | None = None
    ) -> Run:
        page, watch, stop = Page(store, policy), NotFoundWatch(), threading.Event()
        wiring = wiring or FakeWiring(store, jira)
        reconciler = Reconciler(wiring, page.scope, watch, stop)
        return cls(page, Applier(wiring, page.scope, reconciler, stop), watch)

    def sync(self, rows: Sequence[dict[str, object]]) -> None:
        self.applier.apply(self.page.commit_records(rows))

    def drain(self, store: Store) -> None:
        """The work queue's due records, as a run starts with them."""
        self.applier.apply(store.records.work_queue(self.page.scope.flow.name))

    @property
    def counts(self) -> dict[str, int]:
        return dict(self.page.report.counts)


def due(store: Store, key: str) -> None:
    mark(store, key, next_attempt_at=utcnow() - timedelta(seconds=1))


def linked(store: Store, key: str) -> RecordRow:
    found = record(store, key)
    assert found.state == SYNCED and found.jira_id is not None and found.create_attempted_at is None
    return found
