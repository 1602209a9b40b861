"""Opening the connector from the command line: config path resolution, logging, store."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import structlog
import typer

from ml_connector.errors import ConfigError
from ml_connector.logging import LOG_FORMATS, configure, default_log_format, register_secret

# The root command reads ``selection`` and ``log_overrides`` from here before any command runs, the simulators'
# included: config, engine and store are imported where a connector command first needs them.
if TYPE_CHECKING:
    from ml_connector.config.models import ConnectorConfig
    from ml_connector.engine import Connector
    from ml_connector.store import Store

DEFAULT_CONFIG = "ml-connector.yaml"
LOG_LEVEL_ENV = "ML_CONNECTOR_LOG_LEVEL"
LOG_FORMAT_ENV = "ML_CONNECTOR_LOG_FORMAT"
# ``--log-level`` / ``--log-format`` from the root command line; they win over the environment and the config.
log_overrides: dict[str, str | None] = {"level": None, "format": None}
# ``--connection`` from the root command line (None: the only connection of the file).
selection: dict[str, str | None] = {"connection": None}

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


def load(value: Path | None, *, service: bool = False, store_only: bool = False) -> ConnectorConfig:
    """The validated config of the connection ``--connection`` names (or the only one); ``store_only`` (commands
    that only read the store) lets IFS/Jira secrets be unset; ``service`` (the daemon) logs JSON when stderr is not
    a terminal."""
    from ml_connector.config.models import load_config

    path = _existing(value)
    return _prepared(path, [load_config(path, store_only=store_only, connection=selection["connection"])], service)[0]


def load_all(value: Path | None, *, service: bool = False) -> list[ConnectorConfig]:
    """Every connection of the file (the daemon runs them all), or only the one ``--connection`` names."""
    from ml_connector.config.models import load_config, load_connections

    path = _existing(value)
    if selection["connection"] is not None:
        return _prepared(path, [load_config(path, connection=selection["connection"])], service)
    return _prepared(path, load_connections(path), service)


def _existing(value: Path | None) -> Path:
    path = config_path(value)
    if not path.exists():
        raise ConfigError(f"config file {path} not found; create one with `ml-connector init`")
    return path


def _prepared(path: Path, configs: list[ConnectorConfig], service: bool) -> list[ConnectorConfig]:
    """Secrets registered for redaction, logging configured (settings shared by every connection), notes logged."""
    from ml_connector.store.db import require_driver

    require_driver(configs[0].store.url or "")  # every command, `check` included, names a missing extra up front
    for config in configs:
        for secret in config.secret_values():
            register_secret(secret)
    configure_logging(configs[0], service=service)
    for note in dict.fromkeys(note for config in configs for note in config.deprecations()):
        structlog.get_logger("ml_connector.config").warning("config.deprecated", file=str(path), detail=note)
    return configs


def configure_logging(config: ConnectorConfig, *, service: bool = False) -> None:
    """Level and format: command line, then environment, then config; a service on a non-terminal logs JSON."""
    level = log_overrides["level"] or os.environ.get(LOG_LEVEL_ENV) or config.log_level
    fmt = log_overrides["format"] or os.environ.get(LOG_FORMAT_ENV) or config.log_format
    if fmt is None:
        fmt = default_log_format() if service else "console"
    if fmt not in LOG_FORMATS:
        raise ConfigError(f"log format {fmt!r} is not one of console, json (set {LOG_FORMAT_ENV} or log_format)")
    configure(level=level, log_format=fmt)


def open_connector(value: Path | None) -> Connector:
    """The same wiring as the daemon: a rotated OAuth refresh token is saved (encrypted) in the store, so the
    next command or the daemon can still authenticate."""
    from ml_connector.runner.connector import build_connector

    config = load(value)
    return build_connector(config_path(value), config)


def open_store(value: Path | None) -> tuple[ConnectorConfig, Store]:
    """The config and the store, for commands that only read it (status, records, audit): no IFS or Jira client
    is built, so their secrets need not be set."""
    from ml_connector.store import Store

    config = load(value, store_only=True)
    return config, Store.open(config.store.url or "", connection=config.name)
