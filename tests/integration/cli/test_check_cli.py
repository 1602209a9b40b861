"""``ml-connector check`` as a command: the table and exit code, and a refusal before anything is touched. What each
check reports is tested in tests/integration/diagnostics."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ml_connector.cli.app import ExitCode

from ..diagnostics.helpers import check, json_rows
from ..runner.simenv import example_config, simulators, write_config


def test_example_config_passes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with simulators(purchase_orders=5, work_orders=5, seed=7) as (ifs, jira):
        monkeypatch.setenv("IFS_URL", ifs.url)
        monkeypatch.setenv("JIRA_URL", jira.url)
        code, output = check(tmp_path, example_config())
    assert code == ExitCode.OK, output
    assert "all passed" in output
    assert "FAIL" not in output
    assert not (tmp_path / "state.sqlite").exists(), "check must not create or write the store (Basic auth)"


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:///{tmp}/a-file/state.sqlite",  # a folder that cannot be created: a file is in the way
        "postgresql+psycopg://nobody:pw@127.0.0.1:1/none",  # nothing listens
        "not a url",
    ],
)
def test_an_unusable_store_url_fails_check_with_the_config_exit_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    (tmp_path / "a-file").write_text("")
    with simulators(purchase_orders=2, work_orders=2, seed=7) as (ifs, jira):
        monkeypatch.setenv("IFS_URL", ifs.url)
        monkeypatch.setenv("JIRA_URL", jira.url)
        code, rows = json_rows(tmp_path, {**example_config(), "store": {"url": url.format(tmp=tmp_path)}})
    assert code == ExitCode.CONFIG, rows
    store = [r for r in rows if r["system"] == "store"]
    assert [r["status"] for r in store] == ["fail"] and "set store.url to a writable SQLite file" in store[0]["fix"]
    assert "pw@" not in str(rows)


# -- a weak webhook secret on a real Jira stops the command before it reads anything (issue 15) ------------------------

CLI = str(Path(sys.executable).parent / "ml-connector")


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"JIRA_URL", "JIRA_WEBHOOK_SECRET"}}
    return subprocess.run([CLI, *args], env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("command", ["check", "run"])
def test_simulator_secret_on_a_real_jira_url_is_refused(tmp_path: Path, command: str) -> None:
    data = example_config()
    data["jira"].update(url="https://acme.atlassian.net", webhook_secret="sim-webhook-secret")
    data["store"] = {"url": f"sqlite:///{tmp_path / 'state.sqlite'}"}
    path = write_config(tmp_path, data)
    done = _cli(command, "--config", str(path))
    assert done.returncode == ExitCode.CONFIG, done.stdout + done.stderr
    message = " ".join(done.stderr.split())
    assert "jira.webhook_secret" in message and "published simulator default" in message
    assert "sim-webhook-secret" not in done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "state.sqlite").exists(), f"{command} must refuse before touching anything"
    # The simulator marker does not help on a real URL either.
    data["jira"]["simulator"] = True
    done = _cli(command, "--config", str(write_config(tmp_path, data)))
    assert done.returncode == ExitCode.CONFIG
    assert "jira.simulator" in " ".join(done.stderr.split())


def test_an_old_store_schema_fails_check_with_the_error_exit_code_until_migrate_upgrades_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from alembic import command

    from ml_connector.store.db import alembic_config, create_db_engine

    url = f"sqlite:///{tmp_path / 'state.sqlite'}"
    engine = create_db_engine(url)
    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0003")  # the store an older ml-connector left behind
    engine.dispose()
    with simulators(purchase_orders=2, work_orders=2, seed=7) as (ifs, jira):
        monkeypatch.setenv("IFS_URL", ifs.url)
        monkeypatch.setenv("JIRA_URL", jira.url)
        code, rows = json_rows(tmp_path, {**example_config(), "store": {"url": url}})
        assert code == ExitCode.ERROR, rows  # not 2: store.url itself is right
        schema = next(r for r in rows if r["name"] == "store schema")
        assert schema["status"] == "fail" and "`ml-connector migrate`" in schema["fix"]
        status = subprocess.run([CLI, "migrate", "--config", str(tmp_path / "ml-connector.yaml")],
                                capture_output=True, text=True, timeout=120)
        assert status.returncode == 0, status.stderr
        code, rows = json_rows(tmp_path, {**example_config(), "store": {"url": url}})
    assert code == ExitCode.OK, rows


@pytest.mark.postgres
def test_a_missing_job_queue_and_bucket_tables_fail_check_until_migrate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from conftest import require_pg, reset_postgres

    from ..runner.simenv import drop_job_queue

    url = require_pg()
    reset_postgres(url)  # no store tables yet, so no rate-bucket tables either
    drop_job_queue(url)
    data = {**example_config(), "store": {"url": url}, "runner": {"kind": "procrastinate", "rate_buckets": "postgres"}}
    with simulators(purchase_orders=2, work_orders=2, seed=7) as (ifs, jira):
        monkeypatch.setenv("IFS_URL", ifs.url)
        monkeypatch.setenv("JIRA_URL", jira.url)
        code, rows = json_rows(tmp_path, data)
        assert code == ExitCode.ERROR, rows
        runner = {r["name"]: r for r in rows if r["name"] in ("job queue schema", "rate-bucket tables")}
        assert [r["status"] for r in runner.values()] == ["fail", "fail"], rows
        assert all("`ml-connector migrate`" in r["fix"] for r in runner.values())
        migrate = subprocess.run([CLI, "migrate", "--config", str(tmp_path / "ml-connector.yaml")],
                                 capture_output=True, text=True, timeout=120)
        assert migrate.returncode == 0, migrate.stderr
        code, rows = json_rows(tmp_path, data)
    runner = {r["name"]: r["status"] for r in rows if r["name"] in ("job queue schema", "rate-bucket tables")}
    assert runner == {"job queue schema": "pass", "rate-bucket tables": "pass"}
    assert code == ExitCode.OK, rows
