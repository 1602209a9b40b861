"""InboxRepository: webhook deliveries stored once each, then marked applied."""

from __future__ import annotations

from ml_connector.store import Store


def test_inbox_deduplicates_on_delivery_id(store: Store) -> None:
    assert store.inbox.add("d-1", "jira:issue_updated", "10001", {"x": 1}) is True
    assert store.inbox.add("d-1", "jira:issue_updated", "10001", {"x": 1}) is False
    assert store.inbox.count() == 1


def test_pending_deliveries_are_marked_done(store: Store) -> None:
    for n in range(3):
        store.inbox.add(f"d-{n}", "jira:issue_updated", str(n), {"n": n})
    pending = store.inbox.pending(limit=2)
    assert [p["payload"] for p in pending] == [{"n": 0}, {"n": 1}]
    store.inbox.mark([p["id"] for p in pending], "done")
    store.inbox.mark([], "failed")
    assert (store.inbox.count("pending"), store.inbox.count("done")) == (1, 2)
