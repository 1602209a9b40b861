"""The runner's tables in `check`: the job queue's schema (``runner.kind: procrastinate``) and the shared rate-bucket
tables (``runner.rate_buckets: postgres``). Reads only: nothing is created or migrated.

procrastinate keeps no version in the database, so the queue's version is what its functions say: every function
the installed procrastinate's schema creates must be there (a release that changes the schema adds ``_vN``
functions); one missing means the tables were created by an older procrastinate and its migrations are due.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Callable
from importlib.metadata import version

from sqlalchemy import Connection, inspect, text

from ml_connector.config.models import ConnectorConfig
from ml_connector.diagnostics.results import FAIL, PASS, CheckResult, why
from ml_connector.store.db import POSTGRES_EXTRA_FIX, create_db_engine

MIGRATE_FIX = "run `ml-connector migrate` once (it creates the job queue's tables and upgrades the store's schema)"
QUEUE_UPGRADE_FIX = (
    "stop the workers, back up the store, then apply procrastinate's migrations up to this version "
    "(`procrastinate schema --migrations-path` prints where they are; docs/operations.md, Upgrades with "
    "workers running)"
)
BUCKET_TABLES = ("rate_buckets", "rate_holds", "rate_quota")
_FUNCTION = re.compile(r"CREATE\s+(?:OR\s+REPLACE\s+)?FUNCTION\s+(?:public\.)?(\w+)", re.IGNORECASE)
_PRESENT_FUNCTIONS = text(
    "SELECT DISTINCT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
    "WHERE n.nspname = ANY(current_schemas(false)) AND p.proname LIKE 'procrastinate%'"
)


def runner_results(config: ConnectorConfig) -> list[CheckResult]:
    """The ``job queue schema`` row with ``runner.kind: procrastinate`` and the ``rate-bucket tables`` row with
    ``runner.rate_buckets: postgres`` (none with the defaults). Call once ``store.url`` is known reachable."""
    url = config.store.url
    if url is None:
        return []
    checks: list[tuple[str, Callable[[Connection], CheckResult]]] = []
    if config.runner.kind == "procrastinate":
        checks.append(("job queue schema", _job_queue))
    if config.runner.rate_buckets == "postgres":
        checks.append(("rate-bucket tables", _bucket_tables))
    if not checks:
        return []
    engine = create_db_engine(url)
    try:
        with engine.connect() as conn:
            return [_guarded(name, check, conn) for name, check in checks]
    except Exception as exc:  # the store row already passed: a failure here is this row's, not a crash
        return [CheckResult("store", name, FAIL, why(exc), MIGRATE_FIX) for name, _ in checks]
    finally:
        engine.dispose()


def _guarded(name: str, check: Callable[[Connection], CheckResult], conn: Connection) -> CheckResult:
    try:
        result = check(conn)
    except Exception as exc:  # one row's database error (a missing privilege on a catalog) is that row's failure
        conn.rollback()
        return CheckResult("store", name, FAIL, why(exc), MIGRATE_FIX)
    return result


def needed_functions() -> frozenset[str]:
    """The functions the installed procrastinate's schema creates."""
    from procrastinate.schema import SchemaManager

    return frozenset(_FUNCTION.findall(SchemaManager.get_schema()))


def _job_queue(conn: Connection) -> CheckResult:
    name = "job queue schema"
    if importlib.util.find_spec("procrastinate") is None:
        return CheckResult("store", name, FAIL, "the procrastinate package is not installed", POSTGRES_EXTRA_FIX)
    release = version("procrastinate")
    if conn.execute(text("SELECT to_regclass('procrastinate_jobs')")).scalar() is None:
        return CheckResult("store", name, FAIL, "no job queue tables in the store's database", MIGRATE_FIX)
    present = {str(row[0]) for row in conn.execute(_PRESENT_FUNCTIONS)}
    missing = sorted(needed_functions() - present)
    if missing:
        shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        detail = f"older than procrastinate {release} needs (missing {shown})"
        return CheckResult("store", name, FAIL, detail, QUEUE_UPGRADE_FIX)
    return CheckResult("store", name, PASS, f"present, as procrastinate {release} needs")


def _bucket_tables(conn: Connection) -> CheckResult:
    name = "rate-bucket tables"
    missing = [table for table in BUCKET_TABLES if not inspect(conn).has_table(table)]
    if missing:
        return CheckResult(
            "store", name, FAIL, f"missing {', '.join(missing)} (the store's schema is older)", MIGRATE_FIX
        )
    refused = [
        table
        for table in BUCKET_TABLES
        if not conn.execute(
            text("SELECT has_table_privilege(:t, 'SELECT,INSERT,UPDATE,DELETE')"), {"t": table}
        ).scalar()
    ]
    if refused:
        user = conn.execute(text("SELECT current_user")).scalar()
        return CheckResult(
            "store",
            name,
            FAIL,
            f"the database user {user} may not write {', '.join(refused)}",
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON {', '.join(refused)} TO {user}",
        )
    return CheckResult("store", name, PASS, f"{', '.join(BUCKET_TABLES)} present and writable")
