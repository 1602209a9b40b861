"""Opening the connector from the command line: config path resolution, logging, store."""

from __future__ import annotations

import os
from pathlib import Path

import structlog
import typer

from ml_connector.config.models import ConnectorConfig, load_config
from ml_connector.engine import Connector
from ml_connector.errors import ConfigError
from ml_connector.logging import configure, register_secret
from ml_connector.store import Store
from ml_connector.store.db import require_driver

DEFAULT_CONFIG = "ml-connector.yaml"

ConfigOption = typer.Option(
    None,
    "--config",
    "-c",
    help=f"Config file (default: $ML_CONNECTOR_CONFIG or ./{DEFAULT_CONFIG}).",
    show_default=False,
)


def config_path(value: Path | None) -> Path:
    if value is not None:
        return value
    return Path(os.environ.get("ML_CONNECTOR_CONFIG", DEFAULT_CONFIG))


def load(value: Path | None, *, store_only: bool = False) -> ConnectorConfig:
    """The validated config; ``store_only`` (commands that only read the store) lets IFS/Jira secrets be unset."""
    path = config_path(value)
    if not path.exists():
        raise ConfigError(f"config file {path} not found; create one with `ml-connector init`")
    config = load_config(path, store_only=store_only)
    require_driver(config.store.url or "")  # every command, `check` included, names a missing extra up front
    for secret in config.secret_values():
        register_secret(secret)
    configure(level=os.environ.get("ML_CONNECTOR_LOG_LEVEL", config.log_level))
    for note in config.deprecations():
        structlog.get_logger("ml_connector.config").warning("config.deprecated", file=str(path), detail=note)
    return config


def open_connector(value: Path | None) -> Connector:
    """The same wiring as the daemon: a rotated OAuth refresh token is saved (encrypted) in the store, so the
    next command or the daemon can still authenticate."""
    from ml_connector.runner.daemon import build_connector

    config = load(value)
    return build_connector(config_path(value), config)


def open_store(value: Path | None) -> tuple[ConnectorConfig, Store]:
    """The config and the store, for commands that only read it (status, records, audit): no IFS or Jira client
    is built, so their secrets need not be set."""
    config = load(value, store_only=True)
    return config, Store.open(config.store.url or "")
