"""``ml-connector auth jira`` end to end against the Jira simulator's OAuth endpoints (consent driven by the test)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx2
import yaml
from e2e.harness import World, example_config, world

_ENV = {**os.environ, "ML_CONNECTOR_LOG_LEVEL": "ERROR", "COLUMNS": "200", "PYTHONUNBUFFERED": "1"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _config(w: World, tmp_path: Path, secret: str = "sim-oauth-secret") -> Path:
    data = example_config()
    auth = {"kind": "oauth", "client_id": "sim-oauth-client", "client_secret": secret,
            "auth_url": w.jira.url, "api_url": w.jira.url}
    data["ifs"].update(url=w.ifs.url)
    data["jira"].update(url=w.jira.url, auth=auth)
    data["store"] = {"url": f"sqlite:///{tmp_path / 'state.sqlite'}"}
    path = tmp_path / "ml-connector.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ml_connector.cli", *args], capture_output=True, text=True,
                          env=_ENV, timeout=120)


def _start_listening(path: Path, port: int) -> tuple[subprocess.Popen[str], str]:
    """The command waiting on its loopback listener, and the consent URL it printed."""
    proc = subprocess.Popen([sys.executable, "-m", "ml_connector.cli", "auth", "jira", "--listen",
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


def test_state_mismatch_and_denied_consent_fail_clearly(tmp_path: Path) -> None:
    with world(purchase_orders=1, work_orders=0) as w:
        path, port = _config(w, tmp_path), _free_port()
        proc, url = _start_listening(path, port)
        forged = urlsplit(httpx2.get(url).headers["location"])
        code_param = parse_qs(forged.query)["code"][0]
        httpx2.get(f"http://127.0.0.1:{port}/callback?" + urlencode({"code": code_param, "state": "forged"}))
        code, _, err = _finish(proc)
        assert code == 3 and "different state" in err and "Traceback" not in err

        proc, url = _start_listening(path, port)
        state = parse_qs(urlsplit(url).query)["state"][0]
        denial = {"error": "access_denied", "error_description": "User did not authorize", "state": state}
        httpx2.get(f"http://127.0.0.1:{port}/callback?" + urlencode(denial))
        code, _, err = _finish(proc)
        assert code == 3 and "consent was not given: access_denied" in err
        assert _cli("sync", "-c", str(path)).returncode == 3  # nothing was stored


def test_pasted_code_with_a_wrong_client_secret_is_refused(tmp_path: Path) -> None:
    with world(purchase_orders=1, work_orders=0) as w:
        path = _config(w, tmp_path, secret="not-the-secret")
        redirect = "http://127.0.0.1:8765/callback"
        params = {"audience": "api.atlassian.com", "client_id": "sim-oauth-client", "response_type": "code",
                  "scope": "read:jira-work offline_access", "redirect_uri": redirect, "state": "s"}
        location = httpx2.get(f"{w.jira.url}/authorize", params=params).headers["location"]
        refused = _cli("auth", "jira", "--code", location, "-c", str(path))
        assert refused.returncode == 3, refused.stdout + refused.stderr
        assert "check jira.auth.client_id and client_secret" in refused.stderr
        assert "not-the-secret" not in refused.stderr


def test_no_redirect_within_the_timeout(tmp_path: Path) -> None:
    with world(purchase_orders=1, work_orders=0) as w:
        path = _config(w, tmp_path)
        waited = _cli("auth", "jira", "--listen", f"127.0.0.1:{_free_port()}", "--timeout", "0.5", "-c", str(path))
        assert waited.returncode == 5 and "no consent redirect arrived within 0.5 s" in waited.stderr


def test_pasted_redirect_url_is_state_checked_and_stored(tmp_path: Path) -> None:
    with world(purchase_orders=1, work_orders=0) as w:
        path = _config(w, tmp_path)
        proc = subprocess.Popen([sys.executable, "-m", "ml_connector.cli", "auth", "jira", "-c", str(path)],
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
    """`sync` says "re-run the OAuth consent" when the stored grant cannot be decrypted: the consent must work then."""
    with world(purchase_orders=1, work_orders=0) as w:
        path, port = _config(w, tmp_path), _free_port()
        proc, url = _start_listening(path, port)
        httpx2.get(httpx2.get(url).headers["location"])
        assert _finish(proc)[0] == 0
        (tmp_path / "state.sqlite.key").unlink()  # the key is lost: a new one is made, the old grant is unreadable
        assert "re-run the OAuth consent" in _cli("sync", "-c", str(path)).stderr
        proc, url = _start_listening(path, port)
        httpx2.get(httpx2.get(url).headers["location"])
        code, _, err = _finish(proc)
        assert code == 0, err
        assert _cli("sync", "-c", str(path)).returncode == 0
