"""Dashboard pages filter by flow (an unknown flow name means no filter) and actions refuse unknown flows."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from integration.web.support import ADMIN_TOKEN, make_connector

from ml_connector.engine import Connector
from ml_connector.web import StoreControl, create_app

SITE = "http://127.0.0.1:8080"
HEADERS = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture
def connector(tmp_path: Path) -> Iterator[Connector]:
    c = make_connector(tmp_path, admin_token=ADMIN_TOKEN)
    with c.store.transaction() as tx:
        tx.records.insert("purchase_orders", "PO-77", state="parked", last_error="po failed")
        tx.records.insert("work_orders", "9911", state="retry", last_error="wo failed")
    yield c
    c.store.close()


@pytest.fixture
def client(connector: Connector) -> Iterator[TestClient]:
    with TestClient(create_app(connector), base_url=SITE, follow_redirects=False, headers={"Origin": SITE}) as c:
        yield c


@pytest.mark.parametrize("path", ["/records", "/failed"])
def test_a_known_flow_filters_and_an_unknown_one_does_not(client: TestClient, path: str) -> None:
    only_po = client.get(f"{path}?flow=purchase_orders", headers=HEADERS)
    assert only_po.status_code == 200
    assert "PO-77" in only_po.text and "9911" not in only_po.text
    everything = client.get(f"{path}?flow=no_such_flow", headers=HEADERS).text
    assert "PO-77" in everything and "9911" in everything


def test_the_runs_page_and_overview_answer_with_a_filter(client: TestClient) -> None:
    assert client.get("/runs?flow=work_orders&before=x", headers=HEADERS).status_code == 200
    assert client.get("/", headers=HEADERS).status_code == 200


def test_flow_actions_refuse_an_unknown_flow_or_action(client: TestClient, connector: Connector) -> None:
    page = client.get("/", headers=HEADERS).text
    match = re.search(r'name="csrf" value="([0-9a-f]+)"', page)
    assert match
    form = {"csrf": match.group(1)}
    assert client.post("/flows/no_such_flow/sync", data=form, headers=HEADERS).status_code == 404
    assert client.post("/flows/purchase_orders/explode", data=form, headers=HEADERS).status_code == 404
    paused = client.post("/flows/purchase_orders/pause", data=form, headers=HEADERS)
    assert paused.status_code == 303 and "paused" in paused.headers["location"]
    assert StoreControl(connector.store).is_paused("purchase_orders")
    foreign = {**HEADERS, "Origin": "https://evil.example"}
    assert client.post("/flows/purchase_orders/resume", data=form, headers=foreign).status_code == 403
    assert StoreControl(connector.store).is_paused("purchase_orders")  # the refusal changed nothing
