"""The outbound planner (issue 12, item 1): rows and stored records in, one typed plan per record out, no I/O."""

from __future__ import annotations

import ast
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ml_connector.engine import plan as plan_module
from ml_connector.engine.plan import (
    NOT_FOUND,
    Create,
    Fail,
    PageRules,
    Plan,
    Reconcile,
    Skip,
    Update,
    has_create_intent,
    plan_page,
    rows_to_map,
    source_hash,
)
from ml_connector.errors import ConfigError
from ml_connector.mapping import IssueDraft, stable_hash
from ml_connector.store import ORPHANED, PARKED, PENDING_CREATE, PENDING_UPDATE, RECORD_STATES, RETRY, SYNCED, RecordRow
from ml_connector.store.db import json_dumps

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LATER, EARLIER = NOW + timedelta(minutes=5), NOW - timedelta(minutes=5)
RULES = PageRules(key_field="OrderNo", fingerprint="config-1", now=NOW)


def draft_of(row: Mapping[str, Any]) -> IssueDraft:
    """A stand-in for ``map_issue``: the summary carries the row's text, so a text change changes the draft."""
    if row.get("Text") == "template bug":
        raise TypeError("template bug")
    if row.get("Text") == "config bug":
        raise ConfigError("unknown field", path="flows[0].mapping.summary")
    return IssueDraft("PROC", "Task", f"{row['OrderNo']}: {row.get('Text')}", None, None, None, {}, (), "mlc-po")


def row(key: str, text: str = "v1") -> dict[str, Any]:
    return {"OrderNo": key, "Text": text, "@odata.etag": "W/1"}


def stored(key: str, state: str, *, like: Mapping[str, Any] | None = None, **values: Any) -> RecordRow:
    """A record as the store holds it; ``like`` (a row) makes its source and draft hashes match that row."""
    if like is not None:
        values.setdefault("source_hash", source_hash(like, RULES.fingerprint))
        values.setdefault("draft_hash", draft_of(like).content_hash)
    return RecordRow(id=abs(hash(key)) % 10_000, flow="purchase_orders", ifs_key=key, state=state, **values)


LINKED = {"jira_id": "10001", "jira_key": "PROC-1"}


@pytest.mark.parametrize(
    ("current", "incoming", "expected", "mapped"),
    [
        pytest.param(None, row("A"), Create, True, id="new record"),
        pytest.param(stored("A", SYNCED, like=row("A"), **LINKED), row("A"), Skip, False, id="synced, unchanged"),
        pytest.param(stored("A", SYNCED, like=row("A"), **LINKED), row("A", "v2"), Update, True, id="synced, changed"),
        pytest.param(
            stored("A", SYNCED, like=row("A", "v2"), source_hash="old", **LINKED),
            row("A", "v2"),
            Skip,
            True,
            id="source changed, draft did not",
        ),
        pytest.param(stored("A", PENDING_UPDATE, like=row("A"), **LINKED), row("A"), Update, True, id="pending update"),
        pytest.param(stored("A", PARKED, like=row("A"), **LINKED), row("A"), Skip, False, id="parked, unchanged"),
        pytest.param(stored("A", PARKED, like=row("A"), **LINKED), row("A", "v2"), Update, True, id="parked, changed"),
        pytest.param(
            stored("A", PARKED, like=row("A")), row("A", "v2"), Create, True, id="parked before any issue, changed"
        ),
        pytest.param(
            stored("A", RETRY, like=row("A"), next_attempt_at=LATER, **LINKED),
            row("A"),
            Skip,
            False,
            id="retry not yet due",
        ),
        pytest.param(
            stored("A", RETRY, like=row("A"), next_attempt_at=EARLIER, **LINKED),
            row("A"),
            Update,
            True,
            id="retry due",
        ),
        pytest.param(stored("A", RETRY, like=row("A"), **LINKED), row("A"), Update, True, id="retry without a time"),
        pytest.param(stored("A", ORPHANED, like=row("A"), **LINKED), row("A", "v2"), Skip, False, id="orphaned"),
        pytest.param(
            stored("A", RETRY, like=row("A"), next_attempt_at=LATER, error_class=NOT_FOUND, **LINKED),
            row("A"),
            Skip,
            False,
            id="awaiting 404 check, unchanged",
        ),
        pytest.param(
            stored("A", RETRY, like=row("A"), next_attempt_at=LATER, error_class=NOT_FOUND, **LINKED),
            row("A", "v2"),
            Update,
            True,
            id="awaiting 404 check, changed",
        ),
        pytest.param(
            stored("A", PENDING_CREATE, like=row("A"), create_attempted_at=EARLIER),
            row("A"),
            Reconcile,
            True,
            id="unconfirmed create",
        ),
        pytest.param(
            stored("A", RETRY, like=row("A"), create_attempted_at=EARLIER, next_attempt_at=EARLIER),
            row("A", "v2"),
            Reconcile,
            True,
            id="unconfirmed create, failed since, changed",
        ),
        pytest.param(stored("A", PENDING_CREATE, like=row("A")), row("A"), Create, True, id="pending create"),
        pytest.param(None, row("A", "template bug"), Fail, True, id="mapping bug"),
        pytest.param(
            stored("A", SYNCED, like=row("A"), **LINKED), row("A", "template bug"), Fail, True, id="mapping bug, known"
        ),
    ],
)
def test_one_plan_per_record(current: RecordRow | None, incoming: dict[str, Any], expected: type, mapped: bool) -> None:
    existing = {"A": current} if current else {}
    calls: list[Mapping[str, Any]] = []

    def map_row(r: Mapping[str, Any]) -> IssueDraft:
        calls.append(r)
        return draft_of(r)

    [plan] = plan_page([incoming], existing, map_row, RULES)

    assert type(plan) is expected
    assert (plan.key, plan.row, plan.existing) == ("A", incoming, current)
    assert plan.source_hash == source_hash(incoming, RULES.fingerprint)
    assert calls == ([incoming] if mapped else [])  # settled records are not mapped: no lookups for them
    assert rows_to_map([incoming], existing, RULES) == calls
    if isinstance(plan, Fail):
        assert isinstance(plan.error, TypeError)
    elif mapped:
        assert plan.draft == draft_of(incoming)
    else:
        assert plan.draft is None


def test_the_odata_annotations_are_not_content() -> None:
    assert source_hash(row("A"), "c") == source_hash({**row("A"), "@odata.etag": "W/2"}, "c")
    assert source_hash(row("A"), "c") != source_hash(row("A"), "c2")  # a config change maps everything again


_cells = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6) | st.sampled_from(["\x7f", "Ü"])


@given(fields=st.dictionaries(st.text(max_size=4), _cells, max_size=4))
def test_a_plans_source_text_is_the_rows_text_as_the_audit_writes_it_and_the_hash_is_unchanged(
    fields: dict[str, Any],
) -> None:
    incoming = {**fields, **row("A")}
    (plan,) = plan_page([incoming], {}, draft_of, RULES)
    fields_only = {k: v for k, v in incoming.items() if not k.startswith("@")}
    # the hash as it was defined before the text was kept: existing records keep their hashes
    assert plan.source_hash == stable_hash({"record": fields_only, "config": RULES.fingerprint})
    if plan.source_text is not None:
        assert plan.source_text == json_dumps(fields_only, sort_keys=True)


def test_a_plain_row_has_its_text_kept_and_any_other_has_none() -> None:
    (plain,) = plan_page([{**row("A"), "Amount": 1.5, "Open": True, "Note": None}], {}, draft_of, RULES)
    assert plain.source_text == '{"Amount": 1.5, "Note": null, "Open": true, "OrderNo": "A", "Text": "v1"}'
    for text in ("Ü", "a\x7fb", "a\x00b", "NaN"):
        (other,) = plan_page([row("A", text)], {}, draft_of, RULES)
        assert other.source_text is None


@pytest.mark.parametrize(("state", "expected"), [(SYNCED, Skip), (PENDING_UPDATE, Update), (ORPHANED, Skip)])
def test_full_remaps_synced_records(state: str, expected: type) -> None:
    """``--full`` maps unchanged synced records (a lookup may have changed): same draft skips, else updates."""
    incoming = row("A")
    same = stored("A", state, like=incoming, **LINKED)
    full = replace(RULES, remap=True)
    [plan] = plan_page([incoming], {"A": same}, draft_of, full)
    assert type(plan) is expected and isinstance(plan, Skip | Update)
    assert (plan.draft is not None) == (state != ORPHANED)  # orphaned stays settled, even under --full
    stale = replace(same, draft_hash="before the lookup changed")
    [plan] = plan_page([incoming], {"A": stale}, draft_of, full)
    assert type(plan) is (Skip if state == ORPHANED else Update)


def test_a_systemic_mapping_error_stops_the_page() -> None:
    with pytest.raises(ConfigError):
        plan_page([row("A"), row("B", "config bug")], {}, draft_of, RULES)


def test_plans_keep_first_seen_order_and_the_last_row_of_a_key() -> None:
    rows = [row("B"), row("A"), row("B", "v2"), row("C")]
    plans = plan_page(rows, {}, draft_of, RULES)
    assert [p.key for p in plans] == ["B", "A", "C"]
    assert plans[0].row == row("B", "v2")


def test_a_mapped_row_wins_over_a_settled_row_of_the_same_key() -> None:
    unchanged, changed = row("A"), row("A", "v2")
    existing = {"A": stored("A", SYNCED, like=unchanged, **LINKED)}
    for rows in ([changed, unchanged], [unchanged, changed]):
        [plan] = plan_page(rows, existing, draft_of, RULES)
        assert isinstance(plan, Update) and plan.row == changed


def test_the_planner_does_not_map_when_everything_is_settled() -> None:
    def no_mapping(r: Mapping[str, Any]) -> IssueDraft:
        raise AssertionError("mapped")

    incoming = row("A")
    existing = {"A": stored("A", SYNCED, like=incoming, **LINKED)}
    assert rows_to_map([incoming], existing, RULES) == []
    assert [type(p) for p in plan_page([incoming], existing, no_mapping, RULES)] == [Skip]


# ------------------------------------------------------------------------------------------------ property

KEYS = st.sampled_from(["A", "B", "C", "D", "E"])
TEXTS = st.sampled_from(["v1", "v2", "template bug"])
TIMES = st.sampled_from([None, EARLIER, LATER])


@st.composite
def records(draw: st.DrawFn, key: str) -> RecordRow:
    linked = draw(st.booleans())
    like = row(key, draw(st.sampled_from(["v1", "v2"])))
    return stored(
        key,
        draw(st.sampled_from(RECORD_STATES)),
        like=like,
        jira_id="1" if linked else None,
        create_attempted_at=draw(TIMES),
        next_attempt_at=draw(TIMES),
        error_class=draw(st.sampled_from([None, NOT_FOUND, "RateLimited"])),
    )


@st.composite
def pages(draw: st.DrawFn) -> tuple[list[dict[str, Any]], dict[str, RecordRow]]:
    rows = draw(st.lists(st.builds(row, KEYS, TEXTS), max_size=12))
    known = draw(st.sets(KEYS))
    return rows, {key: draw(records(key)) for key in known}


@settings(max_examples=300, deadline=None)
@given(pages(), st.booleans())
def test_any_page_yields_one_plan_per_key_and_creates_only_what_is_unlinked(
    page: tuple[list[dict[str, Any]], dict[str, RecordRow]], remap: bool
) -> None:
    rows, existing = page
    plans: list[Plan] = plan_page(rows, existing, draft_of, replace(RULES, remap=remap))

    assert [p.key for p in plans] == list(dict.fromkeys(str(r["OrderNo"]) for r in rows))
    for plan in plans:
        current = existing.get(plan.key)
        assert plan.existing is current
        if isinstance(plan, Create):
            assert current is None or (current.jira_id is None and not has_create_intent(current))
        if isinstance(plan, Reconcile):
            assert has_create_intent(plan.existing)
        if isinstance(plan, Update):
            assert plan.existing.jira_id is not None


def test_the_planner_imports_nothing_that_does_io() -> None:
    """No clients, no store engine, no clock helpers: only data types and pure rules."""
    source = Path(plan_module.__file__).read_text(encoding="utf-8")
    imported = {n.module for n in ast.walk(ast.parse(source)) if isinstance(n, ast.ImportFrom) and n.module}
    allowed = {"__future__", "collections.abc", "dataclasses", "datetime", "typing"}
    allowed |= {"ml_connector.engine.failures", "ml_connector.mapping", "ml_connector.store"}
    assert imported <= allowed
    assert "utcnow" not in source and "datetime.now" not in source
