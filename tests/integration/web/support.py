"""Test support for the web app: a connector built from the example config (`ml-connector init`), the simulators,
and SQL statement counting. Imported by the unit, integration and browser tests of ``ml_connector.web``."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import httpx2
import yaml
from conftest import poll_until
from sqlalchemy import event

from ml_connector.cli.commands import with_webhook_secret
from ml_connector.config.models import load_config
from ml_connector.engine import Connector
from ml_connector.metrics import Metrics
from ml_connector.serve import ServerHandle, serve_in_thread
from ml_connector.store import Store

ADMIN_TOKEN = "test-admin-token-0123456789"
READ_TOKEN = "test-read-token-9876543210"
WEBHOOK_SECRET = "test-webhook-secret-0123456789abcdefghijklmnop"  # 46 bytes, not a published default


def enable_webhooks(data: dict[str, Any]) -> None:
    """A ``tweak``: serve POST /webhooks/jira."""
    data.setdefault("webhooks", {})["enabled"] = True


def write_config(
    tmp_path: Path,
    *,
    admin_token: str | None = None,
    tweak: Callable[[dict[str, Any]], None] | None = None,
) -> Path:
    """The example config as `ml-connector init` writes it, plus a SQLite store in ``tmp_path``."""
    text = resources.files("ml_connector.config").joinpath("templates/example.yaml").read_text(encoding="utf-8")
    text = with_webhook_secret(text, WEBHOOK_SECRET)
    text += f"\nstore:\n  url: sqlite:///{tmp_path / 'state.sqlite'}\n"
    if admin_token:
        text += f"web:\n  admin_token: {admin_token}\n"
    if tweak is not None:
        data = yaml.safe_load(text)
        tweak(data)
        text = yaml.safe_dump(data, sort_keys=False)
    path = tmp_path / "ml-connector.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def make_connector(
    tmp_path: Path,
    *,
    ifs_url: str = "http://127.0.0.1:9",
    jira_url: str = "http://127.0.0.1:9",
    admin_token: str | None = None,
    tweak: Callable[[dict[str, Any]], None] | None = None,
    metrics: bool = True,
) -> Connector:
    path = write_config(tmp_path, admin_token=admin_token, tweak=tweak)
    config = load_config(path, env={"IFS_URL": ifs_url, "JIRA_URL": jira_url})
    assert config.store.url is not None
    store = Store.open(config.store.url)
    observer = Metrics(store=store, flows=[f.name for f in config.flows]) if metrics else None
    return Connector(config=config, store=store, observer=observer)


@dataclass
class Sims:
    ifs: ServerHandle
    jira: ServerHandle
    ifs_app: Any
    jira_app: Any

    def ifs_control(self, method: str, path: str, **kwargs: Any) -> Any:
        response = httpx2.request(method, f"{self.ifs.url}/_sim/{path}", timeout=30, **kwargs)
        response.raise_for_status()
        return response.json() if response.content else None

    def jira_control(self, method: str, path: str, **kwargs: Any) -> Any:
        response = httpx2.request(method, f"{self.jira.url}/_sim/{path}", timeout=30, **kwargs)
        response.raise_for_status()
        return response.json() if response.content else None


@contextmanager
def simulators(*, purchase_orders: int = 30, work_orders: int = 10) -> Iterator[Sims]:
    from ml_connector.sim.ifs import IfsSimOptions
    from ml_connector.sim.ifs import create_app as create_ifs
    from ml_connector.sim.jira import JiraSimOptions
    from ml_connector.sim.jira import create_app as create_jira

    ifs_app = create_ifs(IfsSimOptions(purchase_orders=purchase_orders, work_orders=work_orders))
    jira_app = create_jira(JiraSimOptions())
    ifs = serve_in_thread(ifs_app)
    jira = serve_in_thread(jira_app)
    try:
        yield Sims(ifs, jira, ifs_app, jira_app)
    finally:
        jira.stop()
        ifs.stop()


class StatementCounter:
    """Counts SQL statements sent through a SQLAlchemy engine (what a page costs, independent of wall time)."""

    def __init__(self, store: Store) -> None:
        self.engine = store.engine
        self.statements: list[tuple[str, Any]] = []
        self._lock = threading.Lock()
        self.active = False
        event.listen(self.engine, "before_cursor_execute", self._on_execute)

    def _on_execute(self, _conn: Any, _cursor: Any, statement: str, parameters: Any, _ctx: Any, _many: bool) -> None:
        if self.active:
            with self._lock:
                self.statements.append((statement, parameters))

    @contextmanager
    def counting(self) -> Iterator[list[tuple[str, Any]]]:
        self.statements = []
        self.active = True
        try:
            yield self.statements
        finally:
            self.active = False

    def close(self) -> None:
        event.remove(self.engine, "before_cursor_execute", self._on_execute)


def wait_for(predicate: Callable[[], bool], timeout: float = 5.0, interval: float = 0.05) -> bool:
    return poll_until(predicate, timeout=timeout, interval=interval)
