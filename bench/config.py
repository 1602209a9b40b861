"""The connector configuration under test: the example config's purchase-order flow, pointed at the simulators."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from bench.sims import JIRA_AUTH, WEBHOOK_SECRET
from ml_connector.config.deployment import SHARED_KEYS


def example() -> dict[str, Any]:
    text = resources.files("ml_connector.config").joinpath("templates/example.yaml").read_text(encoding="utf-8")
    data: dict[str, Any] = yaml.safe_load(text)
    return data


def write_config(directory: Path, *, ifs_url: str, jira_url: str, ifs_rpm: float | None) -> Path:
    """A YAML config with one flow (purchase orders) and a SQLite store in ``directory``."""
    return _write(directory, connector_data(directory, ifs_url=ifs_url, jira_url=jira_url, ifs_rpm=ifs_rpm))


def write_connections_config(directory: Path, sims: list[tuple[str, str, str]], *, store_url: str,
                             ifs_rpm: float | None) -> Path:
    """A ``connections:`` file (``sims``: name, IFS URL, Jira URL each) on one PostgreSQL store, ``runner.kind:
    procrastinate``: each connection is :func:`write_config`'s connector against its own pair of simulators."""
    items = []
    for name, ifs_url, jira_url in sims:
        data = connector_data(directory, ifs_url=ifs_url, jira_url=jira_url, ifs_rpm=ifs_rpm)
        items.append({"name": name, **{k: v for k, v in data.items() if k not in SHARED_KEYS}})
    shared = {k: v for k, v in data.items() if k in SHARED_KEYS}
    shared.update(store={"url": store_url}, runner={"kind": "procrastinate"})
    return _write(directory, {**shared, "connections": items})


def connector_data(directory: Path, *, ifs_url: str, jira_url: str, ifs_rpm: float | None) -> dict[str, Any]:
    """The configuration of :func:`write_config` as a mapping.

    The flow's base filter (not Cancelled) is dropped so that every seeded order is in scope and "10,000 purchase
    orders" means 10,000 issues. IFS pacing is set just under the simulator's budget (the example's 900/min is the
    operator's safety margin; the benchmark states the value it uses). Its bucket holds 40 requests (the default is
    10): 40 at once plus 950 a minute stay within the simulator's 1,000 in any rolling minute, and a page's line
    reads, the lookups and the next pages of both ends go out together instead of a sixteenth of a second apart.
    """
    data = example()
    flow = next(f for f in data["flows"] if f["name"] == "purchase_orders")
    flow["filter"] = None
    data["flows"] = [flow]
    data["ifs"].update(url=ifs_url, realm="mlc", client_id="ml-connector", client_secret="sim-secret")
    data["ifs"]["http"] = {"requests_per_minute": ifs_rpm, "burst": 40, "backoff_initial": 0.2, "backoff_max": 5.0,
                           "max_attempts": 10}
    data["jira"].update(url=jira_url, simulator=True, webhook_secret=WEBHOOK_SECRET)
    data["jira"]["auth"] = {"kind": "basic", "email": JIRA_AUTH[0], "api_token": JIRA_AUTH[1]}
    data["jira"]["http"] = {"backoff_initial": 0.2, "backoff_max": 5.0, "max_attempts": 10}
    data["store"] = {"url": f"sqlite:///{directory / 'state.sqlite'}"}
    data["webhooks"] = {"enabled": True}  # scenario 5 delivers to /webhooks/jira, which exists only when enabled
    data["log_level"] = "WARNING"
    return data


def _write(directory: Path, data: dict[str, Any]) -> Path:
    path = directory / "ml-connector.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path
