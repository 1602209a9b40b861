"""The connector commands as an operator runs them: output and exit codes a cron job can rely on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml
from e2e.harness import World, example_config, oauth_refresh_token, world


def _config(w: World, tmp_path: Path, **overrides: object) -> Path:
    data = example_config()
    data["ifs"].update(url=w.ifs.url, http={"backoff_initial": 0.05, "backoff_max": 0.2, "max_attempts": 2})
    data["jira"].update(url=w.jira.url, http={"backoff_initial": 0.05, "backoff_max": 0.2, "max_attempts": 2})
    data["store"] = {"url": f"sqlite:///{tmp_path / 'state.sqlite'}"}
    data.update(overrides)
    path = tmp_path / "ml-connector.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ML_CONNECTOR_LOG_LEVEL": "ERROR", "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "ml_connector.cli", *args], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=120)


def test_sync_status_records_audit_replay(tmp_path: Path) -> None:
    with world(purchase_orders=25, work_orders=5) as w:
        long_key = sorted(r["OrderNo"] for r in w.ifs_rows("PurchaseOrder") if r["Objstate"] != "Cancelled")[0]
        w.ifs_state.edit("PurchaseOrder", long_key, {"Description": "z" * 300})
        path = _config(w, tmp_path)

        dry = _cli("sync", "--dry-run", "-c", str(path))
        assert dry.returncode == 1, dry.stderr  # a record would fail: scripts see it
        assert "Dry run: nothing was written" in dry.stdout and "would_create" in dry.stdout
        assert w.jira_writes() == {}

        first = _cli("sync", "-c", str(path))
        assert first.returncode == 1, first.stderr  # one record parked
        assert "created" in first.stdout and "parked" in first.stdout
        assert "1 parked in the failed queue" in first.stdout and "replay --failed" in first.stdout
        assert "1 x summary too long: summary is" in first.stdout  # the reason, grouped, with the fix
        assert "fix: change the template flows[0].mapping.summary" in first.stdout

        idle = _cli("sync", "-c", str(path))  # nothing new: a record parked earlier does not fail this run
        assert idle.returncode == 0, idle.stdout + idle.stderr
        assert "1 record(s) parked by earlier runs wait in the failed queue" in idle.stdout

        status = _cli("status", "-c", str(path))
        assert status.returncode == 0 and "purchase_orders" in status.stdout
        assert "1 parked" in status.stdout  # the last run succeeded, the flow still has a failed record

        parked = _cli("records", "--state", "parked", "--json", "-c", str(path))
        rows = [json.loads(line) for line in parked.stdout.splitlines()]
        assert [r["key"] for r in rows] == [long_key] and "summary is" in rows[0]["error"]
        failed = _cli("records", "--state", "failed", "--json", "-c", str(path))
        assert failed.returncode == 0 and [json.loads(line) for line in failed.stdout.splitlines()] == rows

        synced = _cli("records", "--state", "synced", "--json", "-c", str(path))
        linked = [json.loads(line) for line in synced.stdout.splitlines()]
        assert linked and all(r["jira_url"].endswith(f"/browse/{r['jira_key']}") for r in linked)
        table = _cli("records", "--state", "synced", "-c", str(path))
        assert f"/browse/{linked[0]['jira_key']}" in table.stdout

        trail = _cli("audit", long_key, "-c", str(path))
        assert trail.returncode == 0 and "failed" in trail.stdout and "summary is" in trail.stdout
        _store_commands_need_no_secrets(path, long_key)

        w.ifs_state.edit("PurchaseOrder", long_key, {"Description": "fixed in IFS"})
        replayed = _cli("replay", long_key, "-c", str(path))
        assert replayed.returncode == 0, replayed.stdout + replayed.stderr
        assert "re-queued 1 record" in replayed.stdout
        after = _cli("records", "--state", "parked", "--json", "-c", str(path))
        assert after.stdout.strip() == ""
        trail = _cli("audit", long_key, "-c", str(path))
        assert "replayed" in trail.stdout and "created" in trail.stdout
        # Field-level changes by name: the first successful mapping sets every field (custom ones by their name).
        assert "Summary:" in trail.stdout and "Supplier:" in trail.stdout and "customfield_" not in trail.stdout

        second = _cli("sync", "-c", str(path))
        assert second.returncode == 0, second.stderr


def test_exit_codes_for_config_and_auth_problems(tmp_path: Path) -> None:
    missing = _cli("status", "-c", str(tmp_path / "nope.yaml"))
    assert missing.returncode == 2 and "ml-connector init" in missing.stderr
    assert _cli("init", str(tmp_path / "c.yaml")).returncode == 0
    again = _cli("init", str(tmp_path / "c.yaml"))
    assert again.returncode == 2 and "--force" in again.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text((tmp_path / "c.yaml").read_text().replace("page_size: 1000", "page_size: 9000"))
    invalid = _cli("sync", "-c", str(bad))
    assert invalid.returncode == 2 and "ifs.page_size" in invalid.stderr and "Traceback" not in invalid.stderr
    with world(purchase_orders=3, work_orders=0) as w:
        data = example_config()
        path = _config(w, tmp_path, ifs={**data["ifs"], "url": w.ifs.url, "client_secret": "wrong-secret-value"})
        denied = _cli("sync", "-c", str(path))
        assert denied.returncode == 3, denied.stderr
        assert "AuthError" in denied.stderr and "wrong-secret-value" not in denied.stderr + denied.stdout
        assert "Traceback" not in denied.stderr


def test_oauth_refresh_token_rotation_survives_between_commands(tmp_path: Path) -> None:
    """Jira rotates the refresh token on every use: each command must leave the new one for the next."""
    with world(purchase_orders=4, work_orders=0) as w:
        auth = {"kind": "oauth", "client_id": "sim-oauth-client", "client_secret": "sim-oauth-secret",
                "refresh_token": oauth_refresh_token(w.jira.url), "auth_url": w.jira.url, "api_url": w.jira.url}
        data = example_config()
        path = _config(w, tmp_path, jira={**data["jira"], "url": w.jira.url, "auth": auth})
        for _ in range(3):
            done = _cli("sync", "-c", str(path))
            assert done.returncode == 0, done.stderr
        assert "sim-oauth-secret" not in done.stdout + done.stderr
        busy = subprocess.run([sys.executable, "-c", (
            "import sys; from ml_connector.store import Store; from ml_connector.engine import flow_lock; "
            f"s = Store.open('sqlite:///{tmp_path / 'state.sqlite'}'); "
            "cm = flow_lock(s, 'purchase_orders'); cm.__enter__(); "
            "import subprocess, os; "
            f"r = subprocess.run([sys.executable, '-m', 'ml_connector.cli', 'sync', '-f', 'purchase_orders', '-c', "
            f"'{path}'], capture_output=True, text=True); print(r.returncode); print(r.stderr)")],
            capture_output=True, text=True, timeout=120)
        code, _, err = busy.stdout.partition("\n")
        assert code == "6", busy.stdout + busy.stderr
        assert "is being run by" in err


def _store_commands_need_no_secrets(path: Path, key: str) -> None:
    """status, records and audit only read the store: unset IFS/Jira secrets do not stop them; sync still says."""
    data = yaml.safe_load(path.read_text())
    data["ifs"]["client_secret"] = "${MLC_TEST_UNSET_IFS_SECRET}"
    data["jira"]["auth"]["api_token"] = "${MLC_TEST_UNSET_JIRA_TOKEN}"
    bare = path.with_name("no-secrets.yaml")
    bare.write_text(yaml.safe_dump(data))
    for args in (["status"], ["records", "--state", "failed"], ["audit", key]):
        done = _cli(*args, "-c", str(bare))
        assert done.returncode == 0, (args, done.stdout, done.stderr)
        assert key in done.stdout or args == ["status"]
    sync = _cli("sync", "-c", str(bare))
    assert sync.returncode == 2 and "MLC_TEST_UNSET_IFS_SECRET" in sync.stderr, sync.stderr
