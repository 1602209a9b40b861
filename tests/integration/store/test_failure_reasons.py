"""Schema 0005: failed records grouped by flow and reason code in one query; upgrading gives old failures a code."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from conftest import backends, reset_postgres, store_at_revision
from sqlalchemy import Engine, event, insert, text

from ml_connector.store import PARKED, RETRY, SYNCED, FailureGroup, Store, utcnow
from ml_connector.store import schema as t


@contextmanager
def _statements(engine: Engine) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


def _row(flow: str, key: str, state: str, reason: str | None, value: str | None = None) -> dict[str, Any]:
    now = utcnow()
    return {
        "flow": flow,
        "ifs_key": key,
        "state": state,
        "attempts": 1,
        "reason": reason,
        "reason_value": value,
        "created_at": now,
        "updated_at": now,
    }


def test_failure_groups_count_per_flow_reason_and_value_in_one_query(store: Store) -> None:
    rows = [_row("po", f"A{i}", PARKED, "unmapped_project", "PRJ-1005") for i in range(120)]
    rows += [_row("po", f"B{i}", RETRY if i % 2 else PARKED, "unmapped_project", "PRJ-1007") for i in range(40)]
    rows += [_row("po", "C1", PARKED, "summary_too_long")]
    rows += [_row("po", "D1", PARKED, None)]  # failed before reasons existed
    rows += [_row("po", f"S{i}", SYNCED, "unmapped_project", "PRJ-1005") for i in range(5)]  # not failed: left out
    rows += [_row("wo", "W1", RETRY, "unavailable", "jira")]
    with store.engine.begin() as conn:
        conn.execute(insert(t.records), rows)
    with _statements(store.engine) as seen:
        groups = store.records.failure_groups()
    assert len([s for s in seen if s.lstrip().upper().startswith("SELECT")]) == 1
    assert groups == [
        FailureGroup("po", "unmapped_project", 160, (("PRJ-1005", 120), ("PRJ-1007", 40))),
        FailureGroup("po", "other", 1, ((None, 1),)),
        FailureGroup("po", "summary_too_long", 1, ((None, 1),)),
        FailureGroup("wo", "unavailable", 1, (("jira", 1),)),
    ]
    assert [g.reason for g in store.records.failure_groups("wo")] == ["unavailable"]


OLD_FAILURES = [
    # (error_class, last_error, expected reason, expected value)
    ("MappingError", "mapping failed: no project mapped for ProjectId='PRJ-1005' and no default", "unmapped_project",
     "PRJ-1005"),
    ("MappingError", "mapping failed: no Tier mapped for supplier.Tier='T9' and no default", "unmapped_option",
     "Tier=T9"),
    ("MappingError", "mapping failed: 'Gold' is not an allowed value of Jira field 'Tier'", "option_not_allowed",
     "Tier=Gold"),
    ("MappingError", "mapping failed: summary is 314 characters; Jira allows 255", "summary_too_long", None),
    ("Unavailable", "jira: 503 Service Unavailable", "unavailable", None),
    ("Rejected", "write-back: ifs: 400 bad value", "ifs_rejected", None),
    ("Rejected", "jira: Jira refused the create: 400", "jira_rejected", None),
    (None, "no longer in IFS (or outside the filter)", "source_gone", None),
    ("SomethingNew", "who knows", "other", None),
]


@pytest.mark.parametrize("backend", backends())
def test_upgrading_from_0004_gives_old_failures_a_reason(backend: str, tmp_path: Path) -> None:
    url, engine = store_at_revision(backend, tmp_path, "0004")
    now = utcnow()
    with engine.begin() as conn:
        for i, (error_class, message, _, _) in enumerate([*OLD_FAILURES, (None, None, None, None)]):
            conn.execute(
                text(
                    "INSERT INTO records (flow, ifs_key, state, attempts, error_class, last_error, created_at, "
                    "updated_at) VALUES ('po', :key, :state, 1, :cls, :msg, :now, :now)"
                ),
                {"key": f"K{i}", "state": PARKED if message else SYNCED, "cls": error_class, "msg": message}
                | {"now": now},
            )
    engine.dispose()
    store = Store.open(url)
    try:
        for i, (_, _, reason, value) in enumerate(OLD_FAILURES):
            record = store.records.get("po", f"K{i}")
            assert record is not None and (record.reason, record.reason_value) == (reason, value), OLD_FAILURES[i]
        clean = store.records.get("po", f"K{len(OLD_FAILURES)}")
        assert clean is not None and clean.reason is None
        assert sum(g.count for g in store.records.failure_groups()) == len(OLD_FAILURES)
    finally:
        store.close()
    if backend != "sqlite":
        reset_postgres(url)
