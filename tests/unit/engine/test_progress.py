"""PhaseCounter: cumulative counts per phase, sent as events only when someone listens."""

from __future__ import annotations

from ml_connector.engine.progress import Phase, PhaseCounter, PhaseEvent


def test_counts_accumulate_and_settle_at_the_total() -> None:
    events: list[PhaseEvent] = []
    counter = PhaseCounter(events.append)
    counter.expect(Phase.CREATE, 3)
    counter.done(Phase.CREATE)
    counter.expect(Phase.CREATE, 2)
    counter.settle(Phase.CREATE)
    counter.done(Phase.READ, 50)
    assert events == [
        PhaseEvent(Phase.CREATE, 0, 3),
        PhaseEvent(Phase.CREATE, 1, 3),
        PhaseEvent(Phase.CREATE, 1, 5),
        PhaseEvent(Phase.CREATE, 5, 5),
        PhaseEvent(Phase.READ, 50, None),  # rows read: no total known up front
    ]


def test_no_listener_no_work() -> None:
    counter = PhaseCounter()
    counter.expect(Phase.EDIT, 4)
    counter.settle(Phase.EDIT)  # nothing recorded, nothing raised
