"""The public surface held against an attacker, over real HTTP against ``ml-connector run`` as a subprocess (issue 15).

One daemon with dashboard tokens and webhooks on, one in localhost-only mode; the simulators on loopback. The Jira
simulator's admin webhook delivers to the daemon, signed with the configured secret: the genuine path is shown to
work before the forged ones are shown to apply nothing.
"""

from __future__ import annotations

import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx2
import psutil
import pytest
import sqlalchemy as sa

from ml_connector.config.models import load_config
from ml_connector.engine import OutboundSync
from ml_connector.jira.webhooks import sign_body
from ml_connector.runner import build_connector
from ml_connector.serve import ServerHandle, free_port, serve_in_thread
from ml_connector.sim.ifs import IfsSimOptions
from ml_connector.sim.ifs import create_app as ifs_app
from ml_connector.sim.jira import JiraSimOptions
from ml_connector.sim.jira import create_app as jira_app
from ml_connector.store import Store, schema
from ml_connector.web.app import BODY_READ_TIMEOUT

from ..runner.simenv import example_config, write_config
from .support import ADMIN_TOKEN, READ_TOKEN, WEBHOOK_SECRET, wait_for

CLI = str(Path(sys.executable).parent / "ml-connector")
MB = 1024 * 1024
READ_TIMEOUT = BODY_READ_TIMEOUT  # fixed; the daemon runs in its own process
SECRETS = (WEBHOOK_SECRET, ADMIN_TOKEN, READ_TOKEN, "sim-api-token", "sim-secret")
# What a traceback with local variables looks like in any of the renderers we know (Rich, structlog, better-exceptions).
LOCALS_DUMP = re.compile(r"locals|╭─|│ +\w+ += |Traceback \(most recent call last\)")


@dataclass
class Daemon:
    process: subprocess.Popen[str]
    url: str
    store_url: str
    lines: list[str] = field(default_factory=list)

    def output(self) -> str:
        return "".join(self.lines)

    def rss(self) -> int:
        return int(psutil.Process(self.process.pid).memory_info().rss)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def _start(path: Path, port: int, store_url: str) -> Daemon:
    env = {**os.environ, "ML_CONNECTOR_LOG_LEVEL": "INFO"}
    env.pop("ML_CONNECTOR_DEBUG", None)
    process = subprocess.Popen(
        [CLI, "run", "--config", str(path), "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    daemon = Daemon(process, f"http://127.0.0.1:{port}", store_url)
    assert process.stdout is not None
    stdout = process.stdout

    def drain() -> None:  # a full pipe would block the daemon
        for line in stdout:
            daemon.lines.append(line)

    threading.Thread(target=drain, daemon=True).start()

    def up() -> bool:
        assert process.poll() is None, daemon.output()
        try:
            return httpx2.get(f"{daemon.url}/healthz", timeout=2).status_code == 200
        except httpx2.HTTPError:
            return False

    assert wait_for(up, timeout=60, interval=0.1), daemon.output()
    return daemon


def _config(tmp: Path, ifs: ServerHandle, jira: ServerHandle, port: int, **web: Any) -> tuple[Path, str]:
    data: dict[str, Any] = example_config()
    data["ifs"]["url"], data["jira"]["url"] = ifs.url, jira.url
    data["jira"]["webhook_secret"] = WEBHOOK_SECRET
    data["flows"] = [data["flows"][0]]
    data["flows"][0]["schedule"] = None  # no scheduled runs: every change in IFS comes from a delivery
    store_url = f"sqlite:///{tmp / 'state.sqlite'}"
    data["store"] = {"url": store_url}
    data["web"] = {"public_url": f"http://127.0.0.1:{port}", **web}
    data["webhooks"] = {"enabled": True}
    return write_config(tmp, data), store_url


@dataclass
class World:
    ifs: ServerHandle
    jira: ServerHandle
    tokens: Daemon
    local: Daemon
    record: Any


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    port, local_port = free_port(), free_port()
    ifs = serve_in_thread(ifs_app(IfsSimOptions(purchase_orders=8, work_orders=2, seed=5)))
    jira = serve_in_thread(
        jira_app(
            JiraSimOptions(webhook_secret=WEBHOOK_SECRET, admin_webhook_url=f"http://127.0.0.1:{port}/webhooks/jira")
        )
    )
    tmp = tmp_path_factory.mktemp("surface")
    path, store_url = _config(tmp, ifs, jira, port, admin_token=ADMIN_TOKEN, read_token=READ_TOKEN)
    connector = build_connector(path, load_config(path))
    try:
        OutboundSync(connector, connector.config.flow("purchase_orders")).run()
        record = next(r for r in connector.store.records.linked("purchase_orders") if r.jira_key)
    finally:
        connector.close()
        connector.store.close()
    local_tmp = tmp_path_factory.mktemp("surface-local")
    local_path, local_store = _config(local_tmp, ifs, jira, local_port)
    daemons: list[Daemon] = []
    try:
        daemons.append(_start(path, port, store_url))
        daemons.append(_start(local_path, local_port, local_store))
        yield World(ifs, jira, daemons[0], daemons[1], record)
    finally:
        for daemon in daemons:
            daemon.stop()
        jira.stop()
        ifs.stop()


def _ifs_status(world: World, key: str) -> Any:
    response = httpx2.get(f"{world.ifs.url}/_sim/records/PurchaseOrder/{quote(key, safe='')}", timeout=10)
    return response.raise_for_status().json().get("Cf_Jira_Status")


def _event(record: Any, status: str) -> bytes:
    updated = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")
    issue = {
        "id": record.jira_id,
        "key": record.jira_key,
        "fields": {"status": {"name": status, "statusCategory": {"key": "done"}}, "updated": updated},
    }
    return json.dumps(
        {"timestamp": int(time.time() * 1000), "webhookEvent": "jira:issue_updated", "issue": issue}
    ).encode()


def _deliver(daemon: Daemon, body: bytes, headers: dict[str, str]) -> httpx2.Response:
    return httpx2.post(
        f"{daemon.url}/webhooks/jira",
        content=body,
        headers={"Content-Type": "application/json", **headers},
        timeout=10,
    )


# -- webhooks ---------------------------------------------------------------------------------------------------------


def test_forged_unsigned_altered_and_default_secret_deliveries_apply_nothing(world: World) -> None:
    daemon, record = world.tokens, world.record
    before = _ifs_status(world, record.ifs_key)
    genuine = _event(record, "Done")
    attacks = {
        "unsigned": (genuine, {}),
        "forged": (genuine, {"X-Hub-Signature": sign_body(genuine, "an-attacker-guess-" + "x" * 20)}),
        "altered": (genuine.replace(b'"Done"', b'"Closed"'), {"X-Hub-Signature": sign_body(genuine, WEBHOOK_SECRET)}),
        "default-secret": (genuine, {"X-Hub-Signature": sign_body(genuine, "sim-webhook-secret")}),
    }
    for name, (body, headers) in attacks.items():
        r = _deliver(daemon, body, {"X-Atlassian-Webhook-Identifier": f"attack-{name}", **headers})
        assert r.status_code == 401, name
    # Genuine deliveries (the creates of the first sync, retried by Jira until the daemon was up) may be stored;
    # no attack may be.
    store = Store.open(daemon.store_url)
    try:
        with store.engine.connect() as conn:
            stored = set(conn.execute(sa.select(schema.webhook_inbox.c.delivery_id)).scalars())
    finally:
        store.close()
    assert not {i for i in stored if i.startswith("attack-")}
    assert _ifs_status(world, record.ifs_key) == before
    assert before not in {"Done", "Closed"}
    assert wait_for(lambda: daemon.output().count("web.webhook_rejected") >= len(attacks), timeout=10)
    # The genuine path works: a person moves the issue in Jira, the signed delivery reaches IFS.
    moved = httpx2.post(
        f"{world.jira.url}/_sim/issues/{record.jira_key}/transition", json={"status": "In Progress"}, timeout=10
    )
    assert moved.status_code < 300, moved.text
    assert wait_for(lambda: _ifs_status(world, record.ifs_key) == "In Progress", timeout=20), daemon.output()


def _raw_post(port: int, headers: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(f"POST /webhooks/jira HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{headers}\r\n".encode())
    return sock


def _send_until_closed(sock: socket.socket, frames: Iterator[bytes], *, first_wait: float = 0.0) -> tuple[int, bytes]:
    """Send ``frames`` until the server answers or closes; returns (bytes sent, what it answered).

    ``first_wait``: how long to wait for an early answer before the first frame (what ``Expect: 100-continue``
    clients do); once unread bytes are in flight, a closing server's answer may be lost to a reset.
    """
    sent = 0
    answer = b""
    wait = first_wait
    try:
        for frame in frames:
            readable, _, _ = select.select([sock], [], [], wait)
            wait = 0.0
            if readable:
                break
            sock.sendall(frame)
            sent += len(frame)
        sock.settimeout(10)
        answer = sock.recv(4096)
    except OSError:
        pass  # reset while sending: the server closed on us, which is the point
    finally:
        sock.close()
    return sent, answer


def test_huge_bodies_are_refused_without_growing_memory(world: World) -> None:
    daemon = world.tokens
    port = int(daemon.url.rsplit(":", 1)[1])
    for _ in range(3):  # warm up the code paths before the baseline
        _deliver(daemon, b"{}", {"X-Atlassian-Webhook-Identifier": "warm"})
    baseline = daemon.rss()
    block = b"x" * MB
    chunked_frames = (f"{len(block):x}\r\n".encode() + block + b"\r\n" for _ in range(400))  # 400 MB, lazily
    sock = _raw_post(port, "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n")
    sent_chunked, answer_chunked = _send_until_closed(sock, chunked_frames)
    after_chunked = daemon.rss()
    sock = _raw_post(port, f"Content-Type: application/json\r\nContent-Length: {20 * MB}\r\n")
    sent_declared, answer_declared = _send_until_closed(sock, (block for _ in range(20)), first_wait=5.0)
    after_declared = daemon.rss()
    print(
        f"\nRSS baseline {baseline / MB:.1f} MB; after 400 MB chunked {after_chunked / MB:.1f} MB "
        f"(sent {sent_chunked / MB:.1f} MB before the server stopped it); after 20 MB declared "
        f"{after_declared / MB:.1f} MB (sent {sent_declared / MB:.1f} MB)"
    )
    assert answer_chunked == b"" or answer_chunked.startswith(b"HTTP/1.1 413"), answer_chunked[:200]
    assert answer_declared.startswith(b"HTTP/1.1 413"), answer_declared[:200]
    assert sent_chunked < 100 * MB, "the server kept reading a body far over its limit"
    assert sent_declared < 20 * MB
    assert max(after_chunked, after_declared) - baseline < 20 * MB
    assert daemon.process.poll() is None
    assert httpx2.get(f"{daemon.url}/healthz", timeout=5).status_code == 200


def test_a_trickling_body_is_dropped_after_the_read_timeout(world: World) -> None:
    port = int(world.tokens.url.rsplit(":", 1)[1])
    sock = _raw_post(port, "Content-Type: application/json\r\nContent-Length: 1000\r\n")
    started = time.monotonic()
    sock.sendall(b'{"webhookEvent": ')  # and then nothing more, as a slow-loris client would
    sock.settimeout(READ_TIMEOUT + 10)
    try:
        answer = sock.recv(4096)
    finally:
        sock.close()
    waited = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert READ_TIMEOUT - 0.5 <= waited < READ_TIMEOUT + 5


# -- dashboard --------------------------------------------------------------------------------------------------------


def _paused(daemon: Daemon) -> bool:
    store = Store.open(daemon.store_url)
    try:
        return bool(store.controls.get("purchase_orders")["paused"])
    finally:
        store.close()


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert match, html[:500]
    return match.group(1)


@pytest.mark.parametrize("mode", ["tokens", "local"])
def test_host_and_origin_attacks_are_refused(world: World, mode: str) -> None:
    daemon = world.tokens if mode == "tokens" else world.local
    with httpx2.Client(base_url=daemon.url, timeout=10, follow_redirects=False) as browser:
        rebound = browser.get("/", headers={"Host": "evil.example"})
        assert rebound.status_code == 400
        assert "csrf" not in rebound.text
        if mode == "tokens":
            foreign_login = browser.post(
                "/login", data={"token": ADMIN_TOKEN}, headers={"Origin": "http://evil.example"}
            )
            assert foreign_login.status_code == 403
            login = browser.post("/login", data={"token": ADMIN_TOKEN, "next": "/"}, headers={"Origin": daemon.url})
            assert login.status_code == 303
        csrf = _csrf(browser.get("/").text)
        for headers in ({"Origin": "http://evil.example"}, {"Referer": "http://evil.example/x"}, {}):
            r = browser.post("/flows/purchase_orders/pause", data={"csrf": csrf}, headers=headers)
            assert r.status_code == 403, headers
        r = browser.post(
            "/flows/purchase_orders/pause",
            data={"csrf": csrf},
            headers={"Host": "evil.example", "Origin": "http://evil.example"},
        )
        assert r.status_code == 400
        assert not _paused(daemon)
        page = browser.get("/")
        for header in ("content-security-policy", "x-frame-options", "x-content-type-options", "referrer-policy"):
            assert header in page.headers


def test_a_hundred_wrong_logins_are_throttled_after_a_handful(world: World) -> None:
    daemon = world.tokens
    statuses = []
    with httpx2.Client(base_url=daemon.url, timeout=10, follow_redirects=False) as attacker:
        for i in range(100):
            r = attacker.post("/login", data={"token": f"wrong-{i}"}, headers={"Origin": daemon.url})
            statuses.append(r.status_code)
    first_throttled = statuses.index(429)
    assert first_throttled <= 6, statuses[:10]
    assert set(statuses[first_throttled:]) == {429}
    assert wait_for(lambda: "web.login_throttled" in daemon.output(), timeout=5)
    assert "wrong-42" not in daemon.output()


def test_read_only_sign_in_cannot_act(world: World) -> None:
    daemon = world.tokens
    with httpx2.Client(base_url=daemon.url, timeout=10, follow_redirects=False) as browser:
        # The previous test locked 127.0.0.1 out of logins; a Bearer header is not a login.
        bearer = {"Authorization": f"Bearer {READ_TOKEN}"}
        assert browser.get("/", headers=bearer).status_code == 200
        assert browser.post("/flows/purchase_orders/pause", headers=bearer).status_code == 403
    assert not _paused(daemon)


# -- logs -------------------------------------------------------------------------------------------------------------


def test_daemon_logs_carry_no_local_variables_and_no_secrets(world: World) -> None:
    for daemon in (world.tokens, world.local):
        output = daemon.output()
        assert output, "no log output captured"
        dumps = [line for line in output.splitlines() if LOCALS_DUMP.search(line)]
        assert not dumps, dumps[:5]
        for secret in SECRETS:
            assert secret not in output
