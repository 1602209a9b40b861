"""The IFS simulator on a loopback port (uvicorn in a thread), reset before every test."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx2
import pytest

from ml_connector.serve import serve_in_thread
from ml_connector.sim.ifs import BASE_PATH, IfsSimulator, create_app, quote_string

PO = "PurchaseOrderHandling.svc/PurchaseOrderSet"
LINES = "PurchaseOrderHandling.svc/PurchaseOrderLinePartSet"
WO_READ = "ActiveWorkOrdersHandling.svc/ActiveSeparateSet"
WO_PREP = "PrepareWorkOrderHandling.svc/ActiveSeparateSet"
PO_STATE = "IfsApp.PurchaseOrderHandling.PurchaseOrderState"
WO_STATE = "IfsApp.ActiveWorkOrdersHandling.WorkOrderState"
TOKEN_PATH = "/auth/realms/mlc/protocol/openid-connect/token"
TOKEN_FORM = {"grant_type": "client_credentials", "client_id": "ml-connector", "client_secret": "sim-secret"}


def po_url(key: str) -> str:
    """The entity URL of a purchase order, with the key quoted as an OData literal and then URL-encoded."""
    return f"{PO}(OrderNo={quote(quote_string(key), safe='')})"


class Ifs:
    """A running simulator: ``sim`` is app.state.sim, ``http`` an httpx2 client on its URL with a valid token."""

    def __init__(self, url: str, sim: IfsSimulator) -> None:
        self.url = url
        self.sim = sim
        self.http = httpx2.Client(base_url=url, timeout=30)
        self.token = ""

    def login(self, client_id: str = "ml-connector", secret: str = "sim-secret") -> str:
        response = self.http.post(
            TOKEN_PATH, data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
        )
        assert response.status_code == 200, response.text
        token: str = response.json()["access_token"]
        return token

    def headers(self, token: str | None = None, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.token}", **extra}

    def get(
        self, path: str, params: dict[str, str] | None = None, *, token: str | None = None, **headers: str
    ) -> httpx2.Response:
        target = path if path.startswith("http") else f"{BASE_PATH}/{path}"
        return self.http.get(target, params=params, headers=self.headers(token, **headers))

    def patch(self, path: str, body: Any, **headers: str) -> httpx2.Response:
        return self.http.patch(f"{BASE_PATH}/{path}", json=body, headers=self.headers(**headers))

    def post(self, path: str, body: Any = None, **headers: str) -> httpx2.Response:
        return self.http.post(f"{BASE_PATH}/{path}", json={} if body is None else body, headers=self.headers(**headers))

    def all_pages(self, path: str, params: dict[str, str] | None = None, **headers: str) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        response = self.get(path, params, **headers)
        while True:
            assert response.status_code == 200, response.text
            body = response.json()
            rows.extend(body["value"])
            link = body.get("@odata.nextLink")
            if not link:
                return rows
            response = self.get(link, **headers)


@pytest.fixture(scope="module")
def _server() -> Iterator[tuple[str, IfsSimulator]]:
    app = create_app()
    with serve_in_thread(app) as handle:
        yield handle.url, app.state.sim


@pytest.fixture
def ifs(_server: tuple[str, IfsSimulator]) -> Iterator[Ifs]:
    url, sim = _server
    sim.reset()
    sim.set_faults(rate_limit_per_minute=None)  # tests that need the budget set their own
    client = Ifs(url, sim)
    client.token = client.login()
    yield client
    client.http.close()
