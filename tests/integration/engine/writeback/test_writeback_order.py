"""Write-back over real HTTP: order, not arrival (issue 15, item 2), and the failure policy of write-back (issue 9).

Both simulators run on loopback; the store is SQLite and PostgreSQL (the ``store`` fixture). Jira's genuine signed
deliveries are caught by a capture server, then handed to the connector's web app in the order a test wants
(newer first, a replay under a new identifier, ...), exactly as a late or replayed delivery would arrive.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2
import pytest
from e2e.harness import World, connector_config, world

from integration.sim.jira.helpers import Received, Receiver, webhook_receiver
from integration.web.support import wait_for
from ml_connector.engine import Connector, FlowBusy, OutboundSync, RunReport, WritebackSync, flow_lock, process_inbox
from ml_connector.engine.requeue import requeue_failed
from ml_connector.engine.timestamps import format_ts
from ml_connector.engine.writeback.changes import ISSUE_FIELDS, change_from_issue
from ml_connector.engine.writeback.lease import APPLY_LEASE
from ml_connector.errors import AuthError
from ml_connector.serve import ServerHandle, serve_in_thread
from ml_connector.sim.ifs import precondition_kind
from ml_connector.store import PARKED, RecordRow, Store, utcnow
from ml_connector.web import create_app

SECRET = "sim-webhook-secret"
FLOW = "purchase_orders"


class Clock:
    """The connector's notion of now for backoff; tests move it instead of waiting."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Env:
    w: World
    c: Connector
    capture: Receiver
    store: Store

    def linked(self) -> list[RecordRow]:
        return sorted(self.store.records.linked(FLOW), key=lambda r: r.ifs_key)

    def move(self, record: RecordRow, status: str) -> None:
        """A person moves the issue; the Jira clock steps on so every change has its own ``updated``."""
        self.w.jira_sim.call("PUT", "clock", json={"advance_seconds": 2})
        self.w.jira_sim.call("POST", f"issues/{record.jira_key}/transition", json={"status": status})

    def ifs_status(self, record: RecordRow) -> Any:
        return self.w.ifs_state.get_raw("PurchaseOrder", record.ifs_key).get("Cf_Jira_Status")

    def deliveries(self, n: int) -> list[Received]:
        assert wait_for(lambda: len(self.capture.received) >= n, timeout=10), "Jira did not deliver"
        return list(self.capture.received[:n])

    def patches(self, record: RecordRow) -> int:
        needle = f"OrderNo='{record.ifs_key}')"
        return sum(1 for r in self.w.ifs_sim.requests()["requests"] if r["method"] == "PATCH" and needle in r["path"])

    def events(self, record: RecordRow, name: str) -> list[Any]:
        return [e for e in self.store.audit.trail(record.id) if e.event == name]

    def fail(self, record: RecordRow, status: int, count: int = 1000) -> None:
        rule = {"status": status, "count": count, "path_contains": f"OrderNo='{record.ifs_key}')"}
        if status == 400:
            rule.update(code="BAD_REQUEST", message="Cf_Jira_Status: value not allowed")
        self.w.ifs_sim.faults(fail_next=[rule])


def _env(store: Store, tmp_path: Path, sync: dict[str, Any] | None = None) -> Iterator[Env]:
    with world(purchase_orders=6, work_orders=0) as w, webhook_receiver() as capture:
        tweak: dict[str, Any] = {
            "ifs": {"http": {"max_attempts": 2, "backoff_initial": 0.01, "backoff_max": 0.02}},
            "webhooks": {"enabled": True},  # the receiver is live only with webhooks on
        }
        if sync:
            tweak["sync"] = sync
        config = connector_config(w, tmp_path, tweak=tweak)
        c = Connector(config=config, store=store)
        OutboundSync(c, config.flow(FLOW)).run()
        with httpx2.Client(base_url=w.jira.url, auth=("connector@example.com", "sim-api-token")) as jira:
            hook = {"name": "capture", "url": capture.url, "events": ["jira:issue_updated"], "secret": SECRET}
            jira.post("/rest/webhooks/1.0/webhook", json=hook).raise_for_status()
        env = Env(w, c, capture, store)
        assert len(env.linked()) >= 4
        try:
            yield env
        finally:
            c.close()


@pytest.fixture
def env(store: Store, tmp_path: Path) -> Iterator[Env]:
    yield from _env(store, tmp_path)


@pytest.fixture
def web(env: Env) -> Iterator[tuple[ServerHandle, Any]]:
    app = create_app(env.c)
    handle = serve_in_thread(app)
    try:
        yield handle, app.state.work
    finally:
        app.state.work.stop()
        handle.stop()


def _status(delivery: Received) -> str:
    return str(json.loads(delivery.body)["issue"]["fields"]["status"]["name"])


def _forward(web: ServerHandle, delivery: Received, identifier: str | None = None) -> int:
    """Hand a captured delivery to the connector: the same signed body, the same or a new identifier."""
    headers = {
        "Content-Type": "application/json",
        "X-Hub-Signature": delivery.headers["x-hub-signature"],
        "X-Atlassian-Webhook-Identifier": identifier or delivery.headers["x-atlassian-webhook-identifier"],
    }
    return httpx2.post(f"{web.url}/webhooks/jira", content=delivery.body, headers=headers, timeout=30).status_code


def _inbox(env: Env, delivery: Received, identifier: str | None = None) -> None:
    payload = json.loads(delivery.body)
    issue_id = str(payload["issue"]["id"])
    assert env.store.inbox.add(identifier or uuid.uuid4().hex, payload["webhookEvent"], issue_id, payload)


def test_out_of_order_and_replayed_deliveries_never_overwrite_a_newer_status(
    env: Env, web: tuple[ServerHandle, Any]
) -> None:
    handle, work = web
    record = env.linked()[0]
    env.move(record, "In Progress")
    env.move(record, "Awaiting Delivery")
    older, newer = env.deliveries(2)
    assert (_status(older), _status(newer)) == ("In Progress", "Awaiting Delivery")

    assert _forward(handle, newer) == 202  # the newer one arrives first
    assert work.wait_idle() and env.ifs_status(record) == "Awaiting Delivery"
    assert _forward(handle, older) == 202  # the older one arrives late
    assert work.wait_idle()
    assert _forward(handle, older) == 200  # ... and again under the same identifier: the dedupe catches it
    assert _forward(handle, older, identifier=uuid.uuid4().hex) == 202  # replayed under a new identifier
    assert _forward(handle, newer, identifier=uuid.uuid4().hex) == 202  # even the newest, replayed, is stale
    assert work.wait_idle()

    assert env.ifs_status(record) == "Awaiting Delivery"
    assert env.patches(record) == 1
    assert env.store.inbox.count("stale") == 3 and env.store.inbox.count("processed") == 1
    stale = env.events(record, "stale")
    assert [e.detail["status"] for e in stale] == ["In Progress", "In Progress", "Awaiting Delivery"]
    assert all(e.detail["origin"] == "webhook" and e.outcome == "warning" for e in stale)
    assert stale[0].detail["applied_status"] == "Awaiting Delivery"
    assert stale[0].detail["changelog_id"] < stale[0].detail["applied_changelog_id"]
    after = env.store.records.get(FLOW, record.ifs_key)
    assert after is not None and after.jira_status == after.written_status == "Awaiting Delivery"

    # The issue's scenario: IFS "In Progress" must not survive the next poll either (it never got there here).
    env.store.cursors.set(f"{FLOW}:writeback", format_ts(utcnow() + timedelta(hours=1)))
    report = WritebackSync(env.c, env.c.config.flow(FLOW)).run()
    assert report.counts["written_back"] == 0 and env.ifs_status(record) == "Awaiting Delivery"


def test_one_inbox_batch_applies_only_the_newest_change_of_each_issue(env: Env) -> None:
    first, second = env.linked()[:2]
    for record in (first, second):
        env.move(record, "In Progress")
        env.move(record, "Awaiting Delivery")
    deliveries = env.deliveries(4)
    by_issue: dict[str, list[Received]] = {}
    for d in deliveries:
        by_issue.setdefault(str(json.loads(d.body)["issue"]["id"]), []).append(d)
    old1, new1 = by_issue[str(first.jira_id)]
    old2, new2 = by_issue[str(second.jira_id)]
    for delivery in (new1, old1, old2, new2):  # newer first for one issue, older first for the other
        _inbox(env, delivery)

    report = process_inbox(env.c)
    assert report.counts["written_back"] == 2 and report.counts["stale"] == 2
    for record in (first, second):
        assert env.ifs_status(record) == "Awaiting Delivery"
        assert env.patches(record) == 1  # "In Progress" was never written, not even for a moment
        assert [e.detail["status"] for e in env.events(record, "stale")] == ["In Progress"]
    assert env.store.inbox.count("stale") == 2 and env.store.inbox.count("processed") == 2


def test_a_late_poll_result_older_than_an_applied_webhook_is_stale(env: Env) -> None:
    record = env.linked()[0]
    flow = env.c.config.flow(FLOW)
    env.move(record, "In Progress")
    polled = change_from_issue(env.c.jira.get_issue(str(record.jira_id), fields=ISSUE_FIELDS))  # a poll's read
    assert polled is not None and polled.status == "In Progress"
    env.move(record, "Awaiting Delivery")
    _older, newer = env.deliveries(2)
    _inbox(env, newer)
    assert process_inbox(env.c).counts["written_back"] == 1

    report = RunReport(FLOW, "writeback")
    assert WritebackSync(env.c, flow).apply([polled], report) == [polled]
    assert report.counts["stale"] == 1 and report.counts["written_back"] == 0
    assert env.ifs_status(record) == "Awaiting Delivery"
    (event,) = env.events(record, "stale")
    assert event.detail["origin"] == "poll" and event.detail["status"] == "In Progress"
    assert event.detail["updated"] < event.detail["applied_updated"]

    # The poll's overlap (the same read again) is no news and is not audited as stale.
    again = change_from_issue(env.c.jira.get_issue(str(record.jira_id), fields=ISSUE_FIELDS))
    assert again is not None
    assert WritebackSync(env.c, flow).apply([again], RunReport(FLOW, "writeback")) == []
    assert len(env.events(record, "stale")) == 1


def test_every_write_back_patch_carries_the_etag_it_read(env: Env) -> None:
    """IFS (and its simulator) accept ``If-Match: *`` and upsert on a PATCH without If-Match, so nothing would fail if
    the connector sent either: only the request log shows it. A user edit between read and write forces a re-read."""
    first, second = env.linked()[:2]
    env.move(first, "In Progress")
    env.move(second, "In Progress")
    env.w.ifs_sim.clear_requests()
    env.w.ifs_sim.faults(fail_next=[{"status": 412, "count": 1, "method": "PATCH"}])
    assert WritebackSync(env.c, env.c.config.flow(FLOW)).run().counts["written_back"] == 2
    patches = [r for r in env.w.ifs_sim.requests()["requests"] if r["method"] == "PATCH"]
    assert len(patches) == 3, "one 412 and its retry, then the other record"
    assert all(precondition_kind(p["if_match"]) == "etag" for p in patches), [p["if_match"] for p in patches]
    assert not env.w.unsafe_ifs_writes()
    assert env.ifs_status(first) == env.ifs_status(second) == "In Progress"


def test_the_poll_repairs_a_status_ifs_should_not_have(env: Env) -> None:
    record = env.linked()[0]
    flow = env.c.config.flow(FLOW)
    env.move(record, "In Progress")
    env.move(record, "Awaiting Delivery")
    assert WritebackSync(env.c, flow).run().counts["written_back"] == 1
    # What a stale delivery did before this fix: IFS and the store both say "In Progress", no order marks (a row
    # from before schema 0004), and the issue's ``updated`` is older than the poll window.
    env.w.ifs_state.edit("PurchaseOrder", record.ifs_key, {"Cf_Jira_Status": "In Progress"})
    with env.store.transaction() as tx:
        tx.records.update(
            record.id,
            jira_status="In Progress",
            written_status="In Progress",
            jira_updated=None,
            jira_changelog_id=None,
        )
    env.store.cursors.set(f"{FLOW}:writeback", format_ts(utcnow() + timedelta(hours=1)))
    report = WritebackSync(env.c, flow).run()
    assert report.counts["verified"] == 1 and report.counts["written_back"] == 1
    assert env.ifs_status(record) == "Awaiting Delivery"
    env.w.jira_sim.clear_requests()
    assert WritebackSync(env.c, flow).run().counts["verified"] == 0  # one fresh read per old row, once
    assert not [k for k in env.w.jira_sim.counts() if k.startswith("GET") and "/issue/" in k]

    # A write that lost a race: the store knows Jira's newest status, IFS got an older one. The next poll fixes it.
    env.w.ifs_state.edit("PurchaseOrder", record.ifs_key, {"Cf_Jira_Status": "In Progress"})
    with env.store.transaction() as tx:
        tx.records.update(record.id, written_status="In Progress")
    assert WritebackSync(env.c, flow).run().counts["written_back"] == 1
    assert env.ifs_status(record) == "Awaiting Delivery"


@pytest.fixture
def backoff_env(store: Store, tmp_path: Path) -> Iterator[Env]:
    # A 1 s rate-limit budget per run: a 429 storm outlasts it (the record is deferred), nothing else meets one.
    yield from _env(
        store, tmp_path, sync={"max_attempts": 3, "retry_initial": 60, "retry_max": 3600, "rate_limit_wait_max": 1}
    )


def test_a_persistent_ifs_500_backs_off_then_parks_while_the_others_are_written(backoff_env: Env) -> None:
    env = backoff_env
    flow = env.c.config.flow(FLOW)
    clock = Clock()
    bad, *good = env.linked()[:4]
    for record in (bad, *good[:2]):
        env.move(record, "In Progress")
    env.fail(bad, 500)

    first = WritebackSync(env.c, flow, clock=clock).run()
    assert first.counts["written_back"] == 2 and first.counts["failed"] == 1
    delays: list[float] = []
    row = env.store.records.get(FLOW, bad.ifs_key)
    assert row is not None and row.writeback_attempts == 1 and row.writeback_next_attempt_at is not None
    delays.append((row.writeback_next_attempt_at - clock.now).total_seconds())

    # Before it is due the record is not tried again, although the poll sees the issue again; others go on.
    env.move(good[2], "In Progress")
    env.w.ifs_sim.clear_requests()
    waiting = WritebackSync(env.c, flow, clock=clock).run()
    assert waiting.counts["written_back"] == 1 and waiting.counts["waiting"] == 1 and waiting.counts["failed"] == 0
    assert env.patches(bad) == 0

    for attempt in (2, 3):
        assert row is not None and row.writeback_next_attempt_at is not None
        clock.now = row.writeback_next_attempt_at + timedelta(seconds=1)
        report = WritebackSync(env.c, flow, clock=clock).run()
        row = env.store.records.get(FLOW, bad.ifs_key)
        assert row is not None and row.writeback_attempts == attempt
        if attempt < 3:
            assert report.counts["failed"] == 1 and row.writeback_next_attempt_at is not None
            delays.append((row.writeback_next_attempt_at - clock.now).total_seconds())
        else:
            assert report.counts["parked"] == 1 and row.state == PARKED and row.writeback_next_attempt_at is None
    # Full jitter (DESIGN §4.3): uniform(0, ceiling), the ceiling doubling per attempt (retry_initial 60 s here).
    assert 0 < delays[0] <= 60 and 0 < delays[1] <= 120
    assert row is not None and row.error_class == "Unavailable" and (row.last_error or "").startswith("write-back:")

    env.w.ifs_sim.clear_requests()
    clock.now += timedelta(days=1)
    assert WritebackSync(env.c, flow, clock=clock).run().counts["parked"] == 0  # parked: not retried by polls
    assert env.patches(bad) == 0
    failed = env.events(bad, "failed")
    assert [e.detail["attempts"] for e in failed] == [1, 2, 3]
    assert [e.detail["parked"] for e in failed] == [False, False, True]
    retry_in = [e.detail["retry_in_seconds"] for e in failed]
    assert 0 < retry_in[0] <= 60 and 0 < retry_in[1] <= 120 and retry_in[2] is None  # full jitter under the ceilings
    for record in good[:3]:
        assert env.ifs_status(record) == "In Progress"
        after = env.store.records.get(FLOW, record.ifs_key)
        assert after is not None and after.state != PARKED and after.written_status == "In Progress"

    # Replay after the outage: the same path writes it.
    env.w.ifs_sim.faults(fail_next=[])
    requeue_failed(env.store, keys=[bad.ifs_key])
    assert WritebackSync(env.c, flow, clock=clock).run().counts["written_back"] == 1
    assert env.ifs_status(bad) == "In Progress"


@pytest.mark.parametrize("status", [400, 403, 404])
def test_a_permanent_ifs_refusal_parks_the_record_at_once(backoff_env: Env, status: int) -> None:
    env = backoff_env
    flow = env.c.config.flow(FLOW)
    bad, ok = env.linked()[:2]
    for record in (bad, ok):
        env.move(record, "In Progress")
    env.fail(bad, status)
    report = WritebackSync(env.c, flow).run()
    assert report.counts["parked"] == 1 and report.counts["written_back"] == 1 and report.counts["failed"] == 0
    row = env.store.records.get(FLOW, bad.ifs_key)
    assert row is not None and row.state == PARKED and row.writeback_attempts == 1
    assert row.error_class in {"Rejected", "NotFound", "AuthError"} and row.writeback_next_attempt_at is None
    assert env.ifs_status(ok) == "In Progress"
    # A newer status waits for the replay, the parked record is not sent again
    env.w.ifs_sim.faults(fail_next=[])
    env.move(bad, "Awaiting Delivery")
    held = WritebackSync(env.c, flow).run()
    assert held.counts["held"] == 1 and held.counts["written_back"] == 0
    requeue_failed(env.store, keys=[bad.ifs_key])
    assert WritebackSync(env.c, flow).run().counts["written_back"] == 1
    assert env.ifs_status(bad) == "Awaiting Delivery"


def test_ifs_down_for_a_whole_batch_every_record_waits_and_the_run_ends(backoff_env: Env) -> None:
    env = backoff_env
    flow = env.c.config.flow(FLOW)
    clock = Clock()
    records = env.linked()[:3]
    for record in records:
        env.move(record, "In Progress")
    env.w.ifs_sim.faults(fail_next=[{"status": 503, "count": 1000, "path_contains": "PurchaseOrderSet"}])
    report = WritebackSync(env.c, flow, clock=clock).run()
    assert report.counts["failed"] == 3 and report.counts["written_back"] == 0 and report.status == "partial"
    env.w.ifs_sim.faults(fail_next=[])
    clock.now += timedelta(minutes=2)
    assert WritebackSync(env.c, flow, clock=clock).run().counts["written_back"] == 3
    assert all(env.ifs_status(r) == "In Progress" for r in records)


def test_another_applier_holding_the_store_lease_is_waited_for_then_reported(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = env.linked()[0]
    flow = env.c.config.flow(FLOW)
    env.move(record, "In Progress")
    polled = change_from_issue(env.c.jira.get_issue(str(record.jira_id), fields=ISSUE_FIELDS))
    assert polled is not None
    monkeypatch.setattr("ml_connector.engine.writeback.lease.APPLY_WAIT", 0.2)
    with flow_lock(env.store, APPLY_LEASE), pytest.raises(FlowBusy, match="another process is writing"):
        WritebackSync(env.c, flow).apply([polled], RunReport(FLOW, "writeback"))
    after = env.store.records.get(FLOW, record.ifs_key)
    assert after is not None and after.jira_status is None and env.ifs_status(record) in (None, "")
    report = RunReport(FLOW, "writeback")
    WritebackSync(env.c, flow).apply([polled], report)  # the lease is free again
    assert report.counts["written_back"] == 1 and env.ifs_status(record) == "In Progress"


def test_an_unforeseen_error_on_one_record_fails_that_record_only(backoff_env: Env) -> None:
    env = backoff_env
    flow = env.c.config.flow(FLOW)
    bad, *good = env.linked()[:3]
    for record in (bad, *good):
        env.move(record, "In Progress")
    ifs = env.c.ifs
    real_patch = ifs.patch

    def patch(entity_set: str, key: Any, changes: Any, etag: str) -> Any:
        if bad.ifs_key in key.values():  # a bug nobody foresaw, on one record only
            raise RuntimeError("unexpected shape in the row")
        return real_patch(entity_set, key, changes, etag)

    ifs.patch = patch  # type: ignore[method-assign]
    report = WritebackSync(env.c, flow).run()
    # The shared policy (DESIGN §4.3): an unexpected error is an InternalError, retried with backoff, then parked.
    assert report.counts["written_back"] == 2 and report.counts["failed"] == 1 and report.status == "partial"
    row = env.store.records.get(FLOW, bad.ifs_key)
    assert row is not None and row.state != PARKED and row.error_class == "InternalError"
    assert row.writeback_next_attempt_at is not None and "RuntimeError" in (row.last_error or "")
    assert all(env.ifs_status(r) == "In Progress" for r in good)


def test_credentials_refused_stop_the_flow_without_parking_anything(backoff_env: Env) -> None:
    env = backoff_env
    flow = env.c.config.flow(FLOW)
    record = env.linked()[0]
    env.move(record, "In Progress")
    env.fail(record, 401)
    with pytest.raises(AuthError):
        WritebackSync(env.c, flow).run()
    row = env.store.records.get(FLOW, record.ifs_key)
    assert row is not None and row.state != PARKED and row.writeback_attempts == 0
    assert row.jira_status == "In Progress" and row.written_status is None  # accepted, written by a later run
    assert env.store.runs.recent(flow=FLOW, limit=1)[0].status == "failed"
    env.w.ifs_sim.faults(fail_next=[])
    assert WritebackSync(env.c, flow).run().counts["written_back"] == 1


def test_a_stale_delivery_from_before_a_move_does_not_bring_the_old_key_back(env: Env) -> None:
    record = env.linked()[0]
    env.move(record, "In Progress")
    (before_move,) = env.deliveries(1)
    env.w.jira_sim.call("PUT", "clock", json={"advance_seconds": 2})
    env.w.jira_sim.call("POST", f"issues/{record.jira_key}/move", json={"project": "CAPEX"})
    WritebackSync(env.c, env.c.config.flow(FLOW)).run()
    moved = env.store.records.get(FLOW, record.ifs_key)
    assert moved is not None and moved.jira_key is not None and moved.jira_key.startswith("CAPEX-")
    _inbox(env, before_move)
    assert process_inbox(env.c).counts["stale"] == 1
    after = env.store.records.get(FLOW, record.ifs_key)
    assert after is not None and after.jira_key == moved.jira_key


def test_a_429_storm_that_outlasts_the_in_call_budget_backs_off_and_never_parks(backoff_env: Env) -> None:
    env = backoff_env
    flow = env.c.config.flow(FLOW)
    clock = Clock()
    limited, ok = env.linked()[:2]
    for record in (limited, ok):
        env.move(record, "In Progress")
    needle = f"OrderNo='{limited.ifs_key}')"
    env.w.ifs_sim.faults(fail_next=[{"status": 429, "count": 1000, "path_contains": needle, "retry_after": 0}])
    report = WritebackSync(env.c, flow, clock=clock).run()
    # IFS rate-limits per client id, so a 429 holds back every IFS call after it; once the run's 1 s budget is spent,
    # the limited record and any record after it are deferred (no attempt used), none parked.
    deferred = report.counts["deferred"]
    assert deferred >= 1 and deferred + report.counts["written_back"] == 2 and report.counts["parked"] == 0
    row = env.store.records.get(FLOW, limited.ifs_key)
    assert row is not None and row.error_class == "RateLimited" and row.state != PARKED
    assert row.writeback_attempts == 0
    assert row.writeback_next_attempt_at is not None and row.writeback_next_attempt_at > clock.now
    env.w.ifs_sim.faults(fail_next=[])
    clock.now = row.writeback_next_attempt_at + timedelta(seconds=1)
    assert WritebackSync(env.c, flow, clock=clock).run().counts["written_back"] == deferred
    done = env.store.records.get(FLOW, limited.ifs_key)
    assert done is not None and done.writeback_attempts == 0 and done.error_class is None
    assert env.ifs_status(limited) == "In Progress"
