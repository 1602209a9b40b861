"""Group commit: writes handed over while a transaction is written go together in the next one; a failing group
fails each of its writers and leaves the store as it was."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import pytest

from ml_connector.config.models import SyncPolicy
from ml_connector.engine.groupcommit import GroupCommit
from ml_connector.engine.ports import RecordTx
from ml_connector.store import Store

from .support import Page, Run, record, row
from .test_apply_concurrency import SlowJira


class Groups:
    """Writes are record keys; a group stores its keys' state as 'retry' in one transaction. The first group can be
    held open (``hold``) so the writers behind it queue."""

    def __init__(self, store: Store, ids: dict[str, int]) -> None:
        self.store = store
        self.ids = ids
        self.groups: list[list[str]] = []
        self.hold = threading.Event()
        self.held = threading.Event()
        self.hold.set()
        self.fail_on: str | None = None

    def write_all(self, tx: RecordTx, group: Sequence[str]) -> None:
        self.groups.append(list(group))
        self.held.set()
        assert self.hold.wait(5)
        tx.records.set_many([self.ids[key] for key in group], state="retry")
        if self.fail_on in group:
            raise RuntimeError(f"cannot write {self.fail_on}")


@pytest.fixture
def groups(store: Store) -> Groups:
    work = Page(store).commit_records([row(f"K{i}") for i in range(6)])
    return Groups(store, {r.ifs_key: r.id for r in work})


def _writers(commit: GroupCommit[str], keys: Sequence[str]) -> tuple[list[threading.Thread], dict[str, str]]:
    outcome: dict[str, str] = {}

    def one(key: str) -> None:
        try:
            commit.write(key)
            outcome[key] = "committed"
        except RuntimeError as error:
            outcome[key] = str(error)

    threads = [threading.Thread(target=one, args=(key,)) for key in keys]
    return threads, outcome


def _queue_behind_first(commit: GroupCommit[str], groups: Groups, keys: Sequence[str]) -> dict[str, str]:
    """The first key's write is held open while the others queue behind it; then all finish."""
    groups.hold.clear()
    threads, outcome = _writers(commit, keys)
    threads[0].start()
    assert groups.held.wait(5)
    for thread in threads[1:]:
        thread.start()
    deadline = time.monotonic() + 5
    while len(commit._queue) < len(keys) - 1 and time.monotonic() < deadline:
        time.sleep(0.001)
    groups.hold.set()
    for thread in threads:
        thread.join(5)
    return outcome


def states(store: Store, keys: Sequence[str]) -> list[str]:
    return [record(store, key).state for key in keys]


def test_writes_queued_during_a_transaction_go_together_in_the_next_one(store: Store, groups: Groups) -> None:
    commit = GroupCommit(store, lambda: None, groups.write_all)
    keys = [f"K{i}" for i in range(6)]
    outcome = _queue_behind_first(commit, groups, keys)

    assert outcome == dict.fromkeys(keys, "committed")
    assert groups.groups[0] == ["K0"] and sorted(groups.groups[1]) == keys[1:]
    assert commit.transactions == 2
    assert states(store, keys) == ["retry"] * 6
    commit.write("K0")  # the lead was handed back: a later write leads at once
    assert commit.transactions == 3


def test_a_failing_group_fails_each_of_its_writers_and_writes_nothing(store: Store, groups: Groups) -> None:
    commit = GroupCommit(store, lambda: None, groups.write_all)
    groups.fail_on = "K3"
    keys = [f"K{i}" for i in range(6)]
    before = states(store, keys)
    outcome = _queue_behind_first(commit, groups, keys)

    assert outcome == {"K0": "committed", **dict.fromkeys(keys[1:], "cannot write K3")}
    assert states(store, keys) == ["retry", *before[1:]]
    groups.fail_on = None
    commit.write("K5")  # the failure let the lead go
    assert states(store, ["K5"]) == ["retry"]


def test_bulk_calls_that_finish_together_share_transactions(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """With a slow store, the intents and outcomes of calls in flight at once go in fewer transactions than the
    two per call of writing each on its own."""
    transactions = 0
    transaction = Store.transaction

    @contextmanager
    def slow_transaction(self: Store, run_id: int | None = None) -> Iterator[RecordTx]:
        nonlocal transactions
        with transaction(self, run_id) as tx:
            transactions += 1
            time.sleep(0.02)
            yield tx

    run = Run.start(store, SlowJira(seconds=0.01), SyncPolicy(bulk_size=2, bulk_concurrency=8))
    work = run.page.commit_records([row(f"K{i:02}") for i in range(48)])  # 24 calls
    monkeypatch.setattr(Store, "transaction", slow_transaction)
    run.applier.apply(work)

    assert run.counts["created"] == 48
    assert transactions < 24  # two per call without grouping
    assert all(r.jira_id is not None and r.create_attempted_at is None for r in store.records.list(limit=100))
