"""The store's ``metadata_cache``: entries by name, used only from the same source and within an age."""

from __future__ import annotations

from datetime import timedelta

from ml_connector.store import Store, utcnow

DAY = timedelta(days=1)


def test_an_entry_is_read_back_from_its_source_within_its_age(store: Store) -> None:
    store.metadata.put("jira:fields", [{"id": "customfield_1"}], source="site-a")
    entry = store.metadata.get("jira:fields", source="site-a", max_age=DAY)
    assert entry is not None and entry.value == [{"id": "customfield_1"}]
    assert store.metadata.get("jira:fields", source="site-b", max_age=DAY) is None
    assert store.metadata.get("jira:other", source="site-a", max_age=DAY) is None

    store.metadata.put("jira:fields", ["replaced"], source="site-a", fetched_at=utcnow() - timedelta(hours=2))
    assert store.metadata.get("jira:fields", source="site-a", max_age=timedelta(hours=1)) is None
    old = store.metadata.get("jira:fields", source="site-a", max_age=DAY)
    assert old is not None and old.value == ["replaced"]
    ahead = utcnow() + timedelta(minutes=5)  # a clock ahead of ours cannot vouch for the entry's age
    store.metadata.put("jira:fields", ["ahead"], source="site-a", fetched_at=ahead)
    assert store.metadata.get("jira:fields", source="site-a", max_age=DAY) is None


def test_forget_drops_entries_by_prefix_and_only_this_connections(store: Store) -> None:
    other = store.for_connection("other")
    for s in (store, other):
        s.metadata.put("jira:fields", [], source="x")
        s.metadata.put("createmeta:PROC:Task", {}, source="x")
        s.metadata.put("ifs:metadata:PurchaseOrderHandling", {"csdl": "<x/>"}, source="x")
    assert store.metadata.forget("jira:", "createmeta:") == 2
    assert store.metadata.get("jira:fields", source="x", max_age=DAY) is None
    assert store.metadata.get("ifs:metadata:PurchaseOrderHandling", source="x", max_age=DAY) is not None
    assert other.metadata.get("jira:fields", source="x", max_age=DAY) is not None
    assert other.metadata.get("createmeta:PROC:Task", source="x", max_age=DAY) is not None
