"""Concurrent Jira writes: edits overlap across issues, never on one issue; creates overlap one call per thread, each
call with its own intents, in one pool the pipelined pages share."""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from ml_connector.config.models import SyncPolicy
from ml_connector.engine.apply import Turns
from ml_connector.errors import AuthError
from ml_connector.jira.models import CreateOutcome, DraftIssue, JiraFailure
from ml_connector.store import PARKED, RETRY, SYNCED, Store
from ml_connector.store.records import RecordRepository

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
    run.sync([row(f"K{i:02}") for i in range(40)])  # 20 calls, at most 4 at once
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


def test_each_bulk_call_goes_out_after_its_intents_are_committed_in_a_write_of_whole_calls(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every call's records carry a committed intent when it goes out (another connection sees them), and the
    intents are written a call or a few calls at a time (those handed over together), never a call split across
    writes and never all calls' intents first (the pipe would wait for them)."""
    intent_writes: list[frozenset[str]] = []
    keys_of: dict[int, str] = {}
    set_many = RecordRepository.set_many

    def spying_set_many(repo: RecordRepository, record_ids: Sequence[int], **values: Any) -> None:
        set_many(repo, record_ids, **values)
        if values.get("create_attempted_at") is not None and record_ids:
            with lock:
                intent_writes.append(frozenset(keys_of[i] for i in record_ids))

    @dataclass
    class SpyJira(SlowJira):
        uncommitted: list[str] = field(default_factory=list)
        calls_before_intents_done: int = 0

        def bulk_create(self, drafts: Sequence[DraftIssue], *, concurrency: int = 1) -> list[CreateOutcome]:
            keys = {d.ref or "" for d in drafts}
            with lock:
                if len(frozenset().union(*intent_writes)) < len(keys_of):
                    self.calls_before_intents_done += 1
            self.uncommitted += [
                r.ifs_key for r in store.records.list(limit=100) if r.ifs_key in keys and r.create_attempted_at is None
            ]
            return super().bulk_create(drafts, concurrency=concurrency)

    lock = threading.Lock()
    jira = SpyJira(seconds=0.02)
    run = Run.start(store, jira, SyncPolicy(bulk_size=2, bulk_concurrency=4))
    work = run.page.commit_records([row(f"K{i:02}") for i in range(16)])
    keys_of.update({r.id: r.ifs_key for r in work})
    monkeypatch.setattr(RecordRepository, "set_many", spying_set_many)
    run.applier.apply(work)

    calls = [frozenset(keys.split(",")) for name, keys in jira.calls if name == "bulk_create"]
    assert len(calls) == 8 and all(len(keys) == 2 for keys in calls)
    assert jira.uncommitted == []  # no record went out before its intent was committed
    assert all(call <= written or call.isdisjoint(written) for call in calls for written in intent_writes)
    assert sorted(k for written in intent_writes for k in written) == sorted(keys_of.values())  # each once
    assert jira.calls_before_intents_done > 0  # calls went out while later calls' intents were still to be written
    assert run.counts["created"] == 16


def test_pipelined_pages_share_bulk_concurrency_and_send_their_calls_in_page_order(store: Store) -> None:
    """Two pages applied at once (as the pipeline does) keep to one bulk_concurrency between them, and the later
    page's calls queue behind the earlier page's instead of competing with them."""
    jira = SlowJira(seconds=0.1)  # a call outlasts the store writes of the next one's intents
    run = Run.start(store, jira, SyncPolicy(bulk_size=1, bulk_concurrency=1))
    first = run.page.commit_records([row(f"A{i}") for i in range(4)])
    second = run.page.commit_records([row(f"B{i}") for i in range(4)])
    earlier = threading.Thread(target=run.applier.apply, args=(first,))
    earlier.start()
    deadline = time.monotonic() + 5
    while not jira.calls and time.monotonic() < deadline:
        time.sleep(0.005)  # the earlier page's first call is out before the later page is handed over
    run.applier.apply(second)
    earlier.join(5)
    run.applier.close()

    sent = [target for name, target in jira.calls if name == "bulk_create"]
    # Within a page the calls' intents are stored side by side, so the first stored goes first: order is per page.
    assert sorted(sent[:4]) == [f"A{i}" for i in range(4)] and sorted(sent[4:]) == [f"B{i}" for i in range(4)]
    assert jira.high_water["bulk"] == 1
    assert run.counts["created"] == 8


def test_turns_let_waiters_in_the_order_they_asked_and_a_failing_holder_still_hands_over() -> None:
    turns = Turns(1)
    order: list[int] = []
    holding, release = threading.Event(), threading.Event()

    def failing_holder() -> None:
        with contextlib.suppress(RuntimeError), turns.turn():
            holding.set()
            release.wait(5)
            raise RuntimeError("the call failed")

    def wait_turn(number: int) -> None:
        with turns.turn():
            order.append(number)

    threads = [threading.Thread(target=failing_holder)]
    threads[0].start()
    assert holding.wait(5)
    for number in range(4):
        threads.append(threading.Thread(target=wait_turn, args=(number,)))
        threads[-1].start()
        deadline = time.monotonic() + 5
        while len(turns._waiting) <= number and time.monotonic() < deadline:
            time.sleep(0.001)  # queued before the next one asks
    release.set()
    for thread in threads:
        thread.join(5)
    assert order == [0, 1, 2, 3]
    with turns.turn():  # the slot came back
        pass


def test_once_the_pass_is_read_the_last_calls_share_what_is_left(store: Store) -> None:
    jira = SlowJira(seconds=0.01)
    run = Run.start(store, jira, SyncPolicy(bulk_size=4, bulk_concurrency=2))
    run.sync([row(f"A{i:02}") for i in range(40)])  # read on: full calls
    run.applier.read_all()
    run.sync([row(f"B{i:02}") for i in range(12)])  # the last page: 12 left over 2 slots, at least 2 a call
    sizes = [len(refs.split(",")) for name, refs in jira.calls if name == "bulk_create"]
    assert sizes[:10] == [4] * 10
    assert sorted(sizes[10:]) == [2, 2, 4, 4]
    assert run.counts["created"] == 52
    assert len({r.ifs_key for r in store.records.list(limit=100) if r.jira_id}) == 52


def test_shrinking_calls_still_fill_every_slot(store: Store) -> None:
    """A page's calls may shrink to half a call each: they go out side by side, not one after another on as many
    threads as the page had full calls."""
    jira = SlowJira(seconds=0.05)
    run = Run.start(store, jira, SyncPolicy(bulk_size=4, bulk_concurrency=4))
    run.sync([row(f"A{i:02}") for i in range(40)])
    run.applier.read_all()
    jira.high_water.clear()
    run.sync([row(f"B{i:02}") for i in range(8)])  # two full calls' worth, shared out over four slots
    sizes = [len(refs.split(",")) for name, refs in jira.calls if name == "bulk_create"]
    assert sizes[10:] == [2, 2, 2, 2]
    assert jira.high_water["bulk"] == 4


@pytest.mark.parametrize("fault", ["answers lost", "refused"])
def test_shared_out_calls_that_fail_keep_every_record_and_its_intent(store: Store, fault: str) -> None:
    """The failure path of the shrinking calls: each call's failure is its records' (none is lost or taken twice);
    an answer lost after Jira acted keeps the intent for reconciliation, a refusal parks without one."""
    jira = SlowJira(seconds=0.01)
    run = Run.start(store, jira, SyncPolicy(bulk_size=4, bulk_concurrency=2))
    run.sync([row(f"A{i:02}") for i in range(8)])
    run.applier.read_all()
    if fault == "answers lost":
        jira.lose_answers = True
    else:
        jira.refuse_creates = JiraFailure(400, errors={"summary": "refused"})
    run.sync([row(f"B{i:02}") for i in range(12)])

    calls = [refs.split(",") for name, refs in jira.calls if name == "bulk_create"][2:]
    assert sorted(len(c) for c in calls) == [2, 2, 4, 4]  # shared out though every call failed
    assert sorted(k for c in calls for k in c) == [f"B{i:02}" for i in range(12)]
    failed = [record(store, f"B{i:02}") for i in range(12)]
    assert all(r.jira_id is None and r.state in (RETRY, PARKED) for r in failed)
    kept_intents = {r.create_attempted_at is not None for r in failed}
    assert kept_intents == {fault == "answers lost"}
    assert run.counts.get("failed", 0) + run.counts.get("parked", 0) == 12
