"""The source and content hashes stay what they were (stored hashes decide whether Jira needs a call)."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from ml_connector.mapping import stable_hash

leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(),
    st.datetimes(timezones=st.just(UTC)),
    st.decimals(allow_nan=False),
)
records = st.recursive(
    leaves,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=6)),
    max_leaves=25,
)


@given(value=records)
def test_stable_hash_is_the_sha256_of_the_canonical_json(value: Any) -> None:
    canonical = json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)
    assert stable_hash(value) == hashlib.sha256(canonical.encode()).hexdigest()


def test_a_known_record_keeps_its_hash() -> None:
    record = {"OrderNo": "PO-1", "Amount": Decimal("1.50"), "At": datetime(2026, 1, 1, tzinfo=UTC), "Ö": "ü"}
    assert stable_hash(record) == hashlib.sha256(
        '{"Amount": "1.50", "At": "2026-01-01 00:00:00+00:00", "OrderNo": "PO-1", "Ö": "ü"}'.encode()
    ).hexdigest()
