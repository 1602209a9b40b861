"""The connector a command or the daemon works with: one wiring of store, OAuth token store and metrics.

Kept apart from the daemon so that ``ml-connector sync`` and ``replay`` open a connector without importing the
scheduler, the web app and the job queue (each CLI start pays for every import)."""

from __future__ import annotations

from pathlib import Path

from ml_connector.config.connections import JiraOAuth
from ml_connector.config.models import ConnectorConfig
from ml_connector.engine import Connector
from ml_connector.engine.heap import settle_heap
from ml_connector.metrics import Metrics
from ml_connector.store import Store


def build_connector(config_path: Path | None, config: ConnectorConfig) -> Connector:
    """A connector for the daemon: OAuth tokens live encrypted in the store (rotations survive restarts)."""
    assert config.store.url is not None
    store = Store.open(config.store.url, connection=config.name)
    token_store = None
    if isinstance(config.jira.auth, JiraOAuth):
        from ml_connector.runner.credentials import DbTokenStore, resolve_key  # cryptography: only OAuth needs it

        token_store = DbTokenStore(store, resolve_key(config, config_path=config_path))
    # Every API call, 429 and retry is counted; the web app's /metrics serves this same registry.
    metrics = Metrics(store=store, flows=[f.name for f in config.flows], connection=config.name)
    connector = Connector(config=config, store=store, token_store=token_store, observer=metrics)
    settle_heap()
    return connector
