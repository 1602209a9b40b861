"""Fixtures: the IFS simulator on a loopback port, its control API, and IfsClient instances pointed at it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx2
import pytest
from conftest import require_import

from ml_connector.config.connections import HttpSettings, IfsConnection
from ml_connector.ifs import IfsClient
from ml_connector.serve import ServerHandle, serve_in_thread

sim_ifs = require_import("ml_connector.sim.ifs", "create_app")

# Retries without real waits worth mentioning; the Retry-After test relies on the server's value, not on backoff.
FAST_HTTP = HttpSettings(max_attempts=5, backoff_initial=0.01, backoff_max=0.05, max_retry_seconds=30)
PO_SET = "PurchaseOrderHandling.svc/PurchaseOrderSet"


class SimControl:
    """The simulator's control API (/_sim/...), which is not part of IFS and needs no auth."""

    def __init__(self, url: str) -> None:
        self.http = httpx2.Client(base_url=url + "/_sim", timeout=60)

    def _ok(self, response: httpx2.Response) -> Any:
        assert response.status_code < 300, (response.status_code, response.text)
        return response.json() if response.content else None

    def reset(self, **seed: Any) -> Any:
        return self._ok(self.http.post("/reset", json=seed))

    def create(self, entity: str, *, count: int | None = None, values: dict[str, Any] | None = None) -> Any:
        body: dict[str, Any] = {"count": count} if count is not None else {"values": values or {}}
        return self._ok(self.http.post(f"/records/{entity}", json=body))

    def edit(self, entity: str, key: str | int, changes: dict[str, Any]) -> Any:
        return self._ok(self.http.patch(f"/records/{entity}/{quote(str(key), safe='')}", json=changes))

    def bulk_edit(self, entity: str, keys: list[Any], changes: dict[str, Any]) -> Any:
        return self._ok(self.http.post(f"/records/{entity}/bulk-edit", json={"keys": keys, "changes": changes}))

    def raw(self, entity: str, key: str | int) -> Any:
        return self._ok(self.http.get(f"/records/{entity}/{quote(str(key), safe='')}"))

    def faults(self, **faults: Any) -> Any:
        return self._ok(self.http.put("/faults", json=faults))

    def clock(self, offset_seconds: float) -> Any:
        return self._ok(self.http.put("/clock", json={"offset_seconds": offset_seconds}))

    def revoke(self) -> Any:
        return self._ok(self.http.post("/tokens/revoke"))

    def requests(self) -> dict[str, Any]:
        result: dict[str, Any] = self._ok(self.http.get("/requests"))
        return result

    def clear_requests(self) -> None:
        self._ok(self.http.delete("/requests"))


def connection(url: str, **overrides: Any) -> IfsConnection:
    values: dict[str, Any] = {
        "url": url,
        "realm": "mlc",
        "client_id": "ml-connector",
        "client_secret": "sim-secret",
        "http": FAST_HTTP,
    }
    values.update(overrides)
    return IfsConnection(**values)


def start(**options: Any) -> tuple[Any, ServerHandle]:
    app = sim_ifs.create_app(sim_ifs.IfsSimOptions(**options))
    return app, serve_in_thread(app)


@pytest.fixture(scope="module")
def sim() -> Iterator[tuple[ServerHandle, SimControl]]:
    """A default-sized simulator shared by a module; tests reset faults they set."""
    _app, handle = start()
    control = SimControl(handle.url)
    yield handle, control
    control.http.close()
    handle.stop()


@pytest.fixture
def client(sim: tuple[ServerHandle, SimControl]) -> Iterator[IfsClient]:
    handle, control = sim
    control.faults(
        latency_ms=0, rate_limit_per_minute=None, error_503_rate=0, drop_rate=0, concurrent_edit_rate=0, fail_next=[]
    )
    control.clock(0)
    with IfsClient.from_connection(connection(handle.url)) as c:
        yield c
