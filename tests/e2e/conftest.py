"""E2E fixtures: each test gets its own pair of simulators; the store runs on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import pg_dsn, reset_postgres


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param(
            "postgresql",
            marks=[
                pytest.mark.postgres,
                pytest.mark.skipif(pg_dsn() is None, reason="ML_CONNECTOR_TEST_PG_DSN not set (CI sets it)"),
            ],
        ),
    ]
)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'state.sqlite'}"
        return
    dsn = pg_dsn()
    assert dsn is not None
    reset_postgres(dsn)
    yield dsn
