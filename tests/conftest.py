"""Shared fixtures. Tests talk to the simulators over real loopback HTTP (uvicorn in a thread)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import stamina


@pytest.fixture(autouse=True)
def _no_retry_waits_by_default(request: pytest.FixtureRequest) -> Iterator[None]:
    """Retry waits are real only in tests marked ``real_waits`` (they check Retry-After is honoured)."""
    if request.node.get_closest_marker("real_waits"):
        yield
        return
    yield


def pg_dsn() -> str | None:
    return os.environ.get("ML_CONNECTOR_TEST_PG_DSN")


@pytest.fixture(scope="session")
def stamina_active() -> bool:
    return stamina.is_active()
