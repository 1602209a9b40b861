"""The store in `check`: reachable, writable, and its schema at the revision this version needs. Reads only: a
SQLite file that is not there yet is not created, and nothing is migrated."""

from __future__ import annotations

import os
from pathlib import Path

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect, make_url, text

from ml_connector.diagnostics.results import FAIL, PASS, CheckResult, why
from ml_connector.store.db import alembic_config, create_db_engine, normalise_url

STORE_FIX = "set store.url to a writable SQLite file (sqlite:///path) or a reachable PostgreSQL database"
# `migrate` does only that (every command that opens the store would too). Operations.md, "Upgrades and
# migrations", says to stop the daemon and back up first.
UPGRADE_FIX = (
    "stop the daemon, back up the store, then run `ml-connector migrate` once "
    "(docs/operations.md, Upgrades and migrations)"
)
NEWER_FIX = "run the ml-connector version that upgraded this store, or restore a backup taken before that upgrade"


def store_results(url: str) -> list[CheckResult]:
    """The ``store.url`` row (reachable and writable); when it passes, the ``store schema`` row."""
    try:
        revision = _probe(url)
    except Exception as exc:  # any URL, driver, path or permission error: all mean store.url is unusable
        return [CheckResult("store", "store.url", FAIL, why(exc), STORE_FIX)]
    where = make_url(url).render_as_string(hide_password=True)
    return [CheckResult("store", "store.url", PASS, f"{where}: reachable, writable"), _schema_result(revision)]


_NEW = "<new>"  # no store yet, or an empty database: created and migrated by the first command that opens it


def _sqlite_file(url: str) -> Path | None:
    parsed = make_url(normalise_url(url))
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database or "")


def _writable_folder(path: Path) -> None:
    folder = next(p for p in path.absolute().parents if p.exists())
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        raise PermissionError(f"cannot create files beside {path}: {folder} is not a writable folder")


def _probe(url: str) -> str | None:
    """Raise if the store cannot be read and written; else its Alembic revision (``_NEW`` for none yet)."""
    path = _sqlite_file(url)
    if path is not None:
        _writable_folder(path)  # the database, and in WAL mode its -wal and -shm files, live in that folder
        if not path.exists():
            return _NEW
        if not os.access(path, os.R_OK | os.W_OK):
            raise PermissionError(f"{path} is not readable and writable")
    engine = create_db_engine(url)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
            if conn.dialect.name == "postgresql":
                _postgres_writable(conn)
            return MigrationContext.configure(conn).get_current_revision() or _NEW
    finally:
        engine.dispose()


def _postgres_writable(conn: Connection) -> None:
    """A standby or a read-only role answers reads and refuses every write: say so before the first sync."""
    if conn.execute(text("SHOW transaction_read_only")).scalar() == "on":
        raise PermissionError("the database only accepts reads (transaction_read_only is on: a standby?)")
    if inspect(conn).has_table("records"):
        allowed = conn.execute(text("SELECT has_table_privilege('records', 'INSERT,UPDATE,DELETE')")).scalar()
        if not allowed:
            raise PermissionError("the database user may not write the connector's tables (records)")


def _schema_result(revision: str | None) -> CheckResult:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if revision == _NEW:
        return CheckResult("store", "store schema", PASS, "no store yet: the first command creates it")
    if revision == head:
        return CheckResult("store", "store schema", PASS, f"migrated (revision {head})")
    known = {script.revision for script in ScriptDirectory.from_config(alembic_config()).walk_revisions()}
    if revision in known:
        return CheckResult(
            "store", "store schema", FAIL, f"revision {revision}; this version needs {head}", UPGRADE_FIX
        )
    return CheckResult(
        "store", "store schema", FAIL, f"revision {revision} is newer than this version knows ({head})", NEWER_FIX
    )
