"""Whatever the engine hands the store as JSON is stored and read back, on SQLite and PostgreSQL (issue 9)."""

from __future__ import annotations

import enum
import json
import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from ml_connector.http.redact import redact
from ml_connector.store import RETRY, AuditEvent, Store
from ml_connector.store.db import json_dumps, json_safe


class Colour(enum.Enum):
    RED = "red"
    BLUE = 2


class Line(BaseModel):
    no: int
    amount: Decimal
    at: datetime


zones = st.sampled_from([UTC, timezone(timedelta(hours=-8)), timezone(timedelta(hours=5, minutes=30))])
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(),  # NUL, control characters and lone surrogates included
    st.datetimes(timezones=st.one_of(st.none(), zones)),
    st.dates(),
    st.decimals(allow_nan=True),
    st.uuids(),
    st.binary(max_size=64),
    st.sampled_from(Colour),
    st.builds(
        Line,
        no=st.integers(0, 999),
        amount=st.decimals(places=2, allow_nan=False, allow_infinity=False),
        at=st.datetimes(timezones=zones),
    ),
)
keys = st.one_of(st.text(max_size=20), st.integers(), st.sampled_from(Colour))
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.tuples(inner, inner),
        st.frozensets(st.one_of(st.integers(), st.text(max_size=8)), max_size=5),
        st.dictionaries(keys, inner, max_size=5),
    ),
    max_leaves=25,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=values)
def test_any_engine_value_is_stored_and_read_back(store: Store, value: Any) -> None:
    detail = {"value": value, "next_attempt_at": datetime(2026, 1, 1, 12, tzinfo=UTC), "ids": {uuid.uuid4()}}
    with store.transaction() as tx:
        record = tx.records.insert("flow", str(uuid.uuid4()), state=RETRY, draft=detail)
        tx.audit.add(record.id, AuditEvent("failed", "error", f"nul \x00 in {value}", detail))
    expected = json_safe(redact(detail))
    trail = store.audit.trail(record.id)
    assert trail[-1].detail == expected
    stored = store.records.by_id(record.id)
    assert stored is not None and stored.draft == json_safe(detail)
    run_id = store.runs.start("flow", "outbound")
    store.runs.finish(run_id, "partial", {"failed": 1}, error=f"nul \x00 in {value}")
    run = store.runs.recent(limit=1)[0]
    assert run.counts == {"failed": 1} and run.error is not None and run.error.startswith("nul \ufffd in")


def test_the_encoder_spells_each_type_the_same_way_everywhere() -> None:
    naive = datetime(2026, 1, 2, 3, 4, 5)
    value = {
        "naive": naive,
        "pacific": datetime(2026, 1, 1, 19, 4, 5, tzinfo=timezone(timedelta(hours=-8))),
        "day": date(2026, 1, 2),
        "money": Decimal("10.10"),
        "blob": b"\x00\xff",
        "tags": {"b", "a"},
        "pair": (1, "x"),
        "colour": Colour.RED,
        "line": Line(no=1, amount=Decimal("2.50"), at=naive.replace(tzinfo=UTC)),
        "nan": float("nan"),
        "nul": "a\x00b",
        7: "int key",
    }
    assert json.loads(json_dumps(value)) == {
        "naive": "2026-01-02T03:04:05+00:00",
        "pacific": "2026-01-02T03:04:05+00:00",
        "day": "2026-01-02",
        "money": "10.10",
        "blob": "AP8=",
        "tags": ["a", "b"],
        "pair": [1, "x"],
        "colour": "red",
        "line": {"no": 1, "amount": "2.50", "at": "2026-01-02T03:04:05Z"},
        "nan": "nan",
        "nul": "a\ufffdb",
        "7": "int key",
    }
