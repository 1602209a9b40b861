"""The runner rows of `check` on a real PostgreSQL: the job queue's schema (present, and as the installed
procrastinate needs) and the shared rate-bucket tables (present, writable by the configured user)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import make_url, text

from integration.runner.simenv import empty_queue_database, example_config
from ml_connector.config.loader import validate
from ml_connector.config.models import ConnectorConfig
from ml_connector.diagnostics.runner import MIGRATE_FIX, QUEUE_UPGRADE_FIX, needed_functions, runner_results
from ml_connector.runner.jobqueue import ensure_schema
from ml_connector.store import Store
from ml_connector.store.db import create_db_engine

pytestmark = pytest.mark.postgres
PROBE_ROLE = "mlc_check_probe"  # a login role with no grants on the connector's tables


@pytest.fixture
def dsn() -> Iterator[str]:
    yield empty_queue_database()


def _config(url: str, **runner: str) -> ConnectorConfig:
    data = example_config()  # nothing is sent: only the store is read
    data["ifs"].update(url="http://127.0.0.1:9", realm="mlc", client_id="ml-connector", client_secret="s")
    data["jira"].update(url="http://127.0.0.1:9")
    data["jira"]["auth"] = {"kind": "basic", "email": "connector@example.com", "api_token": "sim-api-token"}
    data["store"] = {"url": url}
    data["runner"] = runner
    return validate(ConnectorConfig, data)


def _rows(config: ConnectorConfig) -> dict[str, tuple[str, str, str | None]]:
    return {r.name: (r.status, r.detail, r.fix) for r in runner_results(config)}


def _sql(url: str, statement: str) -> None:
    engine = create_db_engine(url)
    with engine.begin() as conn:
        conn.execute(text(statement))
    engine.dispose()


def test_the_defaults_add_no_row(dsn: str) -> None:
    assert runner_results(_config(dsn)) == []


def test_a_missing_job_queue_says_to_migrate_and_a_created_one_passes(dsn: str) -> None:
    config = _config(dsn, kind="procrastinate")
    Store.open(dsn).close()
    assert _rows(config) == {"job queue schema": ("fail", "no job queue tables in the store's database", MIGRATE_FIX)}
    ensure_schema(dsn)  # what `ml-connector migrate` does
    status, detail, fix = _rows(config)["job queue schema"]
    assert status == "pass" and detail.startswith("present, as procrastinate 3.") and fix is None


def test_a_job_queue_of_an_older_procrastinate_names_what_is_missing(dsn: str) -> None:
    ensure_schema(dsn)
    newest = sorted(needed_functions())[-1]
    assert newest.startswith("procrastinate_")
    _sql(dsn, f"DROP FUNCTION {newest} CASCADE")  # as if created before the release that added it
    status, detail, fix = _rows(_config(dsn, kind="procrastinate"))["job queue schema"]
    assert status == "fail" and f"missing {newest}" in detail and fix == QUEUE_UPGRADE_FIX


def test_rate_bucket_tables_pass_when_migrated_and_fail_with_the_fix_when_missing(dsn: str) -> None:
    config = _config(dsn, rate_buckets="postgres")
    Store.open(dsn).close()
    assert _rows(config) == {
        "rate-bucket tables": ("pass", "rate_buckets, rate_holds, rate_quota present and writable", None)
    }
    _sql(dsn, "DROP TABLE rate_holds")
    assert _rows(config)["rate-bucket tables"] == (
        "fail",
        "missing rate_holds (the store's schema is older)",
        MIGRATE_FIX,
    )


def test_a_user_who_may_not_write_the_bucket_tables_gets_the_grant(dsn: str) -> None:
    Store.open(dsn).close()
    _sql(dsn, f"DROP ROLE IF EXISTS {PROBE_ROLE}")
    _sql(dsn, f"CREATE ROLE {PROBE_ROLE} LOGIN")
    try:
        probe = make_url(dsn).set(username=PROBE_ROLE, password=None).render_as_string(hide_password=False)
        both = _rows(_config(probe, rate_buckets="postgres", kind="procrastinate"))
        status, detail, fix = both["rate-bucket tables"]
        assert (
            status == "fail"
            and detail == f"the database user {PROBE_ROLE} may not write rate_buckets, rate_holds, rate_quota"
        )
        assert fix == f"GRANT SELECT, INSERT, UPDATE, DELETE ON rate_buckets, rate_holds, rate_quota TO {PROBE_ROLE}"
        assert both["job queue schema"][0] == "fail"  # each row tells its own finding
    finally:
        _sql(dsn, f"DROP OWNED BY {PROBE_ROLE}")
        _sql(dsn, f"DROP ROLE {PROBE_ROLE}")


def test_an_unreachable_database_fails_both_rows_without_a_traceback(dsn: str) -> None:
    config = _config("postgresql+psycopg://postgres@127.0.0.1:9/none", kind="procrastinate", rate_buckets="postgres")
    rows = _rows(config)
    assert set(rows) == {"job queue schema", "rate-bucket tables"}
    assert all(status == "fail" and "OperationalError" in detail for status, detail, _ in rows.values())
