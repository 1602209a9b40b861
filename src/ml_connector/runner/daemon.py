"""``ml-connector run``: lease, scheduler, web app and webhook upkeep in one process; clean stop on SIGTERM."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType
from typing import TYPE_CHECKING, Any

import structlog

from ml_connector.config.connections import JiraBasicAuth
from ml_connector.engine import Connector
from ml_connector.errors import ConfigError
from ml_connector.logging import adopt_uvicorn_loggers
from ml_connector.metrics import Metrics
from ml_connector.runner.jobqueue import JobQueue, queued_work
from ml_connector.runner.jobs import run_flow_job
from ml_connector.runner.lease import Lease
from ml_connector.runner.scheduler import LocalScheduler
from ml_connector.runner.webhooks import WebhookManager
from ml_connector.serve import serve_in_thread

if TYPE_CHECKING:
    from ml_connector.web.worker import BackgroundWork

log = structlog.get_logger("ml_connector.runner")

WEBHOOK_CHECK_SECONDS = 3600.0


class LeaseBusy(Exception):
    """Another daemon holds the scheduler lease; ``description`` says who and until when."""

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description


@dataclass
class DaemonOptions:
    host: str | None = None
    port: int | None = None
    wait: bool = False  # wait for the lease instead of exiting
    run_now: bool = False  # run every flow once at start, then follow the schedule
    serve_web: bool = True
    poll_interval: float = 3.0
    wait_poll: float = 5.0


@dataclass
class Daemon:
    connector: Connector
    options: DaemonOptions = field(default_factory=DaemonOptions)
    lease: Lease | None = None
    scheduler: LocalScheduler | None = None
    webhooks: WebhookManager | None = None
    queue: JobQueue | None = None  # runner.kind procrastinate: flow runs, inbox and replays are deferred to it
    web_url: str | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _server: Any = None

    def request_stop(self, signum: int | None = None, _frame: FrameType | None = None) -> None:
        if not self._stop.is_set():
            log.info("daemon.stopping", signal=signal.Signals(signum).name if signum else None)
        self._stop.set()
        self.connector.stopping.set()  # HTTP waits (backoff, Retry-After) end now instead of after their delay
        if self.scheduler is not None:
            # Tell runs in flight at once: they stop at the next safe point (between pages or Jira batches).
            self.scheduler.stop_event.set()

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)

    def acquire_lease(self, *, on_wait: Callable[[str], None] | None = None) -> None:
        """Take the scheduler lease or raise ``LeaseBusy``; with ``wait``, poll until it is free or stop is asked."""
        config = self.connector.config
        self.lease = self.lease or Lease(self.connector.store, ttl=config.runner.lease_ttl)
        told = False
        while not self.lease.acquire():
            description = self.lease.describe_holder()
            if not self.options.wait:
                raise LeaseBusy(description)
            if not told and on_wait is not None:
                on_wait(description)
                told = True
            if self._stop.wait(self.options.wait_poll):
                raise LeaseBusy(description)

    def setup_webhooks(self) -> None:
        """OAuth: register/reuse/refresh the dynamic webhook. Basic: deliveries are admin webhooks; need a secret."""
        config = self.connector.config
        if not config.webhooks.enabled:
            return
        auth = config.jira.auth
        if isinstance(auth, JiraBasicAuth):
            if config.jira.webhook_secret is None:
                raise ConfigError(
                    "webhooks are enabled with Basic auth, so Jira admin webhooks deliver events; set "
                    "jira.webhook_secret to the secret configured on that webhook so deliveries can be verified",
                    path="jira.webhook_secret",
                )
            log.info("webhook.admin", note="admin webhook deliveries are verified with jira.webhook_secret")
            return
        self.webhooks = WebhookManager.for_config(config, lambda: self.connector.jira, self.connector.store)
        self.webhooks.maintain()

    def start_web(self) -> None:
        from ml_connector.web import create_app

        config = self.connector.config
        host = self.options.host or config.web.host
        port = self.options.port if self.options.port is not None else config.web.port
        app = create_app(self.connector, scheduler=self.scheduler, work=self.work_factory())
        self._server = serve_in_thread(app, host=host, port=port, log_level="warning")
        adopt_uvicorn_loggers()  # its errors get our short, redacted tracebacks
        self.web_url = self._server.url
        log.info("web.listening", url=self.web_url)

    def work_factory(self) -> Callable[[Connector, Metrics], BackgroundWork]:
        """What runs the web app's webhook events and replays: queued jobs with a job queue, else this process."""
        from ml_connector.web.worker import BackgroundWork  # the web package imports the runner: import late

        return queued_work(self.queue) if self.queue is not None else BackgroundWork

    def start(self) -> None:
        """Everything but the wait: lease (raises LeaseBusy), scheduler, webhooks, web app."""
        self.acquire_lease()
        extra: list[tuple[Callable[[], None], float]] = []
        self.setup_webhooks()
        if self.webhooks is not None:
            extra.append((self.webhooks.maintain, WEBHOOK_CHECK_SECONDS))
        self.scheduler = LocalScheduler(
            self.connector,
            lease=self.lease,
            job=self.queue.flow_job if self.queue is not None else run_flow_job,
            poll_interval=self.options.poll_interval,
            extra_jobs=extra,
        )
        self.scheduler.start()
        if self.options.serve_web:
            self.start_web()
        if self.options.run_now:
            self.scheduler.run_all_now()

    def wait(self) -> None:
        while not self._stop.wait(1.0):
            pass

    def stop(self) -> None:
        """Safe stop: runs end at a safe point (state consistent), the lease is released, the web app closed."""
        self.request_stop()
        started = time.monotonic()
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=True)
        elif self.lease is not None:
            self.lease.release()
        if self._server is not None:
            self._server.stop()
        if self.queue is not None:
            self.queue.close()
        self.connector.close()
        log.info("daemon.stopped", seconds=round(time.monotonic() - started, 3))


@dataclass
class ConnectionsDaemon:
    """``ml-connector run`` for a file with several connections: one ``Daemon`` per connection (its connector,
    scheduler lease, scheduler and webhook upkeep, all scoped to its connection's rows) and one web app serving
    them all (web/deployment.py)."""

    daemons: list[Daemon]
    options: DaemonOptions = field(default_factory=DaemonOptions)
    web_url: str | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _server: Any = None
    _apps: list[Any] = field(default_factory=list)

    @classmethod
    def build(cls, connectors: list[Connector], options: DaemonOptions) -> ConnectionsDaemon:
        own = DaemonOptions(**{**options.__dict__, "serve_web": False})
        return cls([Daemon(connector, own) for connector in connectors], options)

    def request_stop(self, signum: int | None = None, frame: FrameType | None = None) -> None:
        self._stop.set()
        for daemon in self.daemons:
            daemon.request_stop(signum, frame)

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)

    def acquire_lease(self, *, on_wait: Callable[[str], None] | None = None) -> None:
        """Every connection's scheduler lease (``LeaseBusy`` names the first one another daemon holds)."""
        for daemon in self.daemons:
            try:
                daemon.acquire_lease(on_wait=on_wait)
            except LeaseBusy as busy:
                raise LeaseBusy(f"connection {daemon.connector.config.name}: {busy.description}") from None

    def start(self) -> None:
        for daemon in self.daemons:
            with structlog.contextvars.bound_contextvars(connection=daemon.connector.config.name):
                daemon.start()
        if self.options.serve_web:
            self.start_web()

    def start_web(self) -> None:
        from ml_connector.web import create_app
        from ml_connector.web.deployment import create_connections_app

        names = [daemon.connector.config.name for daemon in self.daemons]
        apps = {
            daemon.connector.config.name: create_app(
                daemon.connector, scheduler=daemon.scheduler, connections=names, work=daemon.work_factory()
            )
            for daemon in self.daemons
        }
        for app in apps.values():
            app.state.work.start()  # a mounted app's lifespan does not run: its inbox thread starts here
            app.state.work.wake_inbox()
        self._apps = list(apps.values())
        config = self.daemons[0].connector.config  # web settings are shared by every connection
        host = self.options.host or config.web.host
        port = self.options.port if self.options.port is not None else config.web.port
        self._server = serve_in_thread(create_connections_app(apps), host=host, port=port, log_level="warning")
        adopt_uvicorn_loggers()
        self.web_url = self._server.url
        log.info("web.listening", url=self.web_url, connections=names)

    @property
    def lease(self) -> Lease | None:
        return self.daemons[0].lease

    def wait(self) -> None:
        while not self._stop.wait(1.0):
            pass

    def stop(self) -> None:
        self.request_stop()
        if self._server is not None:
            self._server.stop()
        for app in self._apps:
            app.state.work.stop()
        for daemon in self.daemons:
            daemon.stop()
