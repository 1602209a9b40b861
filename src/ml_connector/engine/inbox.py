"""The webhook inbox processor: the one way pending Jira deliveries are applied, by the CLI, the daemon and the web.

The endpoint only stores a delivery. Whoever drains the inbox holds the store lease ``inbox`` for the whole read,
apply and mark of every batch: two processes (or two threads) reading the same pending rows would both apply them,
and the second would mark the first one's events stale. The lease is the rule; a caller that finds it held skips the
drain, since the holder handles those events. Within a batch, changes are ordered by the issue's own ``updated`` time
and changelog id (``writeback.order``), never by arrival.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from ml_connector.engine.locks import following, try_lease
from ml_connector.engine.report import RunReport
from ml_connector.engine.runtime import Connector
from ml_connector.engine.writeback.inbox import apply_inbox_batch

INBOX_LEASE = "inbox"
BATCH_SIZE = 500

Observe = Callable[[RunReport, float], None]


def observer_of(connector: Connector) -> Observe | None:
    """The connector's run metrics (``observe_run``), when its observer keeps any."""
    observe = getattr(connector.observer, "observe_run", None)
    return observe if callable(observe) else None


def process_inbox(
    connector: Connector,
    *,
    stop: threading.Event | None = None,
    observe: Observe | None = None,
    batch_size: int = BATCH_SIZE,
) -> RunReport | None:
    """Apply pending events batch after batch until none is left (or ``stop``); one report for them all.

    None when another thread or process holds the inbox lease. ``observe`` (default: the connector's metrics) sees
    each batch that had events."""
    observe = observe or observer_of(connector)
    # A lost lease stops the batches (another process may be applying them now), not the runs sharing ``stop``.
    with (
        following(stop or threading.Event()) as run_stop,
        try_lease(connector.store, INBOX_LEASE, on_lost=run_stop.set) as held,
    ):
        if not held:
            return None
        total = RunReport("*", "webhook")
        while not run_stop.is_set():
            started = time.monotonic()
            batch = apply_inbox_batch(connector, limit=batch_size, stop=run_stop)
            if not batch.counts.get("events"):
                break
            if observe is not None:
                observe(batch, time.monotonic() - started)
            total.merge(batch)
        return total
