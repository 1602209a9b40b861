"""Where jobs run: the local daemon (APScheduler 3 guarded by a database lease) and its helpers.

The names below are imported on first use (PEP 562): ``ml-connector sync`` imports the light
:mod:`ml_connector.runner.connector`, and must not pay for the scheduler, web app and job queue imports on every
process start."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ml_connector.runner.connector import build_connector
    from ml_connector.runner.credentials import DbTokenStore, load_or_create_key, resolve_key
    from ml_connector.runner.daemon import ConnectionsDaemon, Daemon, DaemonOptions, LeaseBusy
    from ml_connector.runner.jobs import run_flow_job
    from ml_connector.runner.lease import Lease
    from ml_connector.runner.scheduler import LocalScheduler, trigger_for
    from ml_connector.runner.webhooks import WebhookManager, WebhookStatus

__all__ = [
    "ConnectionsDaemon",
    "Daemon",
    "DaemonOptions",
    "DbTokenStore",
    "Lease",
    "LeaseBusy",
    "LocalScheduler",
    "WebhookManager",
    "WebhookStatus",
    "build_connector",
    "load_or_create_key",
    "resolve_key",
    "run_flow_job",
    "trigger_for",
]

# The module of this package each name above comes from.
_HOME = {
    "ConnectionsDaemon": "daemon",
    "Daemon": "daemon",
    "DaemonOptions": "daemon",
    "DbTokenStore": "credentials",
    "Lease": "lease",
    "LeaseBusy": "daemon",
    "LocalScheduler": "scheduler",
    "WebhookManager": "webhooks",
    "WebhookStatus": "webhooks",
    "build_connector": "connector",
    "load_or_create_key": "credentials",
    "resolve_key": "credentials",
    "run_flow_job": "jobs",
    "trigger_for": "scheduler",
}


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOME[name]}"), name)
