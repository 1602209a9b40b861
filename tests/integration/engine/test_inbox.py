"""The one inbox processor's lock: two processors on one store (a real SQLite file, two threads, two connections as
two processes would have) never handle the same event, and never apply batches at the same time."""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from ml_connector.config.models import load_config
from ml_connector.engine import Connector, process_inbox
from ml_connector.engine import inbox as inbox_module
from ml_connector.engine.inbox import INBOX_LEASE
from ml_connector.engine.report import RunReport
from ml_connector.store import Store

EXAMPLE = Path(__file__).parents[3] / "src/ml_connector/config/templates/example.yaml"
EVENTS = 40
BATCH = 7


class Recorder:
    """Stands in for the batch apply: reads pending events like the real one, pauses, marks them processed."""

    def __init__(self) -> None:
        self.handled: Counter[int] = Counter()
        self.active = 0
        self.most_active = 0
        self.lock = threading.Lock()

    def __call__(self, connector: Connector, *, limit: int, stop: Any) -> RunReport:
        with self.lock:
            self.active += 1
            self.most_active = max(self.most_active, self.active)
        try:
            events = connector.store.inbox.pending(limit=limit)
            time.sleep(0.02)  # a window in which a second, unlocked processor would read the same rows
            ids = [int(e["id"]) for e in events]
            with self.lock:
                self.handled.update(ids)
            connector.store.inbox.mark(ids, "processed")
            report = RunReport("*", "webhook")
            if events:
                report.add("events", len(events))
            return report
        finally:
            with self.lock:
                self.active -= 1


def _connector(url: str) -> Connector:
    config = load_config(EXAMPLE, env={"IFS_URL": "http://127.0.0.1:9", "JIRA_URL": "http://127.0.0.1:9"})
    return Connector(config=config, store=Store.open(url))


def test_two_processors_never_handle_the_same_event(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'state.sqlite'}"
    first, second = _connector(url), _connector(url)
    recorder = Recorder()
    monkeypatch.setattr(inbox_module, "apply_inbox_batch", recorder)
    start = threading.Barrier(2)
    skipped: Counter[str] = Counter()

    def drain(c: Connector, name: str) -> None:
        start.wait()
        for i in range(EVENTS):  # deliveries keep arriving while both drain
            c.store.inbox.add(f"{name}-{i}", "jira:issue_updated", str(i), {})
            if process_inbox(c, batch_size=BATCH) is None:
                skipped[name] += 1

    threads = [threading.Thread(target=drain, args=(c, n)) for c, n in ((first, "a"), (second, "b"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    process_inbox(first, batch_size=BATCH)  # what arrived after the last drain
    try:
        assert recorder.most_active == 1  # never two batches at once
        assert len(recorder.handled) == 2 * EVENTS and set(recorder.handled.values()) == {1}
        assert sum(skipped.values()) > 0  # they did meet: one found the lease held and left the events to it
        assert first.store.inbox.count("pending") == 0 and first.store.leases.holder(INBOX_LEASE) is None
    finally:
        first.store.close()
        second.store.close()


def test_a_held_lease_skips_the_drain_and_leaves_the_events(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    c = _connector(f"sqlite:///{tmp_path / 'state.sqlite'}")
    recorder = Recorder()
    monkeypatch.setattr(inbox_module, "apply_inbox_batch", recorder)
    c.store.inbox.add("d1", "jira:issue_updated", "1", {})
    assert c.store.leases.acquire(INBOX_LEASE, "elsewhere:1:x", timedelta(minutes=5))
    try:
        assert process_inbox(c) is None and not recorder.handled
        c.store.leases.release(INBOX_LEASE, "elsewhere:1:x")
        report = process_inbox(c, batch_size=BATCH)
        assert report is not None and report.counts["events"] == 1 and recorder.handled == Counter({1: 1})
    finally:
        c.store.close()

