"""One web app for several connections: /c/<name>/ dashboards scoped to their rows, /webhooks/jira/<name>,
/metrics labelled by connection, and no connection's secrets in another's pages."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from e2e.harness import connections_config
from fastapi.testclient import TestClient
from integration.web.support import ADMIN_TOKEN, enable_webhooks, write_config

from ml_connector.config.models import load_connections
from ml_connector.engine import Connector
from ml_connector.jira.webhooks import sign_body
from ml_connector.metrics import Metrics
from ml_connector.store import Store
from ml_connector.web import create_app
from ml_connector.web.deployment import create_connections_app

SITE = "http://127.0.0.1:8080"
HEADERS = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
NAMES = ("acme", "globex")


def _hook_secret(name: str) -> str:
    return f"webhook-secret-of-{name}-0123456789abcdefghijklmnop"


def _secrets(connector: Connector) -> set[str]:
    return {s for s in connector.config.secret_values() if s != ADMIN_TOKEN}  # the dashboard token is shared


@pytest.fixture
def connectors(tmp_path: Path) -> Iterator[dict[str, Connector]]:
    base = yaml.safe_load(write_config(tmp_path, admin_token=ADMIN_TOKEN, tweak=enable_webhooks).read_text())
    data = connections_config(*NAMES, base=base)
    for item in data["connections"]:
        item["jira"]["webhook_secret"] = _hook_secret(item["name"])
    path = tmp_path / "ml-connector.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    built = {}
    for config in load_connections(path, env={"IFS_URL": "http://127.0.0.1:9", "JIRA_URL": "http://127.0.0.1:9"}):
        assert config.store.url is not None
        store = Store.open(config.store.url, connection=config.name)
        metrics = Metrics(store=store, flows=[f.name for f in config.flows])
        built[config.name] = Connector(config=config, store=store, observer=metrics)
    for name, connector in built.items():
        connector.store.records.insert("purchase_orders", f"PO-{name}", state="parked", last_error=f"failed {name}")
        connector.store.records.insert("purchase_orders", "PO-SAME", state="synced", jira_key=f"{name.upper()}-1")
    yield built
    for connector in built.values():
        connector.close()
        connector.store.close()


@pytest.fixture
def client(connectors: dict[str, Connector]) -> Iterator[TestClient]:
    apps = {name: create_app(c, connections=list(connectors)) for name, c in connectors.items()}
    app = create_connections_app(apps)
    with TestClient(app, base_url=SITE, follow_redirects=False, headers={"Origin": SITE}) as c:  # type: ignore[arg-type]
        yield c
    for sub in apps.values():
        sub.state.work.stop()


def _pages(client: TestClient, name: str, connector: Connector) -> dict[str, str]:
    record = connector.store.records.get("purchase_orders", f"PO-{name}")
    assert record is not None
    paths = ["/", "/records", "/failed", "/failed/reasons", "/runs", f"/records/{record.id}"]
    answers = {path: client.get(f"/c/{name}{path}", headers=HEADERS) for path in paths}
    for path, answer in answers.items():
        assert answer.status_code == 200, (name, path, answer.text[:300])
    return {path: answer.text for path, answer in answers.items()}


def test_each_dashboard_shows_only_its_connection(client: TestClient, connectors: dict[str, Connector]) -> None:
    for name, other in (("acme", "globex"), ("globex", "acme")):
        pages = _pages(client, name, connectors[name])
        assert f"PO-{name}" in pages["/records"] and f"PO-{other}" not in pages["/records"]
        assert f"failed {name}" in pages["/failed"] and f"failed {other}" not in pages["/failed"]
        for path, text in pages.items():
            for secret in _secrets(connectors[other]) | _secrets(connectors[name]):
                assert secret not in text, (name, path)
        # every link of the page stays below its connection, and the selector offers the other one
        links = set(re.findall(r'(?:href|action)="(/[^"]*)"', pages["/"]))
        assert f"/c/{other}/" in links
        assert {link for link in links if not link.startswith("/c/")} == set()


def test_redirects_stay_below_the_connection(client: TestClient) -> None:
    assert client.get("/").headers["location"] == "/c/acme/"
    page = client.get("/c/globex/", headers=HEADERS).text
    match = re.search(r'name="csrf" value="([0-9a-f]+)"', page)
    assert match
    paused = client.post("/c/globex/flows/purchase_orders/pause", data={"csrf": match.group(1)}, headers=HEADERS)
    assert paused.status_code == 303 and paused.headers["location"].startswith("/c/globex/?")


def test_controls_reach_only_their_connection(client: TestClient, connectors: dict[str, Connector]) -> None:
    page = client.get("/c/globex/", headers=HEADERS).text
    match = re.search(r'name="csrf" value="([0-9a-f]+)"', page)
    assert match
    client.post("/c/globex/flows/purchase_orders/pause", data={"csrf": match.group(1)}, headers=HEADERS)
    assert connectors["globex"].store.controls.get("purchase_orders")["paused"] is True
    assert connectors["acme"].store.controls.get("purchase_orders")["paused"] is False


def _delivery(client: TestClient, path: str, secret: str, delivery: str) -> int:
    body = json.dumps({"webhookEvent": "jira:issue_updated", "issue": {"id": "10001"}}).encode()
    headers = {
        "Content-Type": "application/json",
        "X-Hub-Signature": sign_body(body, secret),
        "X-Atlassian-Webhook-Identifier": delivery,
    }
    return int(client.post(path, content=body, headers=headers).status_code)


def test_webhooks_route_to_their_connection(client: TestClient, connectors: dict[str, Connector]) -> None:
    assert _delivery(client, "/webhooks/jira/acme", _hook_secret("acme"), "d-1") == 202
    assert _delivery(client, "/webhooks/jira/globex", _hook_secret("acme"), "d-2") == 401  # acme's secret
    assert _delivery(client, "/webhooks/jira/globex", _hook_secret("globex"), "d-1") == 202  # same id, own inbox
    assert _delivery(client, "/webhooks/jira/globex", _hook_secret("globex"), "d-1") == 200  # duplicate
    assert _delivery(client, "/webhooks/jira", _hook_secret("acme"), "d-3") == 404  # no connection named default
    assert connectors["acme"].store.inbox.count() == 1  # (the inbox thread may have applied it already)
    assert connectors["globex"].store.inbox.count() == 1


def test_metrics_carry_the_connection_label(client: TestClient) -> None:
    _delivery(client, "/webhooks/jira/acme", _hook_secret("acme"), "d-1")
    text = client.get("/metrics").text
    assert 'mlc_webhook_deliveries_total{connection="acme",result="accepted"} 1.0' in text
    assert 'mlc_records{connection="globex",flow="purchase_orders",state="parked"} 1.0' in text
    assert text.count("# HELP mlc_records ") == 1  # one family per name, both connections in it
    assert client.get("/healthz").json() == {"status": "ok"}
