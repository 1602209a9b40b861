"""The local scheduler driven by a controlled clock (time-machine): behaviour, not sleeping for an hour."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import time_machine
from conftest import wait_until

from ml_connector.config.models import FlowConfig, load_config
from ml_connector.engine import Connector, RunReport
from ml_connector.runner import Lease, LocalScheduler
from ml_connector.store import Store
from ml_connector.web import SchedulerControl, StoreControl

EXAMPLE = Path(__file__).parents[3] / "src/ml_connector/config/templates/example.yaml"
START = datetime(2026, 3, 2, 0, 0, 30, tzinfo=UTC)


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    wait_until(condition, timeout=timeout, interval=0.005)


# The short sleeps below are not synchronisation: after the awaited runs, they give the scheduler thread a window
# in which a wrong extra run would show, so the test can assert that none happened (an absence has no condition).


class Jobs:
    """A flow job that counts runs; ``block`` holds runs of a flow until released."""

    def __init__(self) -> None:
        self.runs: Counter[str] = Counter()
        self.active: Counter[str] = Counter()
        self.max_active: Counter[str] = Counter()
        self.block: dict[str, threading.Event] = {}
        self.lock = threading.Lock()

    def __call__(self, connector: Connector, flow: FlowConfig, stop: threading.Event) -> list[RunReport]:
        with self.lock:
            self.runs[flow.name] += 1
            self.active[flow.name] += 1
            self.max_active[flow.name] = max(self.max_active[flow.name], self.active[flow.name])
        gate = self.block.get(flow.name)
        if gate is not None:
            gate.wait(10)
        with self.lock:
            self.active[flow.name] -= 1
        return []


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'state.sqlite'}"


def connector(db: str, connection: str = "default") -> Connector:
    config = load_config(EXAMPLE, env={"IFS_URL": "http://127.0.0.1:9", "JIRA_URL": "http://127.0.0.1:9"})
    config = config.model_copy(update={"name": connection})
    return Connector(config=config, store=Store.open(db, connection=connection))


@pytest.fixture
def clock() -> Iterator[time_machine.Coordinates]:
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


def make(db: str, jobs: Jobs, holder: str = "daemon-a", connection: str = "default") -> LocalScheduler:
    c = connector(db, connection)
    # The lease outlives the clock jumps below, so which scheduler renews first after a jump cannot matter.
    return LocalScheduler(c, lease=Lease(c.store, ttl=6 * 3600, holder=holder), job=jobs, poll_interval=3600)


def settled(scheduler: LocalScheduler) -> bool:
    """No job instance is still counted as running by APScheduler (it counts one down only after the job returned,
    on its executor thread: a tick that comes before that is skipped as 'maximum number of running instances')."""
    executor = scheduler._scheduler._lookup_executor("default")
    with executor._lock:
        return not any(executor._instances.values())


def advance(
    clock: time_machine.Coordinates, scheduler: LocalScheduler, delta: timedelta, *, settle: bool = True
) -> None:
    """Move the clock and wake the scheduler; ``settle``: first let the runs that ended be counted as ended."""
    if settle:
        wait_for(lambda: settled(scheduler))
    clock.shift(delta)
    scheduler.wakeup()


def test_hourly_flow_runs_once_per_hour(db: str, clock: time_machine.Coordinates) -> None:
    jobs = Jobs()
    scheduler = make(db, jobs)
    scheduler.start()
    try:
        assert scheduler.next_run("purchase_orders") == datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
        for step in range(1, 13):  # three hours in quarter-hour steps
            advance(clock, scheduler, timedelta(minutes=15))
            wait_for(lambda n=step: jobs.runs["work_orders"] == n)  # "*/15 * * * *"
            wait_for(lambda n=step: jobs.runs["purchase_orders"] == n // 4)  # hourly
        time.sleep(0.05)
        assert jobs.runs == Counter({"purchase_orders": 3, "work_orders": 12})
    finally:
        scheduler.shutdown()


def test_missed_runs_coalesce_into_one(db: str, clock: time_machine.Coordinates) -> None:
    jobs = Jobs()
    scheduler = make(db, jobs)
    scheduler.start()
    try:
        advance(clock, scheduler, timedelta(hours=3))  # the daemon slept through three hours (e.g. a suspended VM)
        wait_for(lambda: jobs.runs["purchase_orders"] == 1 and jobs.runs["work_orders"] == 1)
        time.sleep(0.1)
        assert jobs.runs == Counter({"purchase_orders": 1, "work_orders": 1})
        assert scheduler.next_run("purchase_orders") == datetime(2026, 3, 2, 4, 0, tzinfo=UTC)
    finally:
        scheduler.shutdown()


def test_overlapping_run_is_skipped(db: str, clock: time_machine.Coordinates) -> None:
    jobs = Jobs()
    jobs.block["purchase_orders"] = gate = threading.Event()
    scheduler = make(db, jobs)
    scheduler.start()
    try:
        advance(clock, scheduler, timedelta(hours=1))
        wait_for(lambda: jobs.active["purchase_orders"] == 1)
        advance(clock, scheduler, timedelta(hours=1), settle=False)  # the next tick comes while the first still runs
        wait_for(lambda: scheduler.skipped["purchase_orders"] >= 1)
        assert scheduler.run_flow("purchase_orders") is False  # a manual run is refused too
        scheduler.sync_now("purchase_orders")  # and "sync now" coalesces with the run in flight
        gate.set()
        wait_for(lambda: jobs.active["purchase_orders"] == 0)
        time.sleep(0.05)
        assert jobs.runs["purchase_orders"] == 1
        assert jobs.max_active["purchase_orders"] == 1
        assert scheduler.skipped["purchase_orders"] >= 2
    finally:
        gate.set()
        scheduler.shutdown()


def test_second_scheduler_on_same_database_does_not_schedule(db: str, clock: time_machine.Coordinates) -> None:
    first_jobs, second_jobs = Jobs(), Jobs()
    first = make(db, first_jobs, holder="host-a:1")
    second = make(db, second_jobs, holder="host-b:2")
    first.start()
    second.start()
    try:
        assert first.scheduling and not second.scheduling
        assert second.lease is not None and second.lease.describe_holder().startswith("host-a:1 until ")
        assert second.next_run("purchase_orders") is None
        advance(clock, first, timedelta(hours=1))
        second.wakeup()
        wait_for(lambda: first_jobs.runs["purchase_orders"] == 1)
        assert second.run_flow("purchase_orders") is False
        time.sleep(0.1)
        assert sum(second_jobs.runs.values()) == 0
        first.shutdown()  # releases the lease: the standby takes over on its next renewal
        assert second.renew_lease() is True
        assert second.run_flow("purchase_orders") is True
        assert second_jobs.runs["purchase_orders"] == 1
    finally:
        first.shutdown()
        second.shutdown()


def test_schedulers_of_two_connections_on_one_database_both_schedule(db: str, clock: time_machine.Coordinates) -> None:
    acme_jobs, globex_jobs = Jobs(), Jobs()
    acme = make(db, acme_jobs, holder="host-a:1", connection="acme")
    globex = make(db, globex_jobs, holder="host-b:2", connection="globex")
    acme.start()
    globex.start()
    try:
        assert acme.scheduling and globex.scheduling  # one scheduler lease per connection
        assert acme._scheduler.get_job("flow:acme:purchase_orders") is not None
        assert globex._scheduler.get_job("flow:globex:purchase_orders") is not None
        globex.pause("purchase_orders")
        assert not acme.is_paused("purchase_orders")
        clock.shift(timedelta(hours=1))
        acme.wakeup()
        globex.wakeup()
        wait_for(lambda: acme_jobs.runs["purchase_orders"] == 1)
        time.sleep(0.1)
        assert globex_jobs.runs["purchase_orders"] == 0  # paused in its own connection only
    finally:
        acme.shutdown()
        globex.shutdown()


def test_paused_flows_skip_and_dashboard_requests_trigger_a_run(db: str, clock: time_machine.Coordinates) -> None:
    jobs = Jobs()
    scheduler = make(db, jobs)
    assert isinstance(scheduler, SchedulerControl)
    scheduler.start()
    try:
        scheduler.pause("purchase_orders")
        assert scheduler.is_paused("purchase_orders") and scheduler.next_run("purchase_orders") is None
        advance(clock, scheduler, timedelta(hours=1))
        wait_for(lambda: jobs.runs["work_orders"] == 1)
        time.sleep(0.05)
        assert jobs.runs["purchase_orders"] == 0
        scheduler.resume("purchase_orders")
        # Another process (the web app without a live scheduler) records a request in flow_controls.
        clock.shift(timedelta(seconds=5))
        StoreControl(scheduler.connector.store).sync_now("purchase_orders")
        scheduler.poll_controls()
        wait_for(lambda: jobs.runs["purchase_orders"] == 1)
        scheduler.poll_controls()  # an already honoured request does not run again
        time.sleep(0.05)
        assert jobs.runs["purchase_orders"] == 1
    finally:
        scheduler.shutdown()
