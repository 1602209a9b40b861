"""One batch of the webhook inbox, applied through the same write path as polling.

Only ``engine.inbox.process_inbox`` calls it, under the inbox lease."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ml_connector.engine.report import RunReport
from ml_connector.engine.runtime import Connector
from ml_connector.engine.writeback.changes import StatusChange, change_from_delivery
from ml_connector.engine.writeback.sync import WritebackSync
from ml_connector.store import RecordRow


@dataclass
class _Deliveries:
    """Inbox events sorted into the changes each write-back flow applies and the events nothing applies."""

    by_flow: dict[str, list[StatusChange]] = field(default_factory=dict)
    event_of: dict[int, int] = field(default_factory=dict)  # id(change) -> inbox row id
    ignored: list[int] = field(default_factory=list)


def _sort_events(
    events: Sequence[Mapping[str, Any]], records: Mapping[str, RecordRow], writing: set[str]
) -> _Deliveries:
    sorted_events = _Deliveries()
    for event in events:
        change = change_from_delivery(event.get("payload") or {})
        record = records.get(str(event.get("issue_id")))
        if change is None or record is None or record.flow not in writing or event.get("event") == "jira:issue_deleted":
            sorted_events.ignored.append(int(event["id"]))
            continue
        sorted_events.by_flow.setdefault(record.flow, []).append(change)
        sorted_events.event_of[id(change)] = int(event["id"])
    return sorted_events


def apply_inbox_batch(connector: Connector, *, limit: int, stop: threading.Event | None = None) -> RunReport:
    """Apply one batch of pending webhook events through the same write path as polling; stale ones end as ``stale``."""
    store = connector.store
    report = RunReport("*", "webhook")
    events = store.inbox.pending(limit=limit)
    if not events:
        return report
    records = store.records.by_jira_ids(str(e["issue_id"]) for e in events if e.get("issue_id"))
    writing = {f.name for f in connector.config.flows if f.enabled and f.writeback.enabled}
    deliveries = _sort_events(events, records, writing)
    stale: set[int] = set()
    for flow_name, changes in deliveries.by_flow.items():
        flow = connector.config.flow(flow_name)
        dropped = WritebackSync(connector, flow, stop=stop).apply(changes, report)
        stale.update(deliveries.event_of[id(c)] for c in dropped)
    # Every event is now accepted (durably, before any IFS write) or stale, even when a stop cut the writes short:
    # a status not yet in IFS is pending in the store and the next run writes it.
    store.inbox.mark(deliveries.ignored, "ignored")
    store.inbox.mark(sorted(stale), "stale")
    store.inbox.mark(sorted(set(deliveries.event_of.values()) - stale), "processed")
    report.add("events", len(events))
    return report
