"""The local scheduler (APScheduler 3): one job per flow, at most one run per flow, coalesced misfires.

It implements the web app's ``SchedulerControl`` protocol. Pause state and sync requests live in ``flow_controls`` so
they survive restarts and can come from another process (the dashboard of a second web server, the CLI).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import structlog
from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED, JobEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from ml_connector.config.models import FlowConfig, parse_schedule
from ml_connector.engine import Connector
from ml_connector.runner.jobs import FlowJob, run_flow_job
from ml_connector.runner.lease import Lease
from ml_connector.store import utcnow

log = structlog.get_logger("ml_connector.runner")

FLOW_JOB = "flow:{connection}:{flow}"  # one id per connection and flow, whichever scheduler runs them
# A scheduled run that could not start on time (a busy or paused process) still starts if at most this late.
MISFIRE_GRACE_SECONDS = 300


def trigger_for(schedule: str, *, start: datetime | None = None) -> BaseTrigger:
    """APScheduler trigger for a configured schedule (UTC: a daemon's runs must not shift with DST)."""
    kind, value = parse_schedule(schedule)
    if kind == "interval":
        return IntervalTrigger(seconds=float(value), start_date=start, timezone=UTC)
    return CronTrigger.from_crontab(str(value), timezone=UTC)


def _aware(value: Any) -> datetime | None:
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class LocalScheduler:
    """Schedules the enabled flows of one connector while it holds the scheduler lease."""

    def __init__(
        self,
        connector: Connector,
        *,
        lease: Lease | None = None,
        job: FlowJob = run_flow_job,
        poll_interval: float = 3.0,
        lease_renew_interval: float | None = None,
        extra_jobs: list[tuple[Callable[[], None], float]] | None = None,
    ) -> None:
        self.connector = connector
        self.config = connector.config
        self.lease = lease
        self.job = job
        self.poll_interval = poll_interval
        self.renew_interval = lease_renew_interval or (
            max(1.0, lease.ttl.total_seconds() / 3) if lease is not None else 20.0
        )
        self.extra_jobs = extra_jobs or []
        self.stop_event = threading.Event()
        self.runs: Counter[str] = Counter()  # flow → runs started
        self.skipped: Counter[str] = Counter()  # flow → runs refused because one was in flight (or paused)
        self.scheduling = False  # False while the lease is not ours
        self._flows = {f.name: f for f in self.config.flows if f.enabled}
        self._locks = {name: threading.Lock() for name in self._flows}
        self._handled_requests: dict[str, datetime] = {}
        self._state_lock = threading.Lock()
        workers = len(self._flows) + 2 + len(self.extra_jobs)
        self._scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(max_workers=workers)},
            job_defaults={
                "coalesce": True,
                "max_instances": 1,
                "misfire_grace_time": MISFIRE_GRACE_SECONDS,
            },
            timezone=UTC,
        )
        self._scheduler.add_listener(self._on_event, EVENT_JOB_MAX_INSTANCES | EVENT_JOB_MISSED)

    # -- life cycle ------------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Add the jobs and start the scheduler thread; flow jobs run only while the lease is held."""
        self.scheduling = self.lease.acquire() if self.lease is not None else True
        for name, flow in self._flows.items():
            if flow.schedule:
                self._scheduler.add_job(
                    self._scheduled, trigger_for(flow.schedule), args=[name], id=self._job_id(name), name=name
                )
        self._scheduler.add_job(
            self.poll_controls,
            IntervalTrigger(seconds=self.poll_interval, timezone=UTC),
            id="controls",
            misfire_grace_time=None,
        )
        if self.lease is not None:
            self._scheduler.add_job(
                self.renew_lease,
                IntervalTrigger(seconds=self.renew_interval, timezone=UTC),
                id="lease",
                misfire_grace_time=None,
            )
        for index, (func, every) in enumerate(self.extra_jobs):
            self._scheduler.add_job(
                func, IntervalTrigger(seconds=every, timezone=UTC), id=f"extra:{index}", misfire_grace_time=None
            )
        self._scheduler.start()
        log.info("scheduler.started", flows=sorted(self._flows), scheduling=self.scheduling)

    def shutdown(self, *, wait: bool = True) -> None:
        """Ask runs in flight to stop at their next safe point, wait for them, then release the lease."""
        self.stop_event.set()
        if self._scheduler.running:
            self._scheduler.shutdown(wait=wait)
        if self.lease is not None:
            self.lease.release()
        log.info("scheduler.stopped")

    def wakeup(self) -> None:
        """Re-examine due jobs now (after a clock change in tests, or a new request)."""
        self._scheduler.wakeup()

    # -- lease -----------------------------------------------------------------------------------------------------

    def renew_lease(self) -> bool:
        if self.lease is None:
            return True
        held = self.lease.acquire()
        if held != self.scheduling:
            log.warning("scheduler.lease", held=held, holder=self.lease.holder, current=self.lease.describe_holder())
        self.scheduling = held
        return held

    # -- running ---------------------------------------------------------------------------------------------------

    def _scheduled(self, name: str) -> None:
        self.run_flow(name, reason="schedule")

    def run_flow(self, name: str, *, reason: str = "manual") -> bool:
        """Run ``name`` now in the calling thread; False (and counted as skipped) if it cannot run now."""
        flow = self._flows.get(name)
        if flow is None or self.stop_event.is_set():
            return False
        if not self.scheduling or (self.lease is not None and not self.renew_lease()):
            log.warning("flow.skipped", flow=name, reason="lease not held", trigger=reason)
            return False
        if self.is_paused(name):
            log.info("flow.skipped", flow=name, reason="paused", trigger=reason)
            self.skipped[name] += 1
            return False
        lock = self._locks[name]
        if not lock.acquire(blocking=False):
            log.info("flow.skipped", flow=name, reason="a run of this flow is in flight", trigger=reason)
            self.skipped[name] += 1
            return False
        try:
            with self._state_lock:
                self.runs[name] += 1
            # Every line the run logs names its connection (the thread's context, cleared when the run ends).
            with structlog.contextvars.bound_contextvars(connection=self.config.name):
                log.info("flow.start", flow=name, trigger=reason)
                self.job(self.connector, flow, self.stop_event)
        finally:
            lock.release()
        return True

    def is_running(self, name: str) -> bool:
        lock = self._locks.get(name)
        return lock is not None and lock.locked()

    def _job_id(self, flow: str) -> str:
        return FLOW_JOB.format(connection=self.config.name, flow=flow)

    def _submit(self, name: str, reason: str) -> None:
        self._scheduler.add_job(
            self.run_flow,
            args=[name],
            kwargs={"reason": reason},
            id=f"now:{self.config.name}:{name}",
            replace_existing=True,
            misfire_grace_time=None,
        )

    def poll_controls(self) -> None:
        """Honour dashboard requests stored in ``flow_controls``: a sync requested after the last run triggers one."""
        if not self.scheduling:
            return
        store = self.connector.store
        for name in self._flows:
            control = store.controls.get(name)
            requested = _aware(control.get("sync_requested_at"))
            if requested is None or control.get("paused"):
                continue
            if requested <= self._handled_requests.get(name, datetime.min.replace(tzinfo=UTC)):
                continue
            last = store.runs.last(name)
            if last is not None and last.started_at >= requested and last.status != "running":
                self._handled_requests[name] = requested
                continue
            self._handled_requests[name] = requested
            if not self.is_running(name):
                self._submit(name, "requested")

    def _on_event(self, event: JobEvent) -> None:
        job_id = str(event.job_id)
        if not job_id.startswith("flow:"):
            return
        name = job_id.rsplit(":", 1)[-1]
        if event.code == EVENT_JOB_MAX_INSTANCES:
            self.skipped[name] += 1
            log.info("flow.skipped", flow=name, reason="a run of this flow is in flight", trigger="schedule")
        else:
            log.warning("flow.missed", flow=name, reason="missed beyond misfire grace")

    # -- SchedulerControl --------------------------------------------------------------------------------------------

    def next_run(self, flow: str) -> datetime | None:
        if flow not in self._flows or self.is_paused(flow) or not self.scheduling:
            return None
        job = self._scheduler.get_job(self._job_id(flow))
        when = getattr(job, "next_run_time", None) if job is not None else None
        if when is None and job is not None and not self._scheduler.running:
            # Before start() APScheduler has not computed it yet; ask the trigger.
            when = job.trigger.get_next_fire_time(None, datetime.now(UTC))
        return when.astimezone(UTC) if isinstance(when, datetime) else None

    def sync_now(self, flow: str) -> None:
        now = utcnow()
        self.connector.store.controls.set(flow, sync_requested_at=now)
        if flow in self._flows and self.scheduling and not self.is_running(flow):
            self._handled_requests[flow] = now
            self._submit(flow, "sync_now")

    def pause(self, flow: str) -> None:
        self.connector.store.controls.set(flow, paused=True)

    def resume(self, flow: str) -> None:
        self.connector.store.controls.set(flow, paused=False)

    def is_paused(self, flow: str) -> bool:
        return bool(self.connector.store.controls.get(flow).get("paused"))

    # -- helpers for the daemon ------------------------------------------------------------------------------------

    def run_all_now(self) -> None:
        for name in self._flows:
            self._submit(name, "startup")

    def flows(self) -> dict[str, FlowConfig]:
        return dict(self._flows)


__all__ = ["FLOW_JOB", "LocalScheduler", "trigger_for"]
