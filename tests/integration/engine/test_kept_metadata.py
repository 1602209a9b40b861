"""Jira and IFS metadata kept in the store (engine/runtime.py), over the simulators: a new process's first changed
page reads none of it; metadata that decided a record's failure is read again before the record fails."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from e2e.harness import World, connector_config, make_connector, world

from ml_connector.engine.outbound import OutboundSync
from ml_connector.engine.runtime import Connector
from ml_connector.store import SYNCED

FLOW = "purchase_orders"
DAY = timedelta(days=1)


def _backfilled(w: World, tmp_path: Path) -> tuple[Any, int]:
    """The config of a store the backfill filled, and how many of its records were then edited in IFS."""
    config = connector_config(w, tmp_path)
    first = make_connector(config)
    try:
        OutboundSync(first, config.flow(FLOW)).run()
    finally:
        first.close()
    records = first.store.records.list(flow=FLOW, limit=1000)
    for record in records:
        w.ifs_state.edit("PurchaseOrder", record.ifs_key, {"Description": "edited"})
    w.jira_sim.clear_requests()
    w.ifs_sim.clear_requests()
    return config, len(records)


def _run(c: Connector) -> dict[str, int]:
    report = OutboundSync(c, c.config.flow(FLOW)).run()
    return dict(report.counts)


def test_a_new_process_edits_without_reading_jira_or_ifs_metadata_again(tmp_path: Path) -> None:
    with world(purchase_orders=12, work_orders=0) as w:
        config, edited = _backfilled(w, tmp_path)
        c = make_connector(config)  # a new process on the same store
        try:
            counts = _run(c)
        finally:
            c.close()
        assert counts["updated"] == edited > 0
        assert set(w.jira_sim.counts()) == {"PUT /rest/api/3/issue/{id}"}  # no field, priority, project, createmeta
        assert not [e for e in w.ifs_sim.counts() if "$metadata" in e]


def test_a_priority_the_kept_metadata_lacks_is_looked_up_before_a_record_fails(tmp_path: Path) -> None:
    with world(purchase_orders=12, work_orders=0) as w:
        config, edited = _backfilled(w, tmp_path)
        c = make_connector(config)
        try:
            kept = c.store.metadata.get("jira:priorities", source=c._jira_source(), max_age=DAY)
            assert kept is not None
            # Kept before Jira had any priority the mapping gives (added in Jira since): planned on it alone, every
            # record would be parked as "priority not in Jira".
            c.store.metadata.put("jira:priorities", ["Lowest"], source=c._jira_source(), fetched_at=kept.fetched_at)
            counts = _run(c)
            assert counts["updated"] == edited and "parked" not in counts, counts
            assert {r.state for r in c.store.records.list(flow=FLOW, limit=1000)} == {SYNCED}
            assert w.jira_sim.counts().get("GET /rest/api/3/priority") == 1  # read again, once
        finally:
            c.close()
