"""Shared fixtures. Tests talk to the simulators over real loopback HTTP (uvicorn in a thread)."""

from __future__ import annotations

import functools
import importlib
import logging
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest
import structlog
from sqlalchemy import Engine, create_engine, make_url, text

from ml_connector.store import Store
from ml_connector.store.db import alembic_config, create_db_engine
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


def in_ci() -> bool:
    return os.environ.get("CI") == "true"


def unavailable(reason: str) -> NoReturn:
    """A prerequisite the DESIGN requires is missing: fail under ``CI=true``, skip with the reason elsewhere.
    Works in a test, a fixture or at module level (the whole module is skipped, or fails to collect)."""
    if in_ci():
        pytest.fail(f"{reason} (CI=true: a missing prerequisite fails the run)", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


def require_import(module: str, attr: str | None = None) -> Any:
    """Import a module the tests need (a simulator, Playwright); missing, it is :func:`unavailable`."""
    try:
        loaded = importlib.import_module(module)
    except ImportError as exc:
        unavailable(f"{module} cannot be imported ({exc})")
    if attr is not None and not hasattr(loaded, attr):
        unavailable(f"{module}.{attr} does not exist")
    return loaded


def poll_until(predicate: Callable[[], object], *, timeout: float, interval: float = 0.01) -> bool:
    """Poll ``predicate`` until it is truthy (True) or ``timeout`` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True


def wait_until(
    predicate: Callable[[], object], *, timeout: float = 10.0, interval: float = 0.01, what: str = ""
) -> None:
    """Wait for a condition, failing after ``timeout`` seconds. Tests synchronise on this, never on a bare sleep."""
    if not poll_until(predicate, timeout=timeout, interval=interval):
        raise AssertionError(f"timed out after {timeout} s waiting for {what or predicate!r}")


def pg_dsn() -> str | None:
    """PostgreSQL DSN for store and engine tests, from ML_CONNECTOR_TEST_PG_DSN (CI always sets it). Under
    pytest-xdist each worker has a database of its own beside that one, since tests drop and migrate the schema."""
    dsn = os.environ.get("ML_CONNECTOR_TEST_PG_DSN")
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    return _worker_database(dsn, worker) if dsn and worker else dsn


# (configured DSN, this worker's database name) for each database a worker created; dropped when its session ends.
_WORKER_DATABASES: set[tuple[str, str]] = set()


@functools.cache
def _worker_database(dsn: str, worker: str) -> str:
    """``<database>_<worker id>`` on the same server, created on first use (an earlier run's left-over is reused)."""
    url = make_url(dsn)
    name = f"{url.database}_{worker}"
    _on_admin(dsn, lambda conn: _create_database(conn, name))
    _WORKER_DATABASES.add((dsn, name))
    return url.set(database=name).render_as_string(hide_password=False)


def _create_database(conn: Any, name: str) -> None:
    if conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first() is None:
        conn.execute(text(f'CREATE DATABASE "{name}"'))


def _on_admin(dsn: str, action: Callable[[Any], None]) -> None:
    """Run ``action`` on an autocommit connection to the configured database (CI creates it; the workers' are
    created and dropped from there)."""
    admin = create_engine(make_url(dsn), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            action(conn)
    finally:
        admin.dispose()


def _drop_worker_databases() -> None:
    """A worker's database goes with its session: .ci/run drops only the one it created."""
    for dsn, name in sorted(_WORKER_DATABASES):
        _on_admin(dsn, lambda conn, name=name: conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')))
    _WORKER_DATABASES.clear()


PG_MISSING = "ML_CONNECTOR_TEST_PG_DSN not set (CI sets it)"


def backends() -> list[object]:
    """SQLite, and PostgreSQL marked ``postgres``; a test using it calls ``require_pg`` (fails under CI without it)."""
    return ["sqlite", pytest.param("postgresql", marks=[pytest.mark.postgres])]


def require_pg() -> str:
    dsn = pg_dsn()
    if dsn is None:
        unavailable(PG_MISSING)
    return dsn


def store_at_revision(backend: str, tmp_path: Path, revision: str) -> tuple[str, Engine]:
    """An empty store migrated only up to ``revision``: an upgrade test fills it the old way, then opens it."""
    from alembic import command

    url = f"sqlite:///{tmp_path / 'old.sqlite'}" if backend == "sqlite" else require_pg()
    if backend != "sqlite":
        reset_postgres(url)
    engine = create_db_engine(url)
    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
    return url, engine


def reset_postgres(dsn: str) -> None:
    engine = create_db_engine(dsn)
    with engine.begin() as conn:
        metadata.drop_all(conn)
        conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    engine.dispose()


def open_store(backend: str, tmp_path: Path) -> Store:
    if backend == "sqlite":
        return Store.open(f"sqlite:///{tmp_path / 'state.sqlite'}")
    dsn = require_pg()
    reset_postgres(dsn)
    return Store.open(dsn)


@pytest.fixture(params=backends())
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A freshly migrated store on SQLite, and on PostgreSQL when a DSN is available."""
    s = open_store(request.param, tmp_path)
    yield s
    s.close()


# Under CI=true nothing the DESIGN requires may be skipped: any skip left over (a new skipif, an importorskip) turns
# the session red, so a missing prerequisite can never pass quietly.
_SKIPPED: list[str] = []


def pytest_collectreport(report: pytest.CollectReport) -> None:
    if report.skipped:
        _SKIPPED.append(report.nodeid)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and not hasattr(report, "wasxfail"):
        _SKIPPED.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _drop_worker_databases()
    if in_ci() and _SKIPPED and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


# Under pytest-xdist a directory's conftest (e2e: the chaos matrix table) runs in a worker only: it leaves its
# summary sections (title, lines) in ``config.workeroutput["summary"]`` and this process prints them.
_WORKER_SUMMARIES: list[tuple[str, list[str]]] = []


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    _WORKER_SUMMARIES.extend((title, list(lines)) for title, lines in node.workeroutput.get("summary", []))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for title, lines in _WORKER_SUMMARIES:
        terminalreporter.write_sep("=", title)
        for line in lines:
            terminalreporter.write_line(line)
    if in_ci() and _SKIPPED:
        terminalreporter.write_line(
            f"CI=true: {len(_SKIPPED)} skipped test(s) fail the run: {', '.join(_SKIPPED[:10])}", red=True
        )
