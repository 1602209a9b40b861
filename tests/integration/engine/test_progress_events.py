"""A sync over the in-process simulators reports its phases as it works: counts only grow and end at the totals."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from e2e.harness import connector_config, make_connector, world

from ml_connector.engine.outbound import OutboundSync
from ml_connector.engine.progress import Phase, PhaseEvent
from ml_connector.engine.writeback.sync import WritebackSync


def _by_phase(events: list[PhaseEvent]) -> dict[Phase, list[PhaseEvent]]:
    grouped: dict[Phase, list[PhaseEvent]] = defaultdict(list)
    for event in events:
        grouped[event.phase].append(event)
    return grouped


def _assert_moves_to_total(events: list[PhaseEvent], total: int) -> None:
    done = [e.done for e in events]
    assert done == sorted(done), done
    assert done[-1] == total
    assert all(e.total is None or e.done <= e.total for e in events)
    if events[-1].total is not None:
        assert events[-1].total == total


def test_outbound_and_writeback_emit_phase_events(tmp_path: Path) -> None:
    with world(purchase_orders=60, work_orders=0) as w:
        c = make_connector(connector_config(w, tmp_path, tweak={"sync": {"bulk_size": 5}}))  # rounds of 20 creates
        flow = c.config.flow("purchase_orders")
        try:
            events: list[PhaseEvent] = []
            report = OutboundSync(c, flow).run(progress=events.append)
            phases = _by_phase(events)
            fetched, created = report.counts["fetched"], report.counts["created"]
            _assert_moves_to_total(phases[Phase.READ], fetched)
            _assert_moves_to_total(phases[Phase.MAP], fetched)
            _assert_moves_to_total(phases[Phase.CREATE], phases[Phase.CREATE][-1].total or 0)
            assert created and phases[Phase.CREATE][-1].total >= created  # type: ignore[operator]
            assert len({e.done for e in phases[Phase.CREATE]}) > 2  # moved during the Jira phase, not in one jump

            key = c.store.records.list(flow="purchase_orders")[0].ifs_key
            w.ifs_state.edit("PurchaseOrder", key, {"Description": "edited for progress"})
            edits: list[PhaseEvent] = []
            OutboundSync(c, flow).run(progress=edits.append)
            _assert_moves_to_total(_by_phase(edits)[Phase.EDIT], 1)

            issue = w.jira_issues()[0]
            w.jira_sim.call("POST", f"issues/{issue['key']}/transition", json={"status": "In Progress"})
            writes: list[PhaseEvent] = []
            WritebackSync(c, flow, progress=writes.append).run()
            _assert_moves_to_total(_by_phase(writes)[Phase.WRITE_BACK], 1)
        finally:
            c.close()
