"""One applier at a time: the web inbox thread, a scheduled poll and a CLI sync never interleave their IFS writes on
one record (else an older status could land after a newer one while the store believes the newer).

In-process a lock, across processes a store lease; a waiter gives up after ``APPLY_WAIT`` seconds (the events stay
pending).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from ml_connector.engine.locks import FlowBusy, flow_lock
from ml_connector.store import Store

_APPLY_LOCK = threading.RLock()
APPLY_LEASE = "write-back"
APPLY_WAIT = 120.0


@contextmanager
def one_applier(store: Store, stop: threading.Event) -> Iterator[None]:
    deadline = time.monotonic() + APPLY_WAIT
    with _APPLY_LOCK:
        while True:
            lease = flow_lock(store, APPLY_LEASE)
            try:
                lease.__enter__()
                break
            except FlowBusy:
                if stop.is_set() or time.monotonic() > deadline:
                    raise FlowBusy("another process is writing Jira statuses to IFS; try again later") from None
                stop.wait(0.05)
        try:
            yield
        finally:
            lease.__exit__(None, None, None)
