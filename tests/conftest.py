"""Shared fixtures. Tests talk to the simulators over real loopback HTTP (uvicorn in a thread)."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from sqlalchemy import text

from ml_connector.store import Store
from ml_connector.store.db import create_db_engine
from ml_connector.store.schema import metadata


def _quiet_structlog() -> None:
    structlog.reset_defaults()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))


_quiet_structlog()


@pytest.fixture(autouse=True)
def _isolated_logging() -> Iterator[None]:
    """Tests (and CLI commands run in-process) may point logging at a stream pytest closes afterwards; restore."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    _quiet_structlog()


def pg_dsn() -> str | None:
    """PostgreSQL DSN for store and engine tests, from ML_CONNECTOR_TEST_PG_DSN (CI always sets it)."""
    return os.environ.get("ML_CONNECTOR_TEST_PG_DSN")


def _backends() -> list[object]:
    skip_pg = pytest.mark.skipif(pg_dsn() is None, reason="ML_CONNECTOR_TEST_PG_DSN not set (CI sets it)")
    return ["sqlite", pytest.param("postgresql", marks=[pytest.mark.postgres, skip_pg])]


def reset_postgres(dsn: str) -> None:
    engine = create_db_engine(dsn)
    with engine.begin() as conn:
        metadata.drop_all(conn)
        conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    engine.dispose()


def open_store(backend: str, tmp_path: Path) -> Store:
    if backend == "sqlite":
        return Store.open(f"sqlite:///{tmp_path / 'state.sqlite'}")
    dsn = pg_dsn()
    assert dsn is not None
    reset_postgres(dsn)
    return Store.open(dsn)


@pytest.fixture(params=_backends())
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A freshly migrated store on SQLite, and on PostgreSQL when a DSN is available."""
    s = open_store(request.param, tmp_path)
    yield s
    s.close()
