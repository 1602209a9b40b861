"""The store engine without the optional PostgreSQL driver: a configuration error that names the fix."""

from __future__ import annotations

import sys

import pytest

from ml_connector.errors import ConfigError
from ml_connector.store.db import create_db_engine, require_driver


@pytest.fixture
def no_psycopg(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # `import psycopg` now fails as if it were not installed


@pytest.mark.usefixtures("no_psycopg")
@pytest.mark.parametrize("url", ["postgresql://u@db/x", "postgres://u@db/x", "postgresql+psycopg://u@db/x"])
def test_a_postgres_url_without_psycopg_names_store_url_and_the_extra(url: str) -> None:
    with pytest.raises(ConfigError) as err:
        create_db_engine(url)
    assert err.value.path == "store.url"
    assert "pip install 'ml-connector[postgres]'" in str(err.value)


@pytest.mark.usefixtures("no_psycopg")
def test_sqlite_needs_no_driver() -> None:
    require_driver("sqlite:///state.sqlite")
    require_driver("")
