"""Plan, commit, then apply against a fake Jira and a real SQLite store: creates and edits, without HTTP."""

from __future__ import annotations

from datetime import timedelta

import pytest

from ml_connector.errors import Rejected, TransientError
from ml_connector.jira.models import JiraFailure
from ml_connector.store import PARKED, RETRY, Store, utcnow

from .support import FakeJira, FakeWiring, Run, events, linked, record, row


def test_new_records_are_created_in_one_bulk_call_and_linked(store: Store) -> None:
    jira = FakeJira()
    run = Run.start(store, jira)
    run.sync([row("A"), row("B")])

    assert jira.calls == [("bulk_create", "A,B")]
    assert linked(store, "A").jira_id in jira.issues and linked(store, "B").jira_key == "PROC-2"
    assert events(store, "A") == ["fetched", "mapped", "created"]
    assert run.counts["created"] == 2


def test_a_changed_record_is_edited(store: Store) -> None:
    jira = FakeJira()
    Run.start(store, jira).sync([row("A")])
    run = Run.start(store, jira)
    run.sync([row("A", "v2")])

    issue_id = linked(store, "A").jira_id
    assert issue_id is not None and jira.calls[-1] == ("edit_issue", issue_id)
    assert jira.issues[issue_id]["fields"]["summary"] == "PO A: v2"
    assert run.counts["updated"] == 1


def test_a_failed_edit_is_retried_per_policy(store: Store) -> None:
    jira = FakeJira()
    Run.start(store, jira).sync([row("A")])
    jira.down = TransientError("timeout", system="jira")
    run = Run.start(store, jira)
    run.sync([row("A", "v2")])
    failed = record(store, "A")
    assert failed.state == RETRY and failed.error_class == "TransientError" and failed.attempts == 1
    assert events(store, "A")[-1] == "failed" and run.counts["failed"] == 1


def test_a_payload_error_fails_its_record_not_the_bulk_call(store: Store) -> None:
    jira = FakeJira()
    run = Run.start(store, jira)
    run.sync([row("A"), row("B", "unknown field"), row("C")])

    assert jira.calls == [("bulk_create", "A,C")]
    assert linked(store, "A") and linked(store, "C")
    failed = record(store, "B")
    assert failed.state == PARKED and failed.error_class == "MappingError" and failed.create_attempted_at is None
    assert run.counts["created"] == 2 and run.counts["parked"] == 1


@pytest.mark.parametrize("stale", [True, False])
def test_an_edit_jira_refuses_over_a_field_is_retried_when_the_metadata_is_stale_else_parked(
    store: Store, stale: bool
) -> None:
    jira = FakeJira()
    Run.start(store, jira).sync([row("A")])
    refusal = Rejected("not on the screen", system="jira", status=400, details={"errors": {"customfield_1": "x"}})
    jira.down = refusal
    read_at = utcnow() - timedelta(minutes=30)  # kept from an earlier process
    wiring = FakeWiring(store, jira, metadata_read_at=read_at, metadata_stale=stale)
    run = Run.start(store, jira, wiring=wiring)
    run.sync([row("A", "v2")])

    assert [(e, r) for e, r, _ in wiring.judged] == [(refusal, read_at)]
    assert wiring.judged[0][2] == run.page.report.started  # judged against the run's start
    failed = record(store, "A")
    if stale:
        assert (failed.state, failed.error_class, failed.reason) == (RETRY, "StaleMetadata", "stale_metadata")
        assert failed.next_attempt_at is not None
    else:
        assert (failed.state, failed.error_class, failed.reason) == (PARKED, "Rejected", "jira_rejected")


@pytest.mark.parametrize("stale", [True, False])
def test_a_create_jira_refuses_over_a_field_is_retried_when_the_metadata_is_stale_else_parked(
    store: Store, stale: bool
) -> None:
    """The bulk-create twin of the edit test above: Jira refuses an element over a field (an answer of 201 with an
    error for it, or a 400 for the call), and metadata kept from an earlier process may be what is wrong."""
    refusal = JiraFailure(400, errors={"customfield_1": "Field cannot be set"})
    jira = FakeJira(refuse_creates=refusal)
    read_at = utcnow() - timedelta(minutes=30)  # kept from an earlier process
    wiring = FakeWiring(store, jira, metadata_read_at=read_at, metadata_stale=stale)
    run = Run.start(store, jira, wiring=wiring)
    run.sync([row("A")])

    assert len(wiring.judged) == 1 and wiring.judged[0][1] == read_at
    assert "Field cannot be set" in str(wiring.judged[0][0])
    failed = record(store, "A")
    assert failed.jira_id is None and jira.issues == {}
    if stale:
        assert (failed.state, failed.error_class, failed.reason) == (RETRY, "StaleMetadata", "stale_metadata")
        assert failed.next_attempt_at is not None
    else:
        assert (failed.state, failed.error_class, failed.reason) == (PARKED, "Rejected", "jira_rejected")
