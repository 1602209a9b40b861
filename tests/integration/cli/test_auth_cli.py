"""``ml-connector jira login`` / ``jira logout`` end to end against the Jira simulator's OAuth endpoints (the test
acts as the browser), and the deprecated ``auth jira`` alias."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx2
import pytest
import yaml
from e2e.harness import World, example_config, world

_ENV = {**os.environ, "ML_CONNECTOR_LOG_LEVEL": "ERROR", "COLUMNS": "200", "PYTHONUNBUFFERED": "1"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _config(w: World, tmp_path: Path, secret: str = "sim-oauth-secret", site: str | None = None) -> Path:
    data = example_config()
    auth = {"kind": "oauth", "client_id": "sim-oauth-client", "client_secret": secret,
            "auth_url": w.jira.url, "api_url": w.jira.url}
    data["ifs"].update(url=w.ifs.url)
    # Two attempts, short waits: a persistent token-endpoint fault ends the test in about a second.
    data["jira"].update(url=site or w.jira.url, auth=auth,
                        http={"max_attempts": 2, "backoff_initial": 0.05, "backoff_max": 0.1})
    data["store"] = {"url": f"sqlite:///{tmp_path / 'state.sqlite'}"}
    path = tmp_path / "ml-connector.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ml_connector.cli", *args], capture_output=True, text=True,
                          env=_ENV, timeout=120)


def _stored_grants(tmp_path: Path) -> int:
    """Rows in the store's credentials table (read with sqlite3 itself, not through the code under test)."""
    with sqlite3.connect(tmp_path / "state.sqlite") as db:
        count: int = db.execute("SELECT count(*) FROM credentials").fetchone()[0]
    return count


def _consented_redirect(w: World, redirect: str = "http://127.0.0.1:8765/callback") -> str:
    """The redirect URL (with a fresh code) the simulator sends the browser to after the integration user approves."""
    params = {"audience": "api.atlassian.com", "client_id": "sim-oauth-client", "response_type": "code",
              "scope": "read:jira-work offline_access", "redirect_uri": redirect, "state": "s"}
    location: str = httpx2.get(f"{w.jira.url}/authorize", params=params).headers["location"]
    return location


def _one_line_error(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def _start_listening(path: Path, port: int) -> tuple[subprocess.Popen[str], str]:
    """The command waiting on its loopback listener, and the consent URL it printed."""
    proc = subprocess.Popen([sys.executable, "-m", "ml_connector.cli", "jira", "login", "--listen",
                             f"127.0.0.1:{port}", "--timeout", "60", "-c", str(path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_ENV)
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("http"):
            return proc, line.strip()
    raise AssertionError(proc.stderr.read() if proc.stderr else "no consent URL printed")


def _finish(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=60)
    return proc.returncode, out, err


def test_listener_consent_stores_the_grant_and_sync_uses_it(tmp_path: Path) -> None:
    with world(purchase_orders=3, work_orders=0) as w:
        path, port = _config(w, tmp_path), _free_port()
        proc, url = _start_listening(path, port)
        query = parse_qs(urlsplit(url).query)
        assert "offline_access" in query["scope"][0].split()
        assert query["redirect_uri"] == [f"http://127.0.0.1:{port}/callback"] and len(query["state"][0]) >= 20
        consent = httpx2.get(url)  # the simulator consents as the integration user and redirects with the code
        assert consent.status_code == 302
        assert httpx2.get(f"http://127.0.0.1:{port}/favicon.ico").status_code == 404  # not the redirect: waits on
        assert httpx2.get(consent.headers["location"]).status_code == 200
        code, out, err = _finish(proc)
        assert code == 0, err
        assert "grant stored" in out and "cloud id" in out
        assert "sim-oauth-secret" not in out + err
        done = _cli("sync", "-c", str(path))  # no refresh_token in the config: the stored grant authenticates
        assert done.returncode == 0, done.stdout + done.stderr
        assert len(w.jira_issues()) == 3
        assert _stored_grants(tmp_path) == 1

        out = _cli("jira", "logout", "-c", str(path))
        assert out.returncode == 0, out.stderr
        assert "Forgot the Jira OAuth grant" in out.stdout and "Connected apps" in out.stdout
        assert _stored_grants(tmp_path) == 0
        w.jira_sim.clear_requests()
        refused = _cli("sync", "-c", str(path))
        assert refused.returncode == 3, refused.stdout + refused.stderr
        assert "ml-connector jira login" in refused.stderr and "Traceback" not in refused.stderr
        assert w.jira_sim.counts().get("POST /oauth/token", 0) == 0  # no grant: nothing to send to Atlassian
        again = _cli("jira", "logout", "-c", str(path))
        assert again.returncode == 0 and "No Jira OAuth grant was stored" in again.stdout


def test_state_mismatch_and_denied_consent_fail_clearly(tmp_path: Path) -> None:
    with world(purchase_orders=1, work_orders=0) as w:
        path, port = _config(w, tmp_path), _free_port()
        proc, url = _start_listening(path, port)
        forged = urlsplit(httpx2.get(url).headers["location"])
        code_param = parse_qs(forged.query)["code"][0]
        httpx2.get(f"http://127.0.0.1:{port}/callback?" + urlencode({"code": code_param, "state": "forged"}))
        code, _, err = _finish(proc)
        assert code == 3 and "different state" in _one_line_error(err) and "ml-connector jira login" in err
        assert _stored_grants(tmp_path) == 0

        proc, url = _start_listening(path, port)
        state = parse_qs(urlsplit(url).query)["state"][0]
        denial = {"error": "access_denied", "error_description": "User did not authorize", "state": state}
        httpx2.get(f"http://127.0.0.1:{port}/callback?" + urlencode(denial))
        code, _, err = _finish(proc)
        assert code == 3 and "consent was not given: access_denied" in _one_line_error(err)
        assert "run `ml-connector jira login` again" in err and _stored_grants(tmp_path) == 0
        assert _cli("sync", "-c", str(path)).returncode == 3  # nothing was stored


def test_pasted_code_with_a_wrong_client_secret_is_refused(tmp_path: Path) -> None:
    with world(purchase_orders=1, work_orders=0) as w:
        path = _config(w, tmp_path, secret="not-the-secret")
        redirect = "http://127.0.0.1:8765/callback"
        params = {"audience": "api.atlassian.com", "client_id": "sim-oauth-client", "response_type": "code",
                  "scope": "read:jira-work offline_access", "redirect_uri": redirect, "state": "s"}
        location = httpx2.get(f"{w.jira.url}/authorize", params=params).headers["location"]
        refused = _cli("jira", "login", "--code", location, "-c", str(path))
        assert refused.returncode == 3, refused.stdout + refused.stderr
        assert "check jira.auth.client_id and client_secret" in refused.stderr
        assert "not-the-secret" not in refused.stderr


def test_no_redirect_within_the_timeout(tmp_path: Path) -> None:
    with world(purchase_orders=1, work_orders=0) as w:
        path = _config(w, tmp_path)
        waited = _cli("jira", "login", "--listen", f"127.0.0.1:{_free_port()}", "--timeout", "0.5", "-c", str(path))
        assert waited.returncode == 5 and "no consent redirect arrived within 0.5 s" in waited.stderr


def test_pasted_redirect_url_is_state_checked_and_stored(tmp_path: Path) -> None:
    with world(purchase_orders=1, work_orders=0) as w:
        path = _config(w, tmp_path)
        proc = subprocess.Popen([sys.executable, "-m", "ml_connector.cli", "jira", "login", "-c", str(path)],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=_ENV)
        assert proc.stdout is not None and proc.stdin is not None
        url = next(line.strip() for line in proc.stdout if line.startswith("http"))
        assert parse_qs(urlsplit(url).query)["redirect_uri"] == ["http://127.0.0.1:8765/callback"]
        proc.stdin.write(httpx2.get(url).headers["location"] + "\n")
        proc.stdin.flush()
        code, out, err = _finish(proc)
        assert code == 0 and "grant stored" in out, err
        assert _cli("sync", "-c", str(path)).returncode == 0


def test_consent_replaces_a_grant_stored_under_a_lost_key(tmp_path: Path) -> None:
    """`sync` says "run `ml-connector jira login` again" when the stored grant cannot be decrypted: the login must
    work then."""
    with world(purchase_orders=1, work_orders=0) as w:
        path, port = _config(w, tmp_path), _free_port()
        proc, url = _start_listening(path, port)
        httpx2.get(httpx2.get(url).headers["location"])
        assert _finish(proc)[0] == 0
        (tmp_path / "state.sqlite.key").unlink()  # the key is lost: a new one is made, the old grant is unreadable
        assert "run `ml-connector jira login` again" in _cli("sync", "-c", str(path)).stderr
        proc, url = _start_listening(path, port)
        httpx2.get(httpx2.get(url).headers["location"])
        code, _, err = _finish(proc)
        assert code == 0, err
        assert _cli("sync", "-c", str(path)).returncode == 0


@pytest.mark.parametrize(
    ("fault", "exit_code", "fix"),
    [
        ({"status": 400}, 3, "check jira.auth.auth_url and that --redirect-uri is the app's callback URL"),
        ({"status": 500}, 4, "run `ml-connector jira login` again in a few minutes"),
        ({"kind": "html"}, 4, "run `ml-connector jira login` again in a few minutes"),
    ],
    ids=["400", "500", "html"],
)
def test_code_exchange_failure_is_one_line_with_the_fix_and_stores_nothing(
    tmp_path: Path, fault: dict[str, object], exit_code: int, fix: str
) -> None:
    with world(purchase_orders=1, work_orders=0) as w:
        path = _config(w, tmp_path)
        location = _consented_redirect(w)
        rule = {"path_contains": "/oauth/token", "method": "POST", "count": 50, **fault}
        w.jira_sim.faults(fail_next=[rule])  # persistent: every attempt of the exchange meets it
        failed = _cli("jira", "login", "--code", location, "-c", str(path))
        assert failed.returncode == exit_code, failed.stdout + failed.stderr
        assert fix in _one_line_error(failed.stderr)
        assert "grant stored" not in failed.stdout and _stored_grants(tmp_path) == 0


def test_a_grant_that_does_not_cover_the_site_is_not_stored(tmp_path: Path) -> None:
    with world(purchase_orders=1, work_orders=0) as w:
        other_site = w.jira.url.replace("127.0.0.1", "localhost")  # the config names a site the grant cannot reach
        path = _config(w, tmp_path, site=other_site)
        failed = _cli("jira", "login", "--code", _consented_redirect(w), "-c", str(path))
        assert failed.returncode == 3, failed.stdout + failed.stderr
        line = _one_line_error(failed.stderr)
        assert f"does not cover {other_site}" in line and w.jira.url in line
        assert "set jira.url to the site the grant covers" in line
        assert _stored_grants(tmp_path) == 0


def test_auth_jira_is_a_hidden_alias_that_names_the_new_command(tmp_path: Path) -> None:
    with world(purchase_orders=1, work_orders=0) as w:
        path = _config(w, tmp_path)
        done = _cli("auth", "jira", "--code", _consented_redirect(w), "-c", str(path))
        assert done.returncode == 0 and "grant stored" in done.stdout, done.stderr
        assert done.stderr.count("is now `ml-connector jira login`") == 1
        assert _stored_grants(tmp_path) == 1
        top = _cli("--help").stdout
        assert "jira" in top and " auth " not in top


def test_a_grant_revoked_at_atlassian_fails_sync_naming_jira_login_which_restores_it(tmp_path: Path) -> None:
    with world(purchase_orders=2, work_orders=0) as w:
        path = _config(w, tmp_path)
        assert _cli("jira", "login", "--code", _consented_redirect(w), "-c", str(path)).returncode == 0
        assert _cli("sync", "-c", str(path)).returncode == 0
        assert w.jira_sim.call("POST", "oauth/revoke") == {"revoked": 1}  # the user removed the app
        w.ifs_state.edit("PurchaseOrder", w.ifs_rows("PurchaseOrder")[0]["OrderNo"], {"Description": "changed"})
        refused = _cli("sync", "-c", str(path))
        assert refused.returncode == 3, refused.stdout + refused.stderr
        assert "Unknown or invalid refresh token" in refused.stderr
        assert "run `ml-connector jira login`" in refused.stderr and "Traceback" not in refused.stderr
        assert _cli("jira", "login", "--code", _consented_redirect(w), "-c", str(path)).returncode == 0
        again = _cli("sync", "-c", str(path))
        assert again.returncode == 0, again.stdout + again.stderr


def test_logout_waits_for_a_running_daemon_that_would_store_the_grant_again(tmp_path: Path) -> None:
    from datetime import timedelta

    from ml_connector.store import Store

    with world(purchase_orders=1, work_orders=0) as w:
        path = _config(w, tmp_path)
        assert _cli("jira", "login", "--code", _consented_redirect(w), "-c", str(path)).returncode == 0
        store = Store.open(f"sqlite:///{tmp_path / 'state.sqlite'}")
        try:
            assert store.leases.acquire("scheduler", "daemon@host:42", timedelta(minutes=5))
            busy = _cli("jira", "logout", "-c", str(path))
            assert busy.returncode == 6, busy.stdout + busy.stderr
            assert "daemon@host:42 uses this store" in _one_line_error(busy.stderr)
            assert _stored_grants(tmp_path) == 1
            store.leases.release("scheduler", "daemon@host:42")
        finally:
            store.close()
        assert _cli("jira", "logout", "-c", str(path)).returncode == 0
        assert _stored_grants(tmp_path) == 0


def _register_webhook(path: Path) -> None:
    """What the daemon does at start with OAuth and webhooks on: register the connector's dynamic webhook."""
    from ml_connector.cli.context import open_connector
    from ml_connector.runner.webhooks import WebhookManager

    connector = open_connector(path)
    try:
        WebhookManager.for_config(connector.config, lambda: connector.jira, connector.store).ensure()
    finally:
        connector.close()


def _stored_webhooks(tmp_path: Path) -> int:
    with sqlite3.connect(tmp_path / "state.sqlite") as db:
        count: int = db.execute("SELECT count(*) FROM webhook_subscriptions").fetchone()[0]
    return count


def _logged_in_with_a_webhook(w: World, tmp_path: Path) -> Path:
    path = _config(w, tmp_path)
    data = yaml.safe_load(path.read_text())
    data["web"] = {"public_url": "https://connector.example.com"}
    path.write_text(yaml.safe_dump(data))
    assert _cli("jira", "login", "--code", _consented_redirect(w), "-c", str(path)).returncode == 0
    _register_webhook(path)
    assert _stored_webhooks(tmp_path) == 1
    return path


def test_logout_deletes_the_grants_webhooks_first_and_keeps_the_grant_while_it_cannot(tmp_path: Path) -> None:
    """Dynamic webhooks belong to the grant: forgotten first, they would deliver events for up to 30 more days."""
    with world(purchase_orders=1, work_orders=0) as w:
        path = _logged_in_with_a_webhook(w, tmp_path)
        w.jira_sim.faults(fail_next=[{"path_contains": "/rest/api/3/webhook", "method": "DELETE", "count": 50}])
        refused = _cli("jira", "logout", "-c", str(path))
        assert refused.returncode == 4, refused.stdout + refused.stderr
        assert "Could not delete the Jira webhook(s)" in refused.stderr and "grant is kept" in refused.stderr
        assert "Traceback" not in refused.stderr and "sim-oauth-secret" not in refused.stdout + refused.stderr
        assert _stored_grants(tmp_path) == 1 and _stored_webhooks(tmp_path) == 1

        w.jira_sim.faults(fail_next=[])
        w.jira_sim.clear_requests()
        out = _cli("jira", "logout", "-c", str(path))
        assert out.returncode == 0, out.stdout + out.stderr
        assert "Deleted the Jira webhook(s)" in out.stdout and "Forgot the Jira OAuth grant" in out.stdout
        assert w.jira_sim.counts().get("DELETE /rest/api/3/webhook") == 1
        assert _stored_grants(tmp_path) == 0 and _stored_webhooks(tmp_path) == 0


def test_logout_keep_webhooks_forgets_the_grant_and_says_until_when_they_deliver(tmp_path: Path) -> None:
    with world(purchase_orders=1, work_orders=0) as w:
        path = _logged_in_with_a_webhook(w, tmp_path)
        w.jira_sim.faults(fail_next=[{"path_contains": "/rest/api/3/webhook", "method": "DELETE", "count": 50}])
        out = _cli("jira", "logout", "--keep-webhooks", "-c", str(path))
        assert out.returncode == 0, out.stdout + out.stderr
        assert "Could not delete the Jira webhook(s)" in out.stderr and " UTC unless" in out.stderr
        assert "Forgot the Jira OAuth grant" in out.stdout and _stored_grants(tmp_path) == 0
