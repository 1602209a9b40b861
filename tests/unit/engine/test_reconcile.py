"""Reconciliation against a fake Jira and a real SQLite store: interrupted creates and 404s, without HTTP."""

from __future__ import annotations

from ml_connector.config.models import SyncPolicy
from ml_connector.engine.plan import NOT_FOUND
from ml_connector.errors import TransientError
from ml_connector.store import ORPHANED, RETRY, Store

from .support import FakeJira, Run, due, events, linked, record, row


def test_a_lost_create_answer_is_reconciled_not_created_twice(store: Store) -> None:
    jira = FakeJira(lose_answers=True)
    run = Run.start(store, jira)
    run.sync([row("A")])
    failed = record(store, "A")
    assert failed.state == RETRY and failed.create_attempted_at is not None  # the intent stays
    assert run.counts["failed"] == 1

    jira.lose_answers = False
    due(store, "A")
    again = Run.start(store, jira)
    again.drain(store)

    assert [name for name, _ in jira.calls] == ["bulk_create", "search"]
    assert linked(store, "A").jira_id == next(iter(jira.issues))
    assert again.counts["reconciled"] == 1 and "created" not in again.counts


def test_an_unconfirmed_create_waits_for_search_to_catch_up(store: Store) -> None:
    jira = FakeJira(down=TransientError("timeout", system="jira"))
    Run.start(store, jira).sync([row("A")])
    jira.down = None
    due(store, "A")

    run = Run.start(store, jira)
    run.drain(store)
    waiting = record(store, "A")
    assert waiting.create_attempted_at is not None and waiting.next_attempt_at is not None
    assert [name for name, _ in jira.calls] == ["bulk_create", "search"]
    assert run.counts["deferred"] == 1

    due(store, "A")
    settled = Run.start(store, jira, SyncPolicy(reconcile_settle=0))
    settled.drain(store)
    assert linked(store, "A").jira_id is not None
    assert events(store, "A")[-2:] == ["reconciled", "created"]


def test_a_404_is_confirmed_on_a_later_run_then_recreated(store: Store) -> None:
    jira = FakeJira()
    policy = SyncPolicy(deleted_issue_grace=0)
    Run.start(store, jira, policy).sync([row("A")])
    first_id = linked(store, "A").jira_id
    jira.issues.clear()

    run = Run.start(store, jira, policy)
    run.sync([row("A", "v2")])
    suspect = record(store, "A")
    assert (suspect.state, suspect.error_class, suspect.jira_id) == (RETRY, NOT_FOUND, first_id)
    assert run.counts["not_found"] == 1 and "bulk_create" not in [name for name, _ in jira.calls[1:]]

    later = Run.start(store, jira, policy)
    later.drain(store)
    recreated = linked(store, "A")
    assert recreated.jira_id != first_id and jira.issues[str(recreated.jira_id)]["fields"]["summary"] == "PO A: v2"
    assert later.counts["recreate"] == 1 and later.counts["created"] == 1


def test_a_404_that_reads_again_is_edited(store: Store) -> None:
    jira = FakeJira()
    policy = SyncPolicy(deleted_issue_grace=0)
    Run.start(store, jira, policy).sync([row("A")])
    issue_id = str(linked(store, "A").jira_id)
    hidden = jira.issues.pop(issue_id)
    Run.start(store, jira, policy).sync([row("A", "v2")])

    hidden["fields"]["labels"] = []  # back, but the search does not find it: the second read decides
    jira.issues[issue_id] = hidden
    Run.start(store, jira, policy).drain(store)
    assert linked(store, "A").jira_id == issue_id
    assert events(store, "A")[-2:] == ["found", "updated"]


def test_a_confirmed_404_is_left_orphaned_when_the_policy_says_so(store: Store) -> None:
    jira = FakeJira()
    policy = SyncPolicy(deleted_issue_grace=0, deleted_issue="ignore")
    Run.start(store, jira, policy).sync([row("A")])
    jira.issues.clear()
    Run.start(store, jira, policy).sync([row("A", "v2")])

    later = Run.start(store, jira, policy)
    later.drain(store)
    assert record(store, "A").state == ORPHANED and later.counts["orphaned"] == 1
    assert Run.start(store, jira, policy).page.plan([row("A", "v3")])[0].label == "skip"


def test_a_404_in_this_run_is_not_checked_again_in_this_run(store: Store) -> None:
    jira = FakeJira()
    policy = SyncPolicy(deleted_issue_grace=0)
    Run.start(store, jira, policy).sync([row("A")])
    jira.issues.clear()
    run = Run.start(store, jira, policy)
    run.sync([row("A", "v2")])
    calls = len(jira.calls)

    run.drain(store)  # the same run's work queue: the record is due, but its 404 came in this run
    assert len(jira.calls) == calls and record(store, "A").state == RETRY
    assert run.watch.suspected == {record(store, "A").id}


def test_too_many_404s_raise_the_alert_and_recreate_nothing(store: Store) -> None:
    jira = FakeJira()
    keys = "ABCDEF"  # NOT_FOUND_ALERT_MIN (5) 404s at least
    policy = SyncPolicy(deleted_issue_grace=0, max_not_found_share=0.5)
    Run.start(store, jira, policy).sync([row(key) for key in keys])
    jira.issues.clear()
    run = Run.start(store, jira, policy)
    run.sync([row(key, "v2") for key in keys])
    assert run.watch.alert and run.counts["not_found_alert"] == 1 and run.counts["not_found"] == len(keys)

    later = Run.start(store, jira, policy)
    later.drain(store)
    assert later.watch.alert and "recreate" not in later.counts and "created" not in later.counts
    assert "bulk_create" not in [name for name, _ in jira.calls[1:]]
    for key in keys:
        waiting = record(store, key)
        assert (waiting.state, waiting.error_class) == (RETRY, NOT_FOUND)
        assert events(store, key)[-1] == "not_found"
