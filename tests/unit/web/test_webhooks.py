"""POST /webhooks/jira: signature and JWT verification, nothing stored on failure, de-duplication."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient
from integration.web.support import WEBHOOK_SECRET, enable_webhooks, make_connector

from ml_connector.engine import Connector
from ml_connector.jira.webhooks import sign_body
from ml_connector.web import create_app
from ml_connector.web.app import MAX_WEBHOOK_BYTES

SECRET = WEBHOOK_SECRET


def _event(issue_id: str = "10001", status: str = "Done") -> bytes:
    payload = {
        "timestamp": 1,
        "webhookEvent": "jira:issue_updated",
        "issue": {"id": issue_id, "key": "PROC-1", "fields": {"status": {"name": status}}},
    }
    return json.dumps(payload).encode()


@pytest.fixture
def connector(tmp_path: Path) -> Iterator[Connector]:
    c = make_connector(tmp_path, tweak=enable_webhooks)
    yield c
    c.close()
    c.store.close()


@pytest.fixture
def client(connector: Connector) -> Iterator[TestClient]:
    app = create_app(connector)
    with TestClient(app) as c:
        yield c


def _post(client: TestClient, body: bytes, headers: dict[str, str]) -> Any:
    return client.post("/webhooks/jira", content=body, headers={"Content-Type": "application/json", **headers})


def test_signed_delivery_is_stored_and_acknowledged(client: TestClient, connector: Connector) -> None:
    body = _event()
    r = _post(client, body, {"X-Hub-Signature": sign_body(body, SECRET), "X-Atlassian-Webhook-Identifier": "d-1"})
    assert r.status_code == 202
    assert r.json() == {"status": "accepted"}
    assert connector.store.inbox.count() == 1


@pytest.mark.parametrize(
    ("name", "headers_for"),
    [
        ("forged", lambda body: {"X-Hub-Signature": sign_body(body, "not-the-secret")}),
        ("altered", lambda body: {"X-Hub-Signature": sign_body(body.replace(b"Done", b"To Do"), SECRET)}),
        ("unsigned", lambda body: {}),
        ("malformed", lambda body: {"X-Hub-Signature": "sha256"}),
        ("wrong-method", lambda body: {"X-Hub-Signature": "md5=" + "0" * 32}),
    ],
)
def test_unverified_delivery_gets_401_and_leaves_no_trace(
    client: TestClient, connector: Connector, name: str, headers_for: Any
) -> None:
    body = _event()
    r = _post(client, body, {"X-Atlassian-Webhook-Identifier": f"bad-{name}", **headers_for(body)})
    assert r.status_code == 401
    assert SECRET not in r.text
    assert connector.store.inbox.count() == 0
    metrics = client.app.state.metrics  # type: ignore[attr-defined]
    assert metrics.registry.get_sample_value("mlc_webhook_deliveries_total", {"result": "rejected"}) == 1


def test_duplicate_delivery_is_stored_once_and_processed_once(client: TestClient, connector: Connector) -> None:
    body = _event(issue_id="424242")
    headers = {"X-Hub-Signature": sign_body(body, SECRET), "X-Atlassian-Webhook-Identifier": "same-delivery"}
    first = _post(client, body, headers)
    second = _post(client, body, {**headers, "X-Atlassian-Webhook-Retry": "1"})
    assert (first.status_code, second.status_code) == (202, 200)
    assert second.json() == {"status": "duplicate"}
    work = client.app.state.work  # type: ignore[attr-defined]
    assert work.wait_idle(10)
    assert connector.store.inbox.count() == 1
    # The one stored event was handled exactly once (ignored: no linked record for that issue).
    assert connector.store.inbox.count("pending") == 0
    assert connector.store.inbox.count("ignored") == 1


def test_missing_identifier_or_bad_json_is_refused(client: TestClient, connector: Connector) -> None:
    body = _event()
    assert _post(client, body, {"X-Hub-Signature": sign_body(body, SECRET)}).status_code == 400
    junk = b"not json"
    r = _post(client, junk, {"X-Hub-Signature": sign_body(junk, SECRET), "X-Atlassian-Webhook-Identifier": "j"})
    assert r.status_code == 400
    assert connector.store.inbox.count() == 0


def test_no_configured_secret_refuses_everything(tmp_path: Path) -> None:
    def no_secret(data: dict[str, Any]) -> None:
        data["jira"].pop("webhook_secret", None)
        enable_webhooks(data)

    connector = make_connector(tmp_path, tweak=no_secret)
    with TestClient(create_app(connector)) as client:
        body = _event()
        r = _post(client, body, {"X-Hub-Signature": sign_body(body, ""), "X-Atlassian-Webhook-Identifier": "x"})
        assert r.status_code == 401
    assert connector.store.inbox.count() == 0
    connector.store.close()


def _oauth(data: dict[str, Any]) -> None:
    data["jira"]["auth"] = {"kind": "oauth", "client_id": "sim-oauth-client", "client_secret": "sim-oauth-secret"}
    data["jira"].pop("webhook_secret", None)
    enable_webhooks(data)


def _jwt(secret: str, *, exp_in: int = 300) -> str:
    now = int(time.time())
    claims = {"iss": "jira:cloud", "aud": "sim-oauth-client", "iat": now, "exp": now + exp_in}
    return "Bearer " + jwt.encode(claims, secret, algorithm="HS256")


def test_oauth_app_webhooks_need_a_valid_jwt(tmp_path: Path) -> None:
    connector = make_connector(tmp_path, tweak=_oauth)
    with TestClient(create_app(connector)) as client:
        body = _event()
        cases = {
            "forged": _jwt("wrong-secret"),
            "expired": _jwt("sim-oauth-secret", exp_in=-3600),
            "not-a-jwt": "Bearer abc.def",
        }
        for name, header in cases.items():
            r = _post(client, body, {"Authorization": header, "X-Atlassian-Webhook-Identifier": name})
            assert r.status_code == 401, name
        r = _post(client, body, {"X-Atlassian-Webhook-Identifier": "none"})
        assert r.status_code == 401
        assert connector.store.inbox.count() == 0
        ok = _post(client, body, {"Authorization": _jwt("sim-oauth-secret"), "X-Atlassian-Webhook-Identifier": "ok"})
        assert ok.status_code == 202
    assert connector.store.inbox.count() == 1
    connector.store.close()


def test_no_route_while_webhooks_are_disabled(tmp_path: Path) -> None:
    connector = make_connector(tmp_path)  # the example config: webhooks off
    with TestClient(create_app(connector)) as client:
        body = _event()
        r = _post(client, body, {"X-Hub-Signature": sign_body(body, SECRET), "X-Atlassian-Webhook-Identifier": "x"})
        assert r.status_code == 404
    assert connector.store.inbox.count() == 0
    connector.store.close()


def test_bodies_over_the_limit_are_refused_while_reading(client: TestClient, connector: Connector) -> None:
    limit = MAX_WEBHOOK_BYTES
    declared = client.post(
        "/webhooks/jira", content=b"x" * (limit + 1), headers={"X-Atlassian-Webhook-Identifier": "big"}
    )
    assert declared.status_code == 413
    sent = 0

    def chunks() -> Iterator[bytes]:
        nonlocal sent
        for _ in range(64):
            sent += 64 * 1024
            yield b"x" * (64 * 1024)

    chunked = client.post("/webhooks/jira", content=chunks(), headers={"X-Atlassian-Webhook-Identifier": "chunked"})
    assert chunked.status_code == 413
    assert connector.store.inbox.count() == 0


def test_a_source_over_its_rate_is_told_to_wait(tmp_path: Path) -> None:
    def slow(data: dict[str, Any]) -> None:
        enable_webhooks(data)
        data["webhooks"].update(rate_per_second=0.5, burst=3)

    connector = make_connector(tmp_path, tweak=slow)
    with TestClient(create_app(connector)) as client:
        statuses = [_post(client, b"{}", {"X-Atlassian-Webhook-Identifier": str(i)}) for i in range(5)]
    assert [r.status_code for r in statuses] == [401, 401, 401, 429, 429]
    assert int(statuses[3].headers["retry-after"]) >= 1
    connector.store.close()
