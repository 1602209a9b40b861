"""End-to-end harness: both simulators on loopback ports, a connector configured against them, sim control helpers."""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import httpx2
import yaml

from ml_connector.config.loader import validate
from ml_connector.config.models import ConnectorConfig
from ml_connector.engine import Connector
from ml_connector.serve import ServerHandle, serve_in_thread
from ml_connector.sim.ifs import IfsSimOptions
from ml_connector.sim.ifs import create_app as create_ifs
from ml_connector.sim.jira import JiraSimOptions
from ml_connector.sim.jira import create_app as create_jira
from ml_connector.store import Store

# Figures a test wants in the run's output whatever ``-s`` says (trial counts); the e2e conftest prints them.
REPORT_LINES: list[str] = []


def example_config() -> dict[str, Any]:
    text = resources.files("ml_connector.config").joinpath("templates/example.yaml").read_text(encoding="utf-8")
    data: dict[str, Any] = yaml.safe_load(text)
    return data


def connections_config(*names: str, base: dict[str, Any] | None = None) -> dict[str, Any]:
    """``base`` (default the example config) as a ``connections:`` list with one item per name, each with its own
    IFS client secret ``ifs-secret-of-<name>`` and Jira API token ``jira-token-of-<name>``."""
    from ml_connector.config.deployment import SHARED_KEYS

    data = base if base is not None else example_config()
    shared = {k: v for k, v in data.items() if k in SHARED_KEYS}
    items = []
    for name in names:
        item: dict[str, Any] = {"name": name, **copy.deepcopy({k: v for k, v in data.items() if k not in SHARED_KEYS})}
        item["ifs"]["client_secret"] = f"ifs-secret-of-{name}"
        if item["jira"].get("auth", {}).get("api_token"):
            item["jira"]["auth"]["api_token"] = f"jira-token-of-{name}"
        items.append(item)
    return {**shared, "connections": items}


class SimControl:
    """The `/_sim/` control API of one simulator."""

    def __init__(self, url: str) -> None:
        self.url = url
        # No kept-alive connection: uvicorn closes one idle for 5 s, and a call that reuses it just then fails with
        # "Server disconnected" (a chaos cell's control call after a 7 s run did). Loopback connections are cheap.
        self.http = httpx2.Client(base_url=url, timeout=60, limits=httpx2.Limits(max_keepalive_connections=0))

    def close(self) -> None:
        self.http.close()

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.http.request(method, f"/_sim/{path.lstrip('/')}", **kwargs)
        response.raise_for_status()
        return response.json() if response.content else None

    def requests(self) -> dict[str, Any]:
        data: dict[str, Any] = self.call("GET", "requests")
        return data

    def counts(self) -> dict[str, int]:
        return dict(self.requests()["counts"])

    def clear_requests(self) -> None:
        self.call("DELETE", "requests")

    def faults(self, **values: Any) -> None:
        self.call("PUT", "faults", json=values)


def issues_per_key(issues: Iterable[dict[str, Any]]) -> Counter[str]:
    """How many of ``issues`` (the Jira simulator's view) carry each IFS key in their identity property."""
    return Counter(
        str(i["properties"]["ml-connector"]["key"]) for i in issues if "ml-connector" in (i.get("properties") or {})
    )


@dataclass
class World:
    ifs: ServerHandle
    jira: ServerHandle
    ifs_sim: SimControl
    jira_sim: SimControl
    ifs_state: Any  # the in-process IFS simulator (read-only use in assertions)

    def ifs_rows(self, entity: str) -> list[dict[str, Any]]:
        """Every record of an IFS entity as the simulator holds it (objversion included)."""
        sim = self.ifs_state
        with sim.lock:
            return [sim.raw(record, entity) for record in sim.stores[entity].records.values()]

    def jira_issues(self, project: str | None = None) -> list[dict[str, Any]]:
        data = self.jira_sim.call("GET", "issues", params={"project": project} if project else None)
        issues: list[dict[str, Any]] = data["issues"]
        return issues

    def issues_per_key(self) -> Counter[str]:
        return issues_per_key(self.jira_issues())

    def jira_writes(self) -> dict[str, int]:
        """Request-log counts of Jira calls that change something (search POSTs are reads)."""
        return {
            k: v
            for k, v in self.jira_sim.counts().items()
            if k.split()[0] in {"POST", "PUT", "DELETE"} and "/search" not in k
        }

    def unsafe_ifs_writes(self) -> dict[str, int]:
        """IFS writes that did not carry one concrete ETag: ``If-Match: *``, none (IFS upserts then) or garbage.

        The simulator accepts the first two as IFS does, so only this tally shows the connector relying on them."""
        tally: dict[str, int] = self.ifs_sim.requests()["preconditions"]
        return {kind: n for kind, n in tally.items() if not kind.endswith(" etag")}

    def stop(self) -> None:
        self.ifs_sim.close()
        self.jira_sim.close()
        self.ifs.stop()
        self.jira.stop()


@contextmanager
def world(
    *,
    purchase_orders: int = 50,
    work_orders: int = 10,
    ifs: dict[str, Any] | None = None,
    jira: dict[str, Any] | None = None,
) -> Iterator[World]:
    ifs_app = create_ifs(IfsSimOptions(purchase_orders=purchase_orders, work_orders=work_orders, **(ifs or {})))
    jira_app = create_jira(JiraSimOptions(**(jira or {})))
    ifs_handle = serve_in_thread(ifs_app)
    jira_handle = serve_in_thread(jira_app)
    w = World(ifs_handle, jira_handle, SimControl(ifs_handle.url), SimControl(jira_handle.url), ifs_app.state.sim)
    try:
        yield w
        # every test run on this harness proves the connector never wrote to IFS without a concrete ETag
        assert not w.unsafe_ifs_writes(), f"IFS writes without a concrete If-Match: {w.unsafe_ifs_writes()}"
    finally:
        w.stop()


def connector_config(
    w: World, tmp_path: Path, *, store_url: str | None = None, tweak: dict[str, Any] | None = None
) -> ConnectorConfig:
    data = example_config()
    data["ifs"].update(url=w.ifs.url, realm="mlc", client_id="ml-connector", client_secret="sim-secret")
    data["ifs"]["http"] = {"requests_per_minute": None, "backoff_initial": 0.05, "backoff_max": 1.0, "max_attempts": 8}
    data["jira"].update(url=w.jira.url, simulator=True, webhook_secret="sim-webhook-secret")
    data["jira"]["auth"] = {"kind": "basic", "email": "connector@example.com", "api_token": "sim-api-token"}
    data["jira"]["http"] = {"backoff_initial": 0.05, "backoff_max": 1.0, "max_attempts": 8}
    data["store"] = {"url": store_url or f"sqlite:///{tmp_path / 'state.sqlite'}"}
    data["sync"] = {"reconcile_settle": 1, "retry_initial": 0, "retry_max": 0}
    if tweak:
        _merge(data, tweak)
    return validate(ConnectorConfig, data)


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> None:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict) and key != "auth":
            _merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)


def make_connector(config: ConnectorConfig) -> Connector:
    assert config.store.url is not None
    return Connector(config=config, store=Store.open(config.store.url))


def oauth_refresh_token(jira_url: str) -> str:
    """Run the 3LO consent against the Jira simulator at ``jira_url`` and return the first refresh token."""
    from urllib.parse import parse_qs, urlsplit

    redirect = "http://127.0.0.1/callback"
    with httpx2.Client(base_url=jira_url) as http:
        answer = http.get(
            "/authorize",
            params={
                "audience": "api.atlassian.com",
                "client_id": "sim-oauth-client",
                "response_type": "code",
                "scope": "read:jira-work write:jira-work read:jira-user offline_access",
                "redirect_uri": redirect,
                "state": "s",
                "prompt": "consent",
            },
        )
        code = parse_qs(urlsplit(answer.headers["location"]).query)["code"][0]
        tokens = (
            http.post(
                "/oauth/token",
                json={
                    "grant_type": "authorization_code",
                    "client_id": "sim-oauth-client",
                    "client_secret": "sim-oauth-secret",
                    "code": code,
                    "redirect_uri": redirect,
                },
            )
            .raise_for_status()
            .json()
        )
    return str(tokens["refresh_token"])
