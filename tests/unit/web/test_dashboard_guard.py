"""The dashboard against a hostile browser: Host (DNS rebinding), Origin, login throttling, headers, roles."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from integration.web.support import ADMIN_TOKEN, READ_TOKEN, make_connector

from ml_connector.engine import Connector
from ml_connector.web import create_app
from ml_connector.web.guard import CSP, LoginThrottle

PUBLIC = "https://connector.example.com"
LOCAL = ("127.0.0.1", 40000)
REMOTE = ("203.0.113.9", 40000)


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert match, "no CSRF token in page"
    return match.group(1)


def _tokens(data: dict[str, Any]) -> None:
    data["web"] = {
        "admin_token": ADMIN_TOKEN,
        "read_token": READ_TOKEN,
        "public_url": PUBLIC,
        "public_hosts": ["dash.internal:8080"],
    }


@pytest.fixture
def token_mode(tmp_path: Path) -> Iterator[Connector]:
    c = make_connector(tmp_path, tweak=_tokens)
    yield c
    c.store.close()


@pytest.fixture
def local_mode(tmp_path: Path) -> Iterator[Connector]:
    c = make_connector(tmp_path)
    yield c
    c.store.close()


def _client(connector: Connector, base_url: str, source: tuple[str, int]) -> TestClient:
    return TestClient(create_app(connector), base_url=base_url, client=source, follow_redirects=False)


def _login(client: TestClient, token: str, origin: str) -> None:
    r = client.post("/login", data={"token": token, "next": "/"}, headers={"Origin": origin})
    assert r.status_code == 303, r.text


# -- Host -------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8080", "127.0.0.1.evil.example", "dash.internal:9999"])
def test_localhost_mode_refuses_a_foreign_host_before_serving_the_page(local_mode: Connector, host: str) -> None:
    with _client(local_mode, "http://127.0.0.1:8080", LOCAL) as client:
        r = client.get("/", headers={"Host": host})
        assert r.status_code == 400
        assert "csrf" not in r.text
        post = client.post("/flows/purchase_orders/pause", headers={"Host": host, "Origin": f"http://{host}"})
        assert post.status_code == 400
    assert local_mode.store.controls.get("purchase_orders")["paused"] is False


@pytest.mark.parametrize("host", ["localhost:8080", "127.0.0.1:8080", "[::1]:8080"])
def test_localhost_mode_serves_loopback_names(local_mode: Connector, host: str) -> None:
    with _client(local_mode, "http://127.0.0.1:8080", LOCAL) as client:
        assert client.get("/", headers={"Host": host}).status_code == 200


def test_token_mode_serves_only_configured_and_loopback_names(token_mode: Connector) -> None:
    with _client(token_mode, PUBLIC, REMOTE) as client:
        auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        assert client.get("/", headers=auth).status_code == 200  # public_url's host
        assert client.get("/", headers={**auth, "Host": "dash.internal:8080"}).status_code == 200
        assert client.get("/", headers={**auth, "Host": "dash.internal:8081"}).status_code == 400  # other port
        assert client.get("/", headers={**auth, "Host": "evil.example"}).status_code == 400
        assert client.get("/login", headers={"Host": "evil.example"}).status_code == 400
        # Machine endpoints answer whatever address reached the daemon (probes, Jira).
        assert client.get("/healthz", headers={"Host": "10.0.0.5:8080"}).status_code == 200


# -- Origin -----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://evil.example"},
        {"Origin": "null"},
        {"Origin": "http://127.0.0.1:9999"},  # another local port is another origin
        {"Origin": "https://127.0.0.1:8080"},  # another scheme too
        {"Referer": "http://evil.example/page"},
        {},  # neither: a browser always sends one on a form post
    ],
)
def test_localhost_mode_refuses_cross_origin_actions(local_mode: Connector, headers: dict[str, str]) -> None:
    with _client(local_mode, "http://127.0.0.1:8080", LOCAL) as client:
        csrf = _csrf(client.get("/").text)
        r = client.post("/flows/purchase_orders/pause", data={"csrf": csrf}, headers=headers)
        assert r.status_code == 403
        assert "cross-origin" in r.text
        assert local_mode.store.controls.get("purchase_orders")["paused"] is False
        ok = client.post(
            "/flows/purchase_orders/pause", data={"csrf": csrf}, headers={"Referer": "http://127.0.0.1:8080/"}
        )
        assert ok.status_code == 303
    assert local_mode.store.controls.get("purchase_orders")["paused"] is True


def test_token_mode_refuses_cross_origin_actions_and_logins(token_mode: Connector) -> None:
    with _client(token_mode, PUBLIC, REMOTE) as client:
        foreign = client.post("/login", data={"token": ADMIN_TOKEN}, headers={"Origin": "https://evil.example"})
        assert foreign.status_code == 403  # login CSRF
        _login(client, ADMIN_TOKEN, PUBLIC)
        csrf = _csrf(client.get("/").text)
        r = client.post("/flows/purchase_orders/pause", data={"csrf": csrf}, headers={"Origin": "https://evil.example"})
        assert r.status_code == 403
        assert token_mode.store.controls.get("purchase_orders")["paused"] is False
        # An API client with the Bearer token sends no Origin: allowed (no browser attaches it on its own) ...
        bearer = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        assert client.post("/flows/purchase_orders/pause", headers=bearer).status_code == 303
        # ... but a foreign Origin is refused even then.
        r = client.post("/flows/purchase_orders/resume", headers={**bearer, "Origin": "https://evil.example"})
        assert r.status_code == 403
    assert token_mode.store.controls.get("purchase_orders")["paused"] is True


def test_https_behind_a_tls_proxy(tmp_path: Path) -> None:
    def proxied(data: dict[str, Any]) -> None:
        _tokens(data)
        data["web"]["tls_proxy"] = True

    connector = make_connector(tmp_path, tweak=proxied)
    with TestClient(create_app(connector), base_url="http://connector.example.com", follow_redirects=False) as client:
        forwarded = {"X-Forwarded-Proto": "https"}
        r = client.post("/login", data={"token": ADMIN_TOKEN}, headers={**forwarded, "Origin": PUBLIC})
        assert r.status_code == 303
        assert "secure" in r.headers["set-cookie"].lower()
        assert r.headers["strict-transport-security"].startswith("max-age=")
        plain = client.get("/healthz")
        assert "strict-transport-security" not in plain.headers
    connector.store.close()


# -- login throttling -------------------------------------------------------------------------------------------------


def test_wrong_logins_are_throttled_per_source_and_logged_without_the_token(
    token_mode: Connector, capsys: pytest.CaptureFixture[str]
) -> None:
    app = create_app(token_mode)
    # A clock that stands still: on a slow machine a lockout of 1 s could end between two guesses and let one more in.
    app.state.web.throttle = LoginThrottle(clock=lambda: 1000.0)
    statuses = []
    with TestClient(app, base_url=PUBLIC, client=REMOTE, follow_redirects=False) as attacker:
        for i in range(100):
            r = attacker.post("/login", data={"token": f"guess-{i:04d}"}, headers={"Origin": PUBLIC})
            statuses.append(r.status_code)
            if r.status_code == 429:
                assert int(r.headers["retry-after"]) >= 1
        # Locked out: even the right token is not compared now.
        locked = attacker.post("/login", data={"token": ADMIN_TOKEN}, headers={"Origin": PUBLIC})
        assert locked.status_code == 429
    assert statuses[:5] == [401] * 5
    assert statuses.count(401) <= 6 and statuses.count(429) >= 94
    with TestClient(app, base_url=PUBLIC, client=("198.51.100.7", 1), follow_redirects=False) as other:
        _login(other, ADMIN_TOKEN, PUBLIC)  # another address is not locked out
    logged = capsys.readouterr()
    text = logged.out + logged.err
    assert "web.login_failed" in text and "web.login_throttled" in text
    assert "guess-0001" not in text and ADMIN_TOKEN not in text


# -- headers ----------------------------------------------------------------------------------------------------------


def test_security_headers_on_every_answer(local_mode: Connector) -> None:
    with _client(local_mode, "http://127.0.0.1:8080", LOCAL) as client:
        answers = [
            client.get("/"),
            client.get("/static/style.css"),
            client.get("/healthz"),
            client.get("/", headers={"Host": "evil.example"}),  # refusals too
            client.post("/flows/purchase_orders/pause"),
        ]
        for r in answers:
            assert r.headers["content-security-policy"] == CSP
            assert "frame-ancestors 'none'" in CSP and "unsafe-inline" not in CSP
            assert r.headers["x-content-type-options"] == "nosniff"
            assert r.headers["x-frame-options"] == "DENY"
            assert r.headers["referrer-policy"] == "same-origin"
            assert "strict-transport-security" not in r.headers  # plain HTTP: no HSTS
        assert "<script>" not in answers[0].text and "style=" not in answers[0].text


# -- roles ------------------------------------------------------------------------------------------------------------


def test_a_read_only_sign_in_sees_pages_but_cannot_act(token_mode: Connector) -> None:
    with _client(token_mode, PUBLIC, REMOTE) as client:
        _login(client, READ_TOKEN, PUBLIC)
        page = client.get("/")
        assert page.status_code == 200
        assert ">Sync now</button>" not in page.text and "read-only" in page.text
        csrf = _csrf(page.text)  # the logout form still carries one
        for action in ("sync", "pause", "resume"):
            r = client.post(f"/flows/purchase_orders/{action}", data={"csrf": csrf}, headers={"Origin": PUBLIC})
            assert r.status_code == 403
            assert "read-only" in r.text
        r = client.post("/failed/replay", data={"csrf": csrf, "all": "1"}, headers={"Origin": PUBLIC})
        assert r.status_code == 403
        bearer = {"Authorization": f"Bearer {READ_TOKEN}"}
        assert client.post("/flows/purchase_orders/pause", headers=bearer).status_code == 403
        assert client.post("/logout", data={"csrf": csrf}, headers={"Origin": PUBLIC}).status_code == 303
    ctl = token_mode.store.controls.get("purchase_orders")
    assert ctl["paused"] is False and ctl["sync_requested_at"] is None


def test_an_admin_sign_in_can_act(token_mode: Connector) -> None:
    with _client(token_mode, PUBLIC, REMOTE) as client:
        _login(client, ADMIN_TOKEN, PUBLIC)
        page = client.get("/")
        assert ">Sync now</button>" in page.text
        r = client.post("/flows/purchase_orders/pause", data={"csrf": _csrf(page.text)}, headers={"Origin": PUBLIC})
        assert r.status_code == 303
    assert token_mode.store.controls.get("purchase_orders")["paused"] is True


def test_oversized_form_posts_are_refused_unread(local_mode: Connector) -> None:
    with _client(local_mode, "http://127.0.0.1:8080", LOCAL) as client:
        big = b"csrf=" + b"a" * (70 * 1024)
        r = client.post(
            "/flows/purchase_orders/pause",
            content=big,
            headers={"Content-Type": "application/x-www-form-urlencoded", "Origin": "http://127.0.0.1:8080"},
        )
        assert r.status_code == 413
