"""Dashboard access (admin token, cookie, localhost-only), CSRF on actions, health, readiness, secrets in pages."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from integration.web.support import ADMIN_TOKEN, READ_TOKEN, WEBHOOK_SECRET, make_connector
from sqlalchemy import create_engine

from ml_connector.engine import Connector
from ml_connector.store import AuditEvent
from ml_connector.web import create_app
from ml_connector.web.auth import SESSION_COOKIE

SITE = "http://127.0.0.1:8080"  # a loopback Host is always accepted; pages post back to the same origin
LOCAL = ("127.0.0.1", 40000)
REMOTE = ("203.0.113.9", 40000)


@pytest.fixture
def connector(tmp_path: Path) -> Iterator[Connector]:
    c = make_connector(tmp_path, admin_token=ADMIN_TOKEN)
    yield c
    c.store.close()


@pytest.fixture
def client(connector: Connector) -> Iterator[TestClient]:
    with TestClient(
        create_app(connector), client=REMOTE, follow_redirects=False, base_url=SITE, headers={"Origin": SITE}
    ) as c:
        yield c


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert match, "no CSRF token in page"
    return match.group(1)


def test_pages_need_the_token(client: TestClient) -> None:
    r = client.get("/records?state=parked")
    assert r.status_code == 303
    assert r.headers["location"].startswith("/login?next=")
    assert client.get("/", headers={"Authorization": "Bearer wrong"}).status_code == 303
    assert client.get("/", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}).status_code == 200
    assert client.post("/flows/purchase_orders/pause").status_code == 401


def test_login_sets_an_httponly_strict_cookie_without_the_token(client: TestClient) -> None:
    bad = client.post("/login", data={"token": "nope", "next": "/"})
    assert bad.status_code == 401
    assert SESSION_COOKIE not in bad.cookies
    r = client.post("/login", data={"token": ADMIN_TOKEN, "next": "/runs"})
    assert r.status_code == 303
    assert r.headers["location"] == "/runs"
    header = r.headers["set-cookie"]
    assert "HttpOnly" in header
    assert "samesite=strict" in header.lower()
    assert ADMIN_TOKEN not in header
    assert client.get("/runs").status_code == 200
    client.cookies.clear()
    client.cookies.set(SESSION_COOKIE, "1700000000.forged")
    assert client.get("/runs").status_code == 303


def test_login_never_redirects_off_site(client: TestClient) -> None:
    r = client.post("/login", data={"token": ADMIN_TOKEN, "next": "//evil.example/x"})
    assert r.headers["location"] == "/"


def test_actions_need_a_csrf_token(client: TestClient, connector: Connector) -> None:
    client.post("/login", data={"token": ADMIN_TOKEN, "next": "/"})
    page = client.get("/")
    assert page.status_code == 200
    assert client.post("/flows/purchase_orders/pause", data={}).status_code == 403
    assert client.post("/flows/purchase_orders/pause", data={"csrf": "0" * 64}).status_code == 403
    assert connector.store.controls.get("purchase_orders")["paused"] is False
    r = client.post("/flows/purchase_orders/pause", data={"csrf": _csrf(page.text)})
    assert r.status_code == 303
    assert connector.store.controls.get("purchase_orders")["paused"] is True
    assert "Paused" in client.get("/").text
    client.post("/flows/purchase_orders/sync", data={"csrf": _csrf(page.text)})
    assert connector.store.controls.get("purchase_orders")["sync_requested_at"] is not None
    client.post("/flows/purchase_orders/resume", data={"csrf": _csrf(page.text)})
    assert connector.store.controls.get("purchase_orders")["paused"] is False


def test_without_a_token_only_localhost_gets_in(tmp_path: Path) -> None:
    connector = make_connector(tmp_path)
    app = create_app(connector)
    with TestClient(app, client=REMOTE, follow_redirects=False, base_url=SITE, headers={"Origin": SITE}) as remote:
        assert remote.get("/").status_code == 403
        assert remote.get("/healthz").status_code == 200  # machine endpoints stay open
    with TestClient(app, client=LOCAL, follow_redirects=False, base_url=SITE, headers={"Origin": SITE}) as local:
        page = local.get("/")
        assert page.status_code == 200
        assert local.post("/flows/work_orders/pause", data={}).status_code == 403  # CSRF still required
        assert local.post("/flows/work_orders/pause", data={"csrf": _csrf(page.text)}).status_code == 303
    assert connector.store.controls.get("work_orders")["paused"] is True
    connector.store.close()


def test_health_and_readiness(client: TestClient, connector: Connector) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    fresh = client.get("/readyz")
    assert fresh.status_code == 200
    assert fresh.json()["systems"]["ifs"]["status"] == "unknown"
    connector.store.health.record("ifs", "operational")
    connector.store.health.record("jira", "auth_failed", "jira: 401 on GET /rest/api/3/myself (Basic sim-api-token)")
    r = client.get("/readyz")
    assert r.status_code == 503
    body = r.json()
    assert body["ready"] is False
    assert body["systems"]["ifs"]["last_success_at"] is not None
    assert any(reason.startswith("jira: Authentication failed") for reason in body["reasons"])
    assert "sim-api-token" not in r.text
    page = client.get("/", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}).text
    assert "Authentication failed" in page
    assert "Operational" in page
    assert "sim-api-token" not in page


def test_readiness_reports_an_unreachable_database(client: TestClient, connector: Connector, tmp_path: Path) -> None:
    good = connector.store.engine
    connector.store.engine = create_engine(f"sqlite:///{tmp_path}/missing-dir/none/x.sqlite")
    try:
        r = client.get("/readyz")
    finally:
        connector.store.engine = good
    assert r.status_code == 503
    assert r.json()["database"].startswith("database unreachable")


def test_secrets_never_reach_the_pages(client: TestClient, connector: Connector) -> None:
    with connector.store.transaction() as tx:
        record = tx.records.insert(
            "purchase_orders",
            "PO-1",
            state="parked",
            draft={"fields": {"summary": "PO 1 sim-api-token"}, "authorization": "Basic abc", "note": "sim-secret"},
            error_class="Rejected",
            last_error="400 from Jira; sent Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln",
        )
        tx.audit.add(record.id, AuditEvent("failed", outcome="error", message="client_secret=sim-secret was refused"))
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    pages = [client.get(f"/records/{record.id}", headers=headers), client.get("/failed", headers=headers)]
    for page in pages:
        assert page.status_code == 200
        for secret in ("sim-api-token", "sim-secret", "eyJhbGciOiJIUzI1NiJ9", ADMIN_TOKEN, "Basic abc"):
            assert secret not in page.text
    assert "PO-1" in pages[0].text
    assert "[redacted]" in pages[0].text
    assert client.get("/records/999999", headers=headers).status_code == 404


def test_every_configured_secret_is_stripped_from_the_pages(tmp_path: Path) -> None:
    """The pages redact what ``ConnectorConfig.secret_values()`` lists: the store's key and the read token too."""
    key = "q3Zx9bW1d8Jm5Tn2Lr7Yc4Kp6Hs0Vg3Fa1Ee9Uo2Ii8="

    def secrets(data: dict[str, Any]) -> None:
        data["store"]["credentials_key"] = key
        data["web"]["read_token"] = READ_TOKEN

    connector = make_connector(tmp_path, admin_token=ADMIN_TOKEN, tweak=secrets)
    leaked = f"key {key} and {READ_TOKEN} and {WEBHOOK_SECRET} in plain text"
    try:
        with connector.store.transaction() as tx:
            record = tx.records.insert("purchase_orders", "PO-2", state="parked", last_error=leaked)
            tx.audit.add(record.id, AuditEvent("failed", outcome="error", message=leaked))
        with TestClient(create_app(connector), client=REMOTE, base_url=SITE) as client:
            headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
            pages = [client.get(f"/records/{record.id}", headers=headers), client.get("/failed", headers=headers)]
        for page in pages:
            assert page.status_code == 200 and "in plain text" in page.text
            for secret in (key, READ_TOKEN, WEBHOOK_SECRET):
                assert secret not in page.text
    finally:
        connector.store.close()
