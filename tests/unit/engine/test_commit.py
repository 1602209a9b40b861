"""Plan and commit against a real SQLite store, without HTTP: what each plan writes in the page's transaction."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Text, select

from ml_connector.config.models import SyncPolicy
from ml_connector.engine.plan import NOT_FOUND
from ml_connector.mapping.changes import bounded_source
from ml_connector.reasons import Reason
from ml_connector.store import PARKED, PENDING_CREATE, PENDING_UPDATE, RETRY, SYNCED, Store, audit, schema
from ml_connector.store.db import json_dumps

from .support import FLOW, NOW, T1, T2, Page, draft_of, events, mark, record, row


def test_new_records_wait_for_their_create_and_move_the_cursor(store: Store) -> None:
    work = Page(store).commit([row("A", changed=T1), row("B", changed=T2)])

    assert work == ["A", "B"]
    a = record(store, "A")
    assert (a.state, a.source_ts, a.jira_id, a.create_attempted_at) == (PENDING_CREATE, T1, None, None)
    assert a.draft is not None and a.draft["summary"] == "PO A: v1" and a.draft_hash == draft_of(row("A")).content_hash
    assert events(store, "A") == ["fetched", "mapped"]
    assert store.cursors.get(FLOW.name) == "2026-03-01T11:00:00.000000Z"


def test_the_cursor_never_passes_the_signpost_nor_goes_back(store: Store) -> None:
    Page(store).commit([row("A", changed="2026-03-01T13:00:00Z")])  # a clock ahead of ours
    assert store.cursors.get(FLOW.name) == "2026-03-01T11:59:59.000000Z"
    Page(store).commit([row("B", changed=T1)])
    assert store.cursors.get(FLOW.name) == "2026-03-01T11:59:59.000000Z"


def test_a_key_ordered_pass_leaves_the_cursor_to_the_orchestrator(store: Store) -> None:
    Page(store).commit([row("A")], move_cursor=False)
    assert store.cursors.get(FLOW.name) is None


def test_an_unchanged_synced_record_is_left_alone(store: Store) -> None:
    Page(store).commit([row("A")])
    mark(store, "A", state=SYNCED, jira_id="10001", jira_key="PROC-1")

    page = Page(store)
    assert page.commit([row("A")]) == []
    assert page.report.counts["unchanged"] == 1
    assert events(store, "A") == ["fetched", "mapped"]


def test_a_source_change_without_a_content_change_only_moves_the_hash(store: Store) -> None:
    Page(store).commit([row("A")])
    mark(store, "A", state=SYNCED, jira_id="10001", jira_key="PROC-1", source_hash="before")

    assert Page(store).commit([row("A", changed=T2)]) == []
    a = record(store, "A")
    assert (a.state, a.source_ts) == (SYNCED, T2)
    assert events(store, "A")[-1] == "skipped"


def test_a_changed_linked_record_waits_for_its_edit_with_a_clean_slate(store: Store) -> None:
    Page(store).commit([row("A")])
    mark(store, "A", state=RETRY, jira_id="10001", jira_key="PROC-1", attempts=3, error_class="X", last_error="x")

    assert Page(store).commit([row("A", "v2")]) == ["A"]
    a = record(store, "A")
    assert (a.state, a.attempts, a.next_attempt_at) == (PENDING_UPDATE, 0, None)
    assert (a.error_class, a.last_error) == (None, None)
    assert a.draft is not None and a.draft["summary"] == "PO A: v2"


def test_a_record_awaiting_its_404_check_keeps_the_schedule(store: Store) -> None:
    Page(store).commit([row("A")])
    check_at = NOW + timedelta(hours=1)
    linked = {"jira_id": "10001", "jira_key": "PROC-1"}
    mark(store, "A", state=RETRY, error_class=NOT_FOUND, next_attempt_at=check_at, **linked)

    assert Page(store).commit([row("A", "v2")]) == []  # no edit now: the check decides
    a = record(store, "A")
    assert (a.state, a.error_class, a.next_attempt_at) == (RETRY, NOT_FOUND, check_at)
    assert a.draft is not None and a.draft["summary"] == "PO A: v2"  # the check edits or recreates with this


def test_an_unconfirmed_create_keeps_its_intent(store: Store) -> None:
    Page(store).commit([row("A")])
    attempted = NOW - timedelta(minutes=3)
    mark(store, "A", create_attempted_at=attempted)

    page = Page(store)
    assert [p.label for p in page.plan([row("A", "v2")])] == ["create"]
    assert page.commit([row("A", "v2")]) == ["A"]
    a = record(store, "A")
    assert (a.state, a.create_attempted_at) == (PENDING_CREATE, attempted)  # the apply step searches first


def test_a_mapping_failure_is_stored_and_audited_once_parked(store: Store) -> None:
    policy = SyncPolicy(max_attempts=1)
    page = Page(store, policy)
    assert page.commit([row("A", "template bug")]) == []
    a = record(store, "A")
    assert (a.state, a.error_class, a.draft) == (PARKED, "InternalError", None)
    assert (a.reason, a.reason_value) == ("internal_error", None)  # the code summaries and metrics group by
    assert a.last_error == "mapping failed: gave up after 1 attempts: TypeError: template bug"
    assert page.report.counts["parked"] == 1
    assert page.report.causes == Counter({Reason("internal_error"): 1})
    assert events(store, "A") == ["failed"]

    assert Page(store, policy).commit([row("A", "template bug")]) == []  # the same bad record, seen again
    assert events(store, "A") == ["failed"]


def test_a_failure_keeps_the_rest_of_the_page(store: Store) -> None:
    assert Page(store).commit([row("A"), row("B", "template bug"), row("C")]) == ["A", "C"]
    assert record(store, "B").state == RETRY


def test_the_ifs_row_is_kept_with_each_mapping_and_each_mapping_failure(store: Store) -> None:
    """The record page shows the data a record was last mapped (or failed to map) from, without OData annotations."""
    Page(store).commit([{**row("A"), "@odata.etag": 'W/"1"'}, row("B", "template bug")])
    mapped = store.audit.trail(record(store, "A").id)[-1]
    assert mapped.event == "mapped" and mapped.detail is not None
    assert mapped.detail["source"] == row("A")
    failed = store.audit.trail(record(store, "B").id)[-1]
    assert failed.event == "failed" and failed.detail is not None
    assert failed.detail["source"] == row("B", "template bug")


def test_the_mapped_event_takes_the_texts_the_hashes_encoded_and_stores_what_encoding_it_whole_would(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    encoded: list[Any] = []
    monkeypatch.setattr(audit, "json_dumps", lambda value, **kw: encoded.append(value) or json_dumps(value, **kw))
    long_note, secret = {**row("B"), "Note": "n" * 2000}, {**row("C"), "Note": "Bearer abcdefghijk"}
    Page(store).commit([{**row("A"), "Amount": 1.5, "@odata.etag": 'W/"1"'}, long_note, secret])
    # The drafts and A's row were encoded once, for their hashes; B's row was cut and C's redacted: encoded again.
    rows_encoded = [value for value in encoded if "OrderNo" in value]
    assert rows_encoded == [bounded_source(long_note), {**secret, "Note": "Bearer [redacted]"}]
    assert not [value for value in encoded if "summary" in value]
    column = schema.audit_events.c
    with store.engine.connect() as conn:
        stored = conn.execute(select(column.detail.cast(Text), column.digest).where(column.event == "mapped"))
        texts = list(stored)
    assert len(texts) == 3
    for text, digest in texts:
        assert text == json.dumps(json.loads(text), sort_keys=True)
        assert digest == hashlib.sha256(text.encode()).hexdigest()


def test_a_record_mapped_again_loses_its_failure_reason(store: Store) -> None:
    Page(store).commit([row("A", "template bug")])
    assert record(store, "A").reason == "internal_error"
    Page(store).commit([row("A", "fixed", changed=T2)])
    a = record(store, "A")
    assert (a.state, a.reason, a.reason_value, a.error_class) == (PENDING_CREATE, None, None, None)
    assert store.records.failure_groups() == []
