"""Where jobs run: the local daemon (APScheduler 3 guarded by a database lease) and its helpers."""

from ml_connector.runner.credentials import DbTokenStore, load_or_create_key, resolve_key
from ml_connector.runner.daemon import ConnectionsDaemon, Daemon, DaemonOptions, LeaseBusy, build_connector
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
