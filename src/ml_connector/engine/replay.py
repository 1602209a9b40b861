"""Replay: put failed records back in the work queue, then send them through the normal path (queue only).

The CLI (``replay``) and the dashboard ("Replay") both come here; the dashboard re-queues in the request, so it can
say how many, and sends in the background.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from ml_connector.engine.flows import FlowOptions, FlowRun, run_flow
from ml_connector.engine.inbox import Observe
from ml_connector.engine.requeue import requeue_failed
from ml_connector.engine.runtime import Connector
from ml_connector.store import RecordRow, Store

# Only the queue, nothing else of the flow; the replay run's own row already records a crash.
QUEUE_ONLY = FlowOptions(queue_only=True, writeback=False, inbox=False, keep_going=True, record_crash=False)


def requeue_records(store: Store, record_ids: Iterable[int]) -> list[RecordRow]:
    """The failed ones among ``record_ids`` back in the work queue (the dashboard's selection)."""
    by_flow: dict[str, list[str]] = {}
    for record_id in record_ids:
        record = store.records.by_id(record_id)
        if record is not None:
            by_flow.setdefault(record.flow, []).append(record.ifs_key)
    return [row for name, keys in by_flow.items() for row in requeue_failed(store, flow=name, keys=keys)]


def replay_flows(
    connector: Connector,
    flows: Iterable[str],
    *,
    stop: threading.Event,
    observe: Observe | None = None,
) -> list[FlowRun]:
    """Send what is re-queued, flow by flow, under each flow's lock; ``stop`` leaves the rest to the next run."""
    return [
        run_flow(connector, connector.config.flow(name), stop=stop, options=QUEUE_ONLY, observe=observe)
        for name in flows
    ]
