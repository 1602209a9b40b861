"""Shared fixtures. Tests talk to the simulators over real loopback HTTP (uvicorn in a thread)."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session")
def pg_dsn() -> str | None:
    """A PostgreSQL DSN for store and engine tests, from ML_CONNECTOR_TEST_PG_DSN (CI always sets it)."""
    return os.environ.get("ML_CONNECTOR_TEST_PG_DSN")
