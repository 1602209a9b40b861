"""The write-back poll after a backfill (issue 14, item 5) over real HTTP: what a narrowed window must still do.

Both simulators run on loopback; the store is SQLite and PostgreSQL. A backfill of ~140 issues fills the poll's
window with more than one page (100), so the poll reads the newest page plus ``status CHANGED`` in the window.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from e2e.harness import World, connector_config, world

from ml_connector.config.models import ConnectorConfig
from ml_connector.engine import Connector, OutboundSync, WritebackSync
from ml_connector.errors import Unavailable
from ml_connector.jira.search import SearchOps
from ml_connector.store import RecordRow, Store

FLOW = "purchase_orders"
PERSON = "ana.alvarez@example.com"


@dataclass
class Env:
    w: World
    c: Connector
    config: ConnectorConfig

    def linked(self) -> list[RecordRow]:
        return sorted(self.c.store.records.linked(FLOW), key=lambda r: int(str(r.jira_id)))

    def ifs_status(self, record: RecordRow) -> Any:
        return self.w.ifs_state.get_raw("PurchaseOrder", record.ifs_key).get("Cf_Jira_Status")

    def writeback(self) -> Any:
        return WritebackSync(self.c, self.config.flow(FLOW)).run()

    def poll_searches(self) -> list[str]:
        """The JQL of the searches since the log was cleared."""
        return [
            str(json.loads(r.get("request_body") or "{}").get("jql"))
            for r in self.w.jira_sim.requests()["requests"]
            if r["endpoint"].endswith("search/jql")
        ]

    def record_requests(self) -> None:
        self.w.jira_sim.clear_requests()
        self.w.jira_sim.call("PUT", "requests", json={"record_exchanges": True})


def _initial(config: ConnectorConfig) -> ConnectorConfig:
    """The config with ``writeback.initial`` on for the flow (config models are frozen)."""
    flows = [
        f.model_copy(update={"writeback": f.writeback.model_copy(update={"initial": True})}) if f.name == FLOW else f
        for f in config.flows
    ]
    return config.model_copy(update={"flows": flows})


def _env(store: Store, tmp_path: Path, *, initial: bool, jira_clock: float = 0.0) -> Iterator[Env]:
    with world(purchase_orders=160, work_orders=0) as w:
        w.jira_sim.call("PUT", "clock", json={"offset_seconds": jira_clock})
        config = connector_config(w, tmp_path)
        config = _initial(config) if initial else config
        c = Connector(config=config, store=store)
        try:
            OutboundSync(c, config.flow(FLOW)).run()
            env = Env(w, c, config)
            assert len(env.linked()) > 100, "the window must hold more than one search page"
            yield env
        finally:
            c.close()


@pytest.fixture
def env(store: Store, tmp_path: Path) -> Iterator[Env]:
    yield from _env(store, tmp_path, initial=False)


def test_initial_statuses_still_come_from_the_whole_window(store: Store, tmp_path: Path) -> None:
    """With ``initial`` every new issue's first status is written, so the poll pages through the whole window."""
    for env in _env(store, tmp_path, initial=True):
        env.record_requests()
        report = env.writeback()
        assert report.status == "succeeded", report
        linked = env.linked()
        assert all(env.ifs_status(r) == "To Do" for r in linked), [r.ifs_key for r in linked if not env.ifs_status(r)]
        searches = env.poll_searches()
        assert len(searches) >= 2 and not any("CHANGED" in q for q in searches), searches


def test_a_failed_search_keeps_the_cursor_and_the_next_poll_writes_the_move(env: Env) -> None:
    oldest = env.linked()[0]  # created first: the newest page of the window does not hold it
    env.w.jira_sim.call("POST", f"issues/{oldest.jira_key}/transition", json={"status": "In Progress", "as": PERSON})
    env.w.jira_sim.faults(fail_next=[{"status": 503, "count": 10_000, "path_contains": "/search/jql"}])
    with pytest.raises(Unavailable):  # Jira down is the run's failure, for the runner to retry
        env.writeback()
    assert env.c.store.cursors.get(f"{FLOW}:writeback") is None, "a failed poll must not move the cursor"
    assert env.ifs_status(oldest) is None

    env.w.jira_sim.faults(fail_next=[])
    env.record_requests()
    report = env.writeback()
    assert report.status == "succeeded", report
    assert env.ifs_status(oldest) == "In Progress"
    searches = env.poll_searches()
    assert len(searches) == 2 and "status CHANGED AFTER" in searches[1], searches
    assert sum(1 for r in env.linked() if env.ifs_status(r)) == 1  # nobody moved the others: nothing written


def test_a_move_by_the_connector_account_is_still_a_status_change(env: Env) -> None:
    """Who moved it does not matter (an automation rule may run as any account): every status change is read."""
    oldest = env.linked()[0]
    env.w.jira_sim.call("POST", f"issues/{oldest.jira_key}/transition", json={"status": "In Progress"})
    env.record_requests()
    assert env.writeback().status == "succeeded"
    assert env.ifs_status(oldest) == "In Progress"
    assert len(env.poll_searches()) == 2


@pytest.mark.parametrize("skew", [-60.0, 60.0])
def test_a_jira_clock_apart_from_ours_within_the_lookback_misses_no_move(
    store: Store, tmp_path: Path, skew: float
) -> None:
    """Jira's clock a minute behind or ahead of the connector's (the look-back is two): the oldest issue's move, made
    after a first poll moved the cursor, is still in the next window, and the poll stays at two searches."""
    for env in _env(store, tmp_path, initial=False, jira_clock=skew):
        assert env.writeback().status == "succeeded"  # the post-backfill poll: the cursor moves
        assert env.c.store.cursors.get(f"{FLOW}:writeback") is not None
        oldest = env.linked()[0]
        env.w.jira_sim.call("PUT", "clock", json={"offset_seconds": skew + 5})  # the person acts a little later
        env.w.jira_sim.call(
            "POST", f"issues/{oldest.jira_key}/transition", json={"status": "In Progress", "as": PERSON}
        )
        env.record_requests()
        assert env.writeback().status == "succeeded"
        assert env.ifs_status(oldest) == "In Progress"
        assert len(env.poll_searches()) == 2


def test_a_site_that_refuses_the_history_search_gets_the_whole_window(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Should a Jira site answer 400 to the history clause, the poll reads the whole window as before: dearer, never
    blind. The refusal is the simulator's real 400 for a clause Jira keeps no history of."""
    monkeypatch.setattr(SearchOps, "status_changed_since_clause", lambda self, instant: "summary CHANGED")
    oldest = env.linked()[0]
    env.w.jira_sim.call("POST", f"issues/{oldest.jira_key}/transition", json={"status": "In Progress", "as": PERSON})
    env.record_requests()
    assert env.writeback().status == "succeeded"
    assert env.ifs_status(oldest) == "In Progress"
    answers = [r["status"] for r in env.w.jira_sim.requests()["requests"] if r["endpoint"].endswith("search/jql")]
    assert answers.count(400) == 1 and len(answers) >= 4, answers  # first page, the refusal, the whole window
