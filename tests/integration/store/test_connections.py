"""Schema 0006: one store, many connections; no repository of one connection sees another's rows."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from conftest import backends, open_store, reset_postgres, store_at_revision
from sqlalchemy import text

from ml_connector.store import PARKED, PENDING_CREATE, AuditEvent, Store, utcnow


@pytest.fixture(params=backends())
def pair(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Store, Store]]:
    """Two stores of different connections on one database (two engines, as two processes would have)."""
    first = open_store(request.param, tmp_path)
    url = first.engine.url.render_as_string(hide_password=False)
    acme = Store.open(url, connection="acme")
    globex = Store.open(url, connection="globex")
    first.close()
    yield acme, globex
    acme.close()
    globex.close()


def _fill(store: Store, tag: str) -> int:
    """The same flow, keys and names in every connection, so only the connection tells the rows apart."""
    record = store.records.insert("po", "K1", state=PARKED, jira_id=f"1{tag}", jira_key=f"P-{tag}")
    store.records.insert_many("po", [("K2", {"state": PENDING_CREATE})])
    run_id = store.runs.start("po", "outbound")
    store.runs.finish(run_id, "succeeded", {"created": 1})
    with store.transaction(run_id) as tx:
        tx.audit.add(record.id, AuditEvent("created", message=f"made by {tag}"))
        tx.cursors.set("po", f"2026-01-0{len(tag)}T00:00:00Z")
    assert store.inbox.add("delivery-1", "jira:issue_updated", "10", {"who": tag})
    store.credentials.put("jira.oauth", tag.encode())
    store.users.cache("Ann@Example.com", f"acct-{tag}")
    store.controls.set("po", paused=tag == "acme")
    store.health.record("jira", "operational" if tag == "acme" else "unreachable", tag)
    store.webhooks.save("1", url=f"https://{tag}/webhooks", events=["e"], jql="x", expires_at=utcnow())
    return record.id


def test_two_connections_never_see_each_others_rows(pair: tuple[Store, Store]) -> None:
    acme, globex = pair
    acme_id = _fill(acme, "acme")
    globex_id = _fill(globex, "globex")
    for store, tag, own, other in ((acme, "acme", acme_id, globex_id), (globex, "globex", globex_id, acme_id)):
        record = store.records.get("po", "K1")
        assert record is not None and record.id == own and record.jira_key == f"P-{tag}"
        assert record.connection == tag
        assert store.records.by_id(other) is None
        assert store.records.by_jira_ids(["1acme", "1globex"]).keys() == {f"1{tag}"}
        assert [r.ifs_key for r in store.records.list()] == ["K1", "K2"]
        assert store.records.count_by_state() == {PARKED: 1, PENDING_CREATE: 1}
        assert sum(g.count for g in store.records.failure_groups()) == 1
        assert [r.ifs_key for r in store.records.work_queue("po")] == ["K2"]
        runs = store.runs.recent()
        assert len(runs) == 1 and runs[0].connection == tag
        assert [e.message for e in store.audit.trail(own)] == [f"made by {tag}"]
        assert store.audit.trail(other) == []
        assert store.cursors.get("po") == f"2026-01-0{len(tag)}T00:00:00Z"
        assert [p["payload"] for p in store.inbox.pending()] == [{"who": tag}]
        assert store.inbox.count() == 1
        assert store.credentials.get("jira.oauth") == tag.encode()
        assert store.users.cached(max_age=timedelta(hours=1)) == {"ann@example.com": f"acct-{tag}"}
        assert store.controls.get("po")["paused"] is (tag == "acme")
        assert store.health.all()["jira"]["reason"] == tag
        assert [w["url"] for w in store.webhooks.all()] == [f"https://{tag}/webhooks"]


def test_writes_by_id_do_not_reach_another_connection(pair: tuple[Store, Store]) -> None:
    acme, globex = pair
    acme_id = _fill(acme, "acme")
    _fill(globex, "globex")
    globex.records.update(acme_id, state="synced")
    globex.records.set_many([acme_id], last_error="touched")
    globex.inbox.mark([p["id"] for p in acme.inbox.pending()], "processed")
    assert globex.credentials.delete("jira.oauth")
    record = acme.records.by_id(acme_id)
    assert record is not None and record.state == PARKED and record.last_error is None
    assert acme.inbox.count("pending") == 1
    assert acme.credentials.get("jira.oauth") == b"acme"


def test_leases_are_per_connection(pair: tuple[Store, Store]) -> None:
    acme, globex = pair
    ttl = timedelta(minutes=1)
    assert acme.leases.acquire("flow:po", "host-a", ttl)
    assert globex.leases.acquire("flow:po", "host-b", ttl)  # the same flow name of another connection
    assert not acme.leases.acquire("flow:po", "host-b", ttl)
    holder = globex.leases.holder("flow:po")
    assert holder is not None and holder[0] == "host-b"
    acme.leases.release("flow:po", "host-b")  # not acme's holder: nothing happens
    globex.leases.release("flow:po", "host-b")
    assert globex.leases.holder("flow:po") is None
    still = acme.leases.holder("flow:po")
    assert still is not None and still[0] == "host-a"


def test_for_connection_shares_the_engine(pair: tuple[Store, Store]) -> None:
    acme, _ = pair
    other = acme.for_connection("initech")
    assert other.engine is acme.engine and other.connection == "initech"
    acme.records.insert("po", "K1", state=PARKED)
    assert other.records.get("po", "K1") is None


@pytest.mark.parametrize("backend", backends())
def test_upgrading_a_populated_0005_store_keeps_every_row_under_default(backend: str, tmp_path: Path) -> None:
    url, engine = store_at_revision(backend, tmp_path, "0005")
    now = utcnow()
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO records (flow, ifs_key, state, attempts, created_at, updated_at, jira_key) "
                "VALUES ('po', 'K1', 'synced', 0, :now, :now, 'P-1')"
            ),
            {"now": now},
        )
        record_id = conn.execute(text("SELECT id FROM records")).scalar_one()
        conn.execute(
            text("INSERT INTO audit_events (record_id, at, event, outcome) VALUES (:id, :now, 'created', 'ok')"),
            {"id": record_id, "now": now},
        )
        conn.execute(
            text(
                "INSERT INTO runs (flow, kind, started_at, status, dry_run, counts) VALUES "
                "('po', 'outbound', :now, 'succeeded', false, '{}')"
            ),
            {"now": now},
        )
        conn.execute(text("INSERT INTO cursors (name, value, updated_at) VALUES ('po', 'c1', :now)"), {"now": now})
        conn.execute(
            text("INSERT INTO credentials (name, ciphertext, updated_at) VALUES ('jira.oauth', :c, :now)"),
            {"c": b"secret", "now": now},
        )
        conn.execute(
            text(
                "INSERT INTO webhook_inbox (delivery_id, received_at, event, payload, status) "
                "VALUES ('d1', :now, 'e', '{}', 'pending')"
            ),
            {"now": now},
        )
    engine.dispose()
    store = Store.open(url)
    other = store.for_connection("acme")
    try:
        record = store.records.get("po", "K1")
        assert record is not None and record.connection == "default" and record.jira_key == "P-1"
        assert [e.event for e in store.audit.trail(record.id)] == ["created"]  # not cascaded away by the copy
        assert len(store.runs.recent()) == 1
        assert store.cursors.get("po") == "c1"
        assert store.credentials.get("jira.oauth") == b"secret"
        assert store.inbox.count("pending") == 1
        assert other.records.get("po", "K1") is None and other.runs.recent() == []
        other.records.insert("po", "K1", state=PARKED)  # the same key in another connection is a new row
        assert other.inbox.add("d1", "e", None, {})  # delivery ids are unique per connection
        assert not store.inbox.add("d1", "e", None, {})  # a duplicate delivery within one connection
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM audit_events").scalar_one() == 1
    finally:
        store.close()
    if backend != "sqlite":
        reset_postgres(url)
