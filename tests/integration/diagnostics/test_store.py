"""The store rows of `check` on real databases: reachable, writable, and the schema at this version's head (an older
revision made by migrating a fresh store only part of the way with Alembic itself)."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from conftest import backends, require_pg, reset_postgres
from sqlalchemy import text

from ml_connector.diagnostics.store import NEWER_FIX, UPGRADE_FIX, store_results
from ml_connector.store import Store
from ml_connector.store.db import alembic_config, create_db_engine

HEAD = ScriptDirectory.from_config(alembic_config()).get_current_head()  # a new migration must not break these


def _url(backend: str, tmp_path: Path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'state.sqlite'}"
    dsn = require_pg()
    reset_postgres(dsn)
    return dsn


def _migrate_to(url: str, revision: str) -> None:
    engine = create_db_engine(url)
    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
    engine.dispose()


def _revision(url: str) -> str:
    engine = create_db_engine(url)
    with engine.connect() as conn:
        value = str(conn.execute(text("SELECT version_num FROM alembic_version")).scalar())
    engine.dispose()
    return value


def _rows(url: str) -> dict[str, tuple[str, str, str | None]]:
    return {r.name: (r.status, r.detail, r.fix) for r in store_results(url)}


def test_a_store_not_made_yet_passes_and_is_not_created(tmp_path: Path) -> None:
    rows = _rows(f"sqlite:///{tmp_path / 'sub' / 'state.sqlite'}")
    assert rows["store.url"][0] == "pass" and "reachable, writable" in rows["store.url"][1]
    assert rows["store schema"][0] == "pass" and "first command creates it" in rows["store schema"][1]
    assert not (tmp_path / "sub").exists()


@pytest.mark.parametrize("backend", backends())
def test_a_migrated_store_passes(tmp_path: Path, backend: str) -> None:
    url = _url(backend, tmp_path)
    Store.open(url).close()
    rows = _rows(url)
    assert rows["store.url"][0] == "pass"
    assert rows["store schema"] == ("pass", f"migrated (revision {HEAD})", None)


@pytest.mark.parametrize("backend", backends())
def test_an_older_revision_fails_with_the_upgrade_fix_and_check_does_not_upgrade_it(
    tmp_path: Path, backend: str
) -> None:
    url = _url(backend, tmp_path)
    _migrate_to(url, "0002")
    status, detail, fix = _rows(url)["store schema"]
    assert status == "fail" and detail == f"revision 0002; this version needs {HEAD}" and fix == UPGRADE_FIX
    assert _revision(url) == "0002"  # check reads only
    Store.open(url).close()  # what the fix's `ml-connector migrate` does
    assert _rows(url)["store schema"][0] == "pass"


def test_a_revision_from_a_newer_version_names_that_version(tmp_path: Path) -> None:
    url = _url("sqlite", tmp_path)
    Store.open(url).close()
    engine = create_db_engine(url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0099'"))
    engine.dispose()
    status, detail, fix = _rows(url)["store schema"]
    assert status == "fail" and f"0099 is newer than this version knows ({HEAD})" in detail and fix == NEWER_FIX


@pytest.mark.postgres
def test_a_read_only_postgres_session_fails_the_store_row() -> None:
    dsn = require_pg()
    reset_postgres(dsn)
    Store.open(dsn).close()
    separator = "&" if "?" in dsn else "?"
    read_only = f"{dsn}{separator}options=-c%20default_transaction_read_only%3Don"  # what a standby answers too
    rows = _rows(read_only)
    assert rows["store.url"][0] == "fail" and "only accepts reads" in rows["store.url"][1]
    assert "store schema" not in rows  # a store that cannot be written is not asked about its schema
