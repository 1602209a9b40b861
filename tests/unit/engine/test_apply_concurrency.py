"""Concurrent Jira writes of one page: edits overlap across issues, never on one issue; creates overlap in chunks."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from ml_connector.config.models import SyncPolicy
from ml_connector.errors import AuthError
from ml_connector.jira.models import CreateOutcome, DraftIssue
from ml_connector.store import SYNCED, Store

from .support import FakeJira, Run, mark, record, row


@dataclass
class SlowJira(FakeJira):
    """A fake Jira whose calls take ``seconds``; it records the most calls in flight, overall and per issue."""

    seconds: float = 0.05
    lock: threading.Lock = field(default_factory=threading.Lock)
    in_flight: Counter[str] = field(default_factory=Counter)
    high_water: Counter[str] = field(default_factory=Counter)

    def _enter(self, *keys: str) -> None:
        with self.lock:
            for key in keys:
                self.in_flight[key] += 1
                self.high_water[key] = max(self.high_water[key], self.in_flight[key])

    def _leave(self, *keys: str) -> None:
        with self.lock:
            for key in keys:
                self.in_flight[key] -= 1

    def edit_issue(
        self, id_or_key: str, fields: Mapping[str, Any] | None = None, *, update: Mapping[str, Any] | None = None
    ) -> None:
        self._enter("edits", f"issue:{id_or_key}")
        try:
            time.sleep(self.seconds)
            with self.lock:
                super().edit_issue(id_or_key, fields, update=update)
        finally:
            self._leave("edits", f"issue:{id_or_key}")

    def bulk_create(self, drafts: Sequence[DraftIssue], *, concurrency: int = 1) -> list[CreateOutcome]:
        self._enter("bulk")
        try:
            time.sleep(self.seconds)
            with self.lock:
                return super().bulk_create(drafts, concurrency=concurrency)
        finally:
            self._leave("bulk")


@pytest.mark.parametrize("policy", [SyncPolicy(edit_concurrency=8), SyncPolicy()], ids=["8", "default"])
def test_edits_overlap_across_issues_but_never_on_one_issue(store: Store, policy: SyncPolicy) -> None:
    jira = SlowJira()
    keys = [f"K{i:02}" for i in range(12)]
    Run.start(store, jira).sync([row(k) for k in keys])
    # Two records linked to one issue (a merge gone wrong): their edits must still go one after the other.
    shared = record(store, "K00").jira_id
    mark(store, "K01", jira_id=shared)
    run = Run.start(store, jira, policy)
    run.sync([row(k, "v2") for k in keys])

    assert run.counts["updated"] == 12
    assert jira.high_water["edits"] > 1  # concurrent across issues
    assert max(n for key, n in jira.high_water.items() if key.startswith("issue:")) == 1
    assert [c for c in jira.calls if c == ("edit_issue", shared)] == [("edit_issue", shared)] * 2
    assert all(record(store, k).state == SYNCED for k in keys)


def test_edits_go_one_at_a_time_with_edit_concurrency_one(store: Store) -> None:
    jira = SlowJira(seconds=0.01)
    keys = [f"K{i:02}" for i in range(5)]
    Run.start(store, jira).sync([row(k) for k in keys])
    Run.start(store, jira, SyncPolicy(edit_concurrency=1)).sync([row(k, "v2") for k in keys])
    assert jira.high_water["edits"] == 1


def test_creates_keep_at_most_bulk_concurrency_calls_in_flight(store: Store) -> None:
    jira = SlowJira()
    run = Run.start(store, jira, SyncPolicy(bulk_size=2, bulk_concurrency=4))
    run.sync([row(f"K{i:02}") for i in range(40)])  # 20 calls, in chunks of 2 calls, two chunks at once
    assert run.counts["created"] == 40
    assert 1 < jira.high_water["bulk"] <= 4
    assert len({r.ifs_key for r in store.records.list(limit=100) if r.jira_id}) == 40


def test_a_systemic_error_in_one_edit_stops_the_others_from_starting(store: Store) -> None:
    jira = SlowJira(seconds=0.01)
    keys = [f"K{i:02}" for i in range(30)]
    Run.start(store, jira).sync([row(k) for k in keys])
    jira.down = AuthError("token revoked", system="jira", status=401)
    run = Run.start(store, jira, SyncPolicy(edit_concurrency=2))
    try:
        run.sync([row(k, "v2") for k in keys])
        raised = False
    except AuthError:
        raised = True
    assert raised
    edits = [c for c in jira.calls if c[0] == "edit_issue"]
    assert 1 <= len(edits) < len(keys)  # the flow stopped: no edit started after the first refusal came back


def test_bulk_concurrency_one_sends_one_call_at_a_time(store: Store) -> None:
    jira = SlowJira(seconds=0.01)
    run = Run.start(store, jira, SyncPolicy(bulk_size=2, bulk_concurrency=1))
    run.sync([row(f"K{i:02}") for i in range(10)])
    assert run.counts["created"] == 10
    assert jira.high_water["bulk"] == 1
