"""The failure path as an operator meets it (issue 9): one record failing never poisons a run or later runs."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine
import yaml

from e2e.harness import SimControl, World, connector_config, example_config, make_connector, world
from ml_connector.engine import OutboundSync
from ml_connector.engine import apply as apply_module
from ml_connector.engine import outbound as outbound_module
from ml_connector.errors import AuthError
from ml_connector.reasons import INTERNAL, PERMISSION_DENIED, RATE_LIMITED
from ml_connector.serve import serve_in_thread
from ml_connector.sim.ifs import IfsSimOptions
from ml_connector.sim.ifs import create_app as create_ifs
from ml_connector.sim.jira import JiraSimOptions
from ml_connector.sim.jira import create_app as create_jira
from ml_connector.store import PENDING_CREATE, RETRY, SYNCED, RecordRow, Store, utcnow


def _config(w: World, tmp_path: Path, store_url: str) -> Path:
    data = example_config()
    data["ifs"].update(url=w.ifs.url, http={"backoff_initial": 0.05, "backoff_max": 0.2, "max_attempts": 2})
    data["jira"].update(url=w.jira.url, http={"backoff_initial": 0.05, "backoff_max": 0.2, "max_attempts": 2})
    data["store"] = {"url": store_url}
    # Long backoff: a failed record waits for a later run (or a replay), it is not retried within this one.
    data["sync"] = {"retry_initial": 3600, "retry_max": 3600, "reconcile_settle": 0}
    path = tmp_path / "ml-connector.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ML_CONNECTOR_LOG_LEVEL": "ERROR", "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "ml_connector.cli", *args], capture_output=True, text=True, env=env, timeout=300
    )


def _no_traceback(done: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in done.stdout + done.stderr, done.stdout + done.stderr


def _record(store: Store, flow: str, key: str) -> RecordRow:
    row = store.records.get(flow, key)
    assert row is not None
    return row


def _active_work_orders(w: World) -> list[str]:
    return sorted(str(r["WoNo"]) for r in w.ifs_rows("WorkOrder"))


def test_a_persistent_5xx_on_an_edit_and_a_bulk_create_fails_those_records_only(tmp_path: Path, store_url: str) -> None:
    with world(purchase_orders=8, work_orders=4) as w:
        path = str(_config(w, tmp_path, store_url))
        first = _cli("sync", "-c", path)
        assert first.returncode == 0, first.stdout + first.stderr
        store = Store.open(store_url)
        try:
            orders = [r for r in store.records.list(flow="purchase_orders") if r.state == SYNCED]
            edited, moved = orders[0], orders[1]
            works = [r for r in store.records.list(flow="work_orders") if r.state == SYNCED]
            assert edited.jira_id and moved.jira_key and works
            # Work in every flow: an edit that Jira refuses with 500, a new order whose bulk create gets 500, a work
            # order edit and a Jira status change to write back to IFS (both unaffected by the faults).
            w.ifs_state.edit("PurchaseOrder", edited.ifs_key, {"Description": "edited while Jira fails this issue"})
            new_key = str(w.ifs_state.create("PurchaseOrder", values={"Objstate": "Released"})[0]["OrderNo"])
            w.ifs_state.edit("WorkOrder", works[0].ifs_key, {"ErrDescr": "pump leaks again"})
            w.jira_sim.call("POST", f"issues/{moved.jira_key}/transition", json={"status": "In Progress"})
            w.jira_sim.faults(
                fail_next=[
                    {"status": 500, "count": 1000, "path_contains": f"/issue/{edited.jira_id}"},
                    {"status": 500, "count": 1000, "path_contains": "/issue/bulk"},
                ]
            )

            second = _cli("sync", "-c", path)
            assert second.returncode == 1, second.stdout + second.stderr
            _no_traceback(second)
            assert "Not every record is synced" in second.stdout and "ml-connector replay --failed" in second.stdout
            assert "x unavailable: 'jira'" in second.stdout  # the reasons, grouped by code with the system

            failed = _record(store, "purchase_orders", edited.ifs_key)
            assert failed.state == RETRY and failed.error_class == "Unavailable" and failed.attempts == 1
            assert failed.next_attempt_at is not None and failed.next_attempt_at > utcnow()
            event = store.audit.trail(failed.id)[-1]
            assert event.event == "failed" and event.detail is not None
            assert event.detail["next_attempt_at"] == failed.next_attempt_at.isoformat()
            assert 0 <= event.detail["backoff_seconds"] <= 3600
            unconfirmed = _record(store, "purchase_orders", new_key)
            # A 500 on a create is ambiguous: the intent stays, so the next attempt searches before creating.
            assert unconfirmed.state == RETRY and unconfirmed.create_attempted_at is not None
            # The other flows ran normally
            wo_issue = next(i for i in w.jira_issues() if i["key"] == works[0].jira_key)
            assert "pump leaks again" in wo_issue["summary"]
            assert w.ifs_state.get_raw("PurchaseOrder", moved.ifs_key)["Cf_Jira_Status"] == "In Progress"

            # The next run, fault still on, does not trip over the failed records: every flow runs.
            w.ifs_state.edit("WorkOrder", works[-1].ifs_key, {"ErrDescr": "second run still works"})
            w.jira_sim.call("POST", f"issues/{moved.jira_key}/transition", json={"status": "Done"})
            third = _cli("sync", "-c", path)
            assert third.returncode == 1, third.stdout + third.stderr
            _no_traceback(third)
            wo_issue = next(i for i in w.jira_issues() if i["key"] == works[-1].jira_key)
            assert "second run still works" in wo_issue["summary"]
            assert w.ifs_state.get_raw("PurchaseOrder", moved.ifs_key)["Cf_Jira_Status"] == "Done"
            left = _record(store, "purchase_orders", edited.ifs_key)
            assert left.attempts == 1 and left.next_attempt_at == failed.next_attempt_at  # not due: left alone

            # The fault clears; a replay finishes the job; the next sync is clean.
            w.jira_sim.faults(fail_next=[])
            replay = _cli("replay", "--failed", "-c", path)
            assert replay.returncode == 0, replay.stdout + replay.stderr
            final = _cli("sync", "-c", path)
            assert final.returncode == 0, final.stdout + final.stderr
            refs = Counter(i["properties"]["ml-connector"]["key"] for i in w.jira_issues())
            assert [k for k, n in refs.items() if n > 1] == []
            assert refs[new_key] == 1
            edited_issue = next(i for i in w.jira_issues() if i["id"] == edited.jira_id)
            assert "edited while Jira fails this issue" in edited_issue["summary"]
            assert set(store.records.count_by_state()) == {SYNCED}
        finally:
            store.close()


def _failed_events(store: Store, record_id: int) -> list[Any]:
    return [e for e in store.audit.trail(record_id) if e.event == "failed"]


def test_a_record_that_fails_three_times_then_succeeds(tmp_path: Path, store_url: str) -> None:
    """failed → failed → failed → synced, each wait drawn from its full-jitter window and recorded in the audit."""
    with world(purchase_orders=5, work_orders=0) as w:
        tweak = {
            "sync": {"retry_initial": 60, "retry_max": 600, "max_attempts": 5},
            "jira": {"http": {"max_attempts": 1}},  # one request per record attempt: the fault count is exact
        }
        c = make_connector(connector_config(w, tmp_path, store_url=store_url, tweak=tweak))
        flow = c.config.flow("purchase_orders")
        try:
            assert OutboundSync(c, flow).run().status == "succeeded"
            record = c.store.records.list(flow="purchase_orders")[0]
            w.ifs_state.edit("PurchaseOrder", record.ifs_key, {"Description": "third time lucky"})
            w.jira_sim.faults(fail_next=[{"status": 503, "count": 3, "path_contains": f"/issue/{record.jira_id}"}])
            statuses = []
            now = utcnow()
            for _ in range(4):
                with time_machine.travel(now, tick=True):
                    statuses.append(OutboundSync(c, flow).run().status)
                current = _record(c.store, "purchase_orders", record.ifs_key)
                if current.next_attempt_at is not None:
                    now = current.next_attempt_at + timedelta(seconds=1)  # the retry is due
            assert statuses == ["partial", "partial", "partial", "succeeded"]
            done = _record(c.store, "purchase_orders", record.ifs_key)
            assert done.state == SYNCED and done.attempts == 0 and done.next_attempt_at is None
            trail = c.store.audit.trail(record.id)
            events = [e.event for e in trail if e.event in ("failed", "updated")]
            assert events[-4:] == ["failed", "failed", "failed", "updated"]
            failures = _failed_events(c.store, record.id)[-3:]
            for attempt, (event, window) in enumerate(zip(failures, (60, 120, 240), strict=True), start=1):
                assert event.detail is not None and event.detail["attempt"] == attempt
                assert event.detail["error_class"] == "Unavailable"
                backoff = event.detail["backoff_seconds"]
                assert 0 <= backoff <= window
                due = datetime.fromisoformat(event.detail["next_attempt_at"])
                assert abs((due - event.at).total_seconds() - backoff) < 5
            issue = next(i for i in w.jira_issues() if i["id"] == record.jira_id)
            assert "third time lucky" in issue["summary"]
            assert c.store.records.count_by_state("purchase_orders").get(PENDING_CREATE, 0) == 0
        finally:
            c.close()


Message = MutableMapping[str, Any]


class DropAfterActing:
    """ASGI wrapper around the Jira simulator: matching requests are handled (Jira acts), then the answer is lost:
    ``drop`` sends the status line and drops the connection before the promised body; ``html`` answers 200 with a
    proxy's HTML page. The simulator's own faults all answer before acting.

    uvicorn logs the error a drop raises; that log line is the simulated far side's, not the connector's."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.paths: list[str] = []  # method + path fragments, e.g. "POST /issue/bulk"
        self.mode = "drop"

    async def __call__(
        self, scope: Message, receive: Callable[[], Awaitable[Message]], send: Callable[[Message], Awaitable[None]]
    ) -> None:
        target = f"{scope.get('method')} {scope.get('path')}"
        if scope["type"] != "http" or not any(
            target.startswith(p.split()[0]) and p.split()[1] in target for p in self.paths
        ):
            await self.app(scope, receive, send)
            return
        answer: list[Message] = []

        async def keep(message: Message) -> None:
            answer.append(message)

        await self.app(scope, receive, keep)
        if self.mode == "html":
            page = b"<html><body>Sign in to continue</body></html>"
            headers = [(b"content-type", b"text/html"), (b"content-length", str(len(page)).encode())]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": page})
            return
        # The status line and a promised body (a 204 would already be a complete answer), then the drop.
        status = 200 if answer[0]["status"] == 204 else answer[0]["status"]
        headers = [(b"content-type", b"application/json"), (b"content-length", b"64")]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        raise ConnectionResetError("test fault: connection dropped after the simulator acted")


@contextmanager
def _world_with_drops(**ifs: Any) -> Iterator[tuple[World, DropAfterActing]]:
    ifs_app = create_ifs(IfsSimOptions(**ifs))
    jira_app = create_jira(JiraSimOptions())
    dropper = DropAfterActing(jira_app)
    ifs_handle, jira_handle = serve_in_thread(ifs_app), serve_in_thread(dropper)
    w = World(ifs_handle, jira_handle, SimControl(ifs_handle.url), SimControl(jira_handle.url), ifs_app.state.sim)
    try:
        yield w, dropper
    finally:
        w.stop()


@pytest.mark.parametrize("mode", ["drop", "html"])
def test_an_answer_lost_after_jira_acted_fails_the_record_and_never_duplicates(
    tmp_path: Path, store_url: str, mode: str
) -> None:
    """A connection dropped mid-answer, or a 2xx HTML page from a proxy, after Jira made the change."""
    with _world_with_drops(purchase_orders=6, work_orders=3) as (w, dropper):
        dropper.mode = mode
        path = str(_config(w, tmp_path, store_url))
        assert _cli("sync", "-c", path).returncode == 0
        store = Store.open(store_url)
        try:
            edited = next(r for r in store.records.list(flow="purchase_orders") if r.state == SYNCED)
            work = store.records.list(flow="work_orders")[0]
            w.ifs_state.edit("PurchaseOrder", edited.ifs_key, {"Description": "edit whose answer is lost"})
            new_key = str(w.ifs_state.create("PurchaseOrder", values={"Objstate": "Released"})[0]["OrderNo"])
            w.ifs_state.edit("WorkOrder", work.ifs_key, {"ErrDescr": "work order flow unaffected"})
            # An HTML 200 to an edit is read as done (the client reads no body of an edit; Jira did act): bulk only.
            dropper.paths = (
                [f"PUT /issue/{edited.jira_id}", "POST /issue/bulk"] if mode == "drop" else ["POST /issue/bulk"]
            )

            second = _cli("sync", "-c", path)
            assert second.returncode == 1, second.stdout + second.stderr
            _no_traceback(second)
            lost_edit = _record(store, "purchase_orders", edited.ifs_key)
            if mode == "drop":
                assert lost_edit.state == RETRY and lost_edit.error_class == "Unavailable"
                assert lost_edit.next_attempt_at is not None
            lost_create = _record(store, "purchase_orders", new_key)
            assert lost_create.state == RETRY and lost_create.create_attempted_at is not None
            # Jira did act: the issue exists, though the connector never heard back.
            refs = Counter(i["properties"]["ml-connector"]["key"] for i in w.jira_issues())
            assert refs[new_key] == 1
            wo_issue = next(i for i in w.jira_issues() if i["key"] == work.jira_key)
            assert "work order flow unaffected" in wo_issue["summary"]

            dropper.paths = []
            replay = _cli("replay", "--failed", "-c", path)
            assert replay.returncode == 0, replay.stdout + replay.stderr
            assert _cli("sync", "-c", path).returncode == 0
            refs = Counter(i["properties"]["ml-connector"]["key"] for i in w.jira_issues())
            assert [k for k, n in refs.items() if n > 1] == []  # reconciled, not created twice
            linked = _record(store, "purchase_orders", new_key)
            assert linked.state == SYNCED and linked.jira_id is not None
            trail = [e.event for e in store.audit.trail(linked.id)]
            assert "reconciled" in trail and "created" not in trail
            assert set(store.records.count_by_state()) == {SYNCED}
        finally:
            store.close()


def test_each_error_class_meets_its_policy_and_the_run_goes_on(
    tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """403 parks, a 429 storm defers without using an attempt, a bug while mapping or building one record's payload
    retries that record as InternalError; every other record is synced in the same run."""
    with world(purchase_orders=10, work_orders=0) as w:
        # A 1 s rate-limit budget: the storm outlasts it, so the record is deferred to a later run.
        tweak = {
            "sync": {"retry_initial": 600, "retry_max": 3600, "rate_limit_wait_max": 1},
            "jira": {"http": {"max_attempts": 2}},
        }
        c = make_connector(connector_config(w, tmp_path, store_url=store_url, tweak=tweak))
        flow = c.config.flow("purchase_orders")
        try:
            assert OutboundSync(c, flow).run().status == "succeeded"
            linked = sorted(c.store.records.list(flow="purchase_orders"), key=lambda r: r.ifs_key)
            forbidden, limited, buggy_map, buggy_payload = linked[:4]
            for record in linked:
                w.ifs_state.edit("PurchaseOrder", record.ifs_key, {"Description": f"changed {record.ifs_key}"})
            w.jira_sim.faults(
                fail_next=[
                    {"status": 403, "count": 100, "path_contains": f"/issue/{forbidden.jira_id}"},
                    {
                        "status": 429,
                        "count": 100,
                        "retry_after": 0,
                        "path_contains": f"/issue/{limited.jira_id}",
                        "reason": "jira-per-issue-on-write",  # only that issue is held back, not the endpoint
                    },
                ]
            )
            real_map, real_fields = outbound_module.map_issue, apply_module.build_issue_fields

            def map_issue(row: Any, *args: Any, **kwargs: Any) -> Any:
                if row.get("OrderNo") == buggy_map.ifs_key:
                    raise TypeError("template bug")
                return real_map(row, *args, **kwargs)

            def build_issue_fields(draft: Any, **kwargs: Any) -> Any:
                if buggy_payload.ifs_key in draft.summary:
                    raise ZeroDivisionError("payload bug")
                return real_fields(draft, **kwargs)

            monkeypatch.setattr(outbound_module, "map_issue", map_issue)
            monkeypatch.setattr(apply_module, "build_issue_fields", build_issue_fields)
            report = OutboundSync(c, flow).run()

            assert report.status == "partial"
            assert report.counts["updated"] == len(linked) - 4
            assert (report.counts["parked"], report.counts["deferred"], report.counts["failed"]) == (1, 1, 2)
            parked = _record(c.store, "purchase_orders", forbidden.ifs_key)
            assert parked.state == "parked" and parked.error_class == "AuthError" and parked.next_attempt_at is None
            deferred = _record(c.store, "purchase_orders", limited.ifs_key)
            assert deferred.state == RETRY and deferred.error_class == "RateLimited" and deferred.attempts == 0
            assert c.store.audit.trail(deferred.id)[-1].event == "retried"
            mapped_bug = _record(c.store, "purchase_orders", buggy_map.ifs_key)
            assert mapped_bug.state == RETRY and mapped_bug.error_class == "InternalError"
            assert mapped_bug.draft is None and mapped_bug.last_error == "mapping failed: TypeError: template bug"
            payload_bug = _record(c.store, "purchase_orders", buggy_payload.ifs_key)
            assert payload_bug.state == RETRY and payload_bug.error_class == "InternalError"
            assert payload_bug.last_error == "ZeroDivisionError: payload bug"
            assert {r.code for r in report.causes} == {PERMISSION_DENIED, RATE_LIMITED, INTERNAL}

            # The bugs are fixed and Jira recovers: once due, the retries (re-mapped from IFS where no draft was
            # kept) go through; the parked record waits for a replay.
            monkeypatch.undo()
            w.jira_sim.faults(fail_next=[])
            waiting = [deferred, mapped_bug, payload_bug]
            due = max(r.next_attempt_at for r in waiting if r.next_attempt_at is not None) + timedelta(seconds=1)
            with time_machine.travel(due, tick=True):
                again = OutboundSync(c, flow).run()
            # A record parked by an earlier run does not make this one partial: it waits in the failed queue.
            assert again.counts["updated"] == 3 and again.status == "succeeded"
            assert all(_record(c.store, "purchase_orders", r.ifs_key).state == SYNCED for r in waiting)
            assert _record(c.store, "purchase_orders", forbidden.ifs_key).state == "parked"
        finally:
            c.close()


def test_a_shared_lookup_failing_fails_the_batch_and_a_refused_one_stops_the_flow(
    tmp_path: Path, store_url: str
) -> None:
    with world(purchase_orders=6, work_orders=0) as w:
        tweak = {"sync": {"retry_initial": 600, "retry_max": 3600}, "jira": {"http": {"max_attempts": 2}}}
        c = make_connector(connector_config(w, tmp_path, store_url=store_url, tweak=tweak))
        flow = c.config.flow("purchase_orders")
        try:
            w.jira_sim.faults(fail_next=[{"status": 500, "count": 1000, "path_contains": "/user/search"}])
            report = OutboundSync(c, flow).run()
            assert report.status == "partial" and report.counts["created"] == 0
            records = c.store.records.list(flow="purchase_orders")
            assert records and report.counts["failed"] == len(records)
            assert {(r.state, r.error_class) for r in records} == {(RETRY, "Unavailable")}
            assert w.jira_issues() == []

            w.jira_sim.faults(fail_next=[{"status": 403, "count": 1000, "path_contains": "/user/search"}])
            with c.store.transaction() as tx:  # their backoff has passed (a retry waits for it even under --full)
                tx.records.set_many([r.id for r in records], next_attempt_at=datetime.now(UTC) - timedelta(seconds=1))
            with pytest.raises(AuthError):  # not one record's permission problem: the flow stops
                OutboundSync(c, flow).run()
            assert c.store.runs.recent(flow="purchase_orders", limit=1)[0].status == "failed"
            assert w.jira_issues() == [] and SYNCED not in c.store.records.count_by_state("purchase_orders")
        finally:
            c.close()
