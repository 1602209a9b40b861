"""A real SQLite store per test: the engine's commit and apply logic run against it without HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ml_connector.store import Store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    store = Store.open(f"sqlite:///{tmp_path / 'state.sqlite'}")
    yield store
    store.close()
