"""Runs, user cache, flow controls, health, webhook subscriptions and credentials, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from ml_connector.store import Store, utcnow


def test_runs_start_finish_and_newest_first(store: Store) -> None:
    first = store.runs.start("po", "outbound")
    store.runs.finish(first, "succeeded", {"created": 2})
    second = store.runs.start("po", "writeback", dry_run=True)
    store.runs.finish(second, "failed", {}, error="boom Bearer abcdefghijkl")
    assert [r.id for r in store.runs.recent()] == [second, first]
    last = store.runs.last("po")  # dry runs don't count
    assert last is not None and (last.id, last.counts, last.finished_at is not None) == (first, {"created": 2}, True)
    assert store.runs.last("po", kind="writeback") is None
    assert store.runs.last("po", succeeded=True) == last
    failed = store.runs.recent(flow="po", limit=1)[0]
    assert failed.error is not None and "abcdefghijkl" not in failed.error


def test_user_cache_forgets_old_entries(store: Store) -> None:
    store.users.cache("A@Example.com", "acc-1")
    store.users.cache("gone@example.com", None)
    assert store.users.cached(max_age=timedelta(hours=1)) == {"a@example.com": "acc-1", "gone@example.com": None}
    assert store.users.cached(max_age=timedelta(seconds=-1)) == {}


def test_user_cache_reads_only_the_addresses_asked_for(store: Store) -> None:
    for n in range(5):
        store.users.cache(f"user{n}@example.com", f"acc-{n}")
    hour = timedelta(hours=1)
    assert store.users.cached(max_age=hour, emails={"USER1@example.com", "user3@example.com", "new@example.com"}) == {
        "user1@example.com": "acc-1",
        "user3@example.com": "acc-3",
    }
    assert store.users.cached(max_age=hour, emails=set()) == {}


def test_user_cache_takes_one_address_from_many_threads_at_once(store: Store) -> None:
    """Pages mapped side by side may resolve the same address: each write refreshes the entry, none fails."""
    barrier = threading.Barrier(8)

    def cache(n: int) -> None:
        barrier.wait()
        store.users.cache("Claire.Dubois@example.com", f"acc-{n}")

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(cache, range(8)))  # re-raises a worker's error
    cached = store.users.cached(max_age=timedelta(hours=1))
    assert list(cached) == ["claire.dubois@example.com"] and cached["claire.dubois@example.com"] in {
        f"acc-{n}" for n in range(8)
    }


def test_flow_controls_and_health(store: Store) -> None:
    assert store.controls.get("po")["paused"] is False
    store.controls.set("po", paused=True)
    store.controls.set("po", sync_requested_at=utcnow())
    control = store.controls.get("po")
    assert control["paused"] is True and control["sync_requested_at"] is not None
    store.health.record("jira", "operational")
    store.health.record("jira", "down", "401 from Bearer abcdefghijkl")
    jira = store.health.all()["jira"]
    assert jira["status"] == "down" and jira["last_success_at"] is not None
    assert "abcdefghijkl" not in jira["reason"]


def test_webhook_subscriptions_keep_their_creation_time(store: Store) -> None:
    expires = utcnow() + timedelta(days=30)
    store.webhooks.save("1", url="https://x/hook", events=["jira:issue_updated"], jql="project = A", expires_at=expires)
    created = store.webhooks.all()[0]["created_at"]
    store.webhooks.save("1", url="https://x/hook", events=["jira:issue_updated"], jql="project = B", expires_at=expires)
    store.webhooks.save("2", url="https://x/hook", events=[], jql="project = C", expires_at=expires)
    saved = store.webhooks.all()
    assert [(s["webhook_id"], s["jql"]) for s in saved] == [("1", "project = B"), ("2", "project = C")]
    assert saved[0]["created_at"] == created
    store.webhooks.delete(["1"])
    store.webhooks.delete([])
    assert [s["webhook_id"] for s in store.webhooks.all()] == ["2"]


def test_credentials_are_replaced(store: Store) -> None:
    assert store.credentials.get("jira") is None
    store.credentials.put("jira", b"one")
    store.credentials.put("jira", b"two")
    assert store.credentials.get("jira") == b"two"


def test_credentials_are_deleted_by_name_only(store: Store) -> None:
    store.credentials.put("jira", b"grant")
    store.credentials.put("other", b"kept")
    assert store.credentials.delete("jira") is True
    assert store.credentials.get("jira") is None and store.credentials.get("other") == b"kept"
    assert store.credentials.delete("jira") is False  # a second logout finds nothing
