"""RecordRepository: lookups, queues and batch writes, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from ml_connector.store import PARKED, PENDING_CREATE, PENDING_UPDATE, RETRY, SYNCED, Store, safe_json, utcnow


def test_work_queue_holds_pending_records_and_retries_that_are_due(store: Store) -> None:
    now = utcnow()
    with store.transaction() as tx:
        tx.records.insert("po", "A", state=PENDING_CREATE)
        tx.records.insert("po", "B", state=PENDING_UPDATE, jira_id="1")
        tx.records.insert("po", "DUE", state=RETRY, next_attempt_at=now - timedelta(minutes=1))
        tx.records.insert("po", "LATER", state=RETRY, next_attempt_at=now + timedelta(hours=1))
        tx.records.insert("po", "P", state=PARKED)
        tx.records.insert("po", "S", state=SYNCED, jira_id="2")
        tx.records.insert("wo", "W", state=PENDING_CREATE)
    assert [r.ifs_key for r in store.records.work_queue("po", now=now)] == ["A", "B", "DUE"]
    assert [r.ifs_key for r in store.records.work_queue("po", now=now, limit=2)] == ["A", "B"]
    assert store.records.count_by_state("po") == {PENDING_CREATE: 1, PENDING_UPDATE: 1, RETRY: 2, PARKED: 1, SYNCED: 1}
    assert store.records.count_by_flow_state()[("wo", PENDING_CREATE)] == 1


def test_lookups_by_key_id_and_jira_id(store: Store) -> None:
    with store.transaction() as tx:
        written = tx.records.insert_many(
            "po", [(f"PO-{n}", {"state": SYNCED, "jira_id": str(n), "jira_key": f"ABC-{n}"}) for n in range(3)]
        )
        ids = {key: record.id for key, record in written.items()}
        tx.records.insert("po", "PO-X", state=PENDING_CREATE)
        assert set(tx.records.get_many("po", ["PO-1", "PO-2", "PO-1", "missing"])) == {"PO-1", "PO-2"}
    assert sorted(ids) == ["PO-0", "PO-1", "PO-2"]
    first = store.records.by_id(ids["PO-0"])
    assert first is not None and first.ifs_key == "PO-0" and first.attempts == 0
    assert store.records.by_id(-1) is None
    wanted = [ids["PO-2"], -1, ids["PO-0"]]
    assert [r.ifs_key for r in store.records.by_ids(wanted)] == ["PO-2", "PO-0"]  # the order asked
    assert {k: r.ifs_key for k, r in store.records.by_jira_ids(["1", "2", "9"]).items()} == {"1": "PO-1", "2": "PO-2"}
    assert [r.ifs_key for r in store.records.linked("po")] == ["PO-0", "PO-1", "PO-2"]
    assert store.records.linked_projects("po") == {"ABC"}


def test_insert_many_returns_each_record_as_a_read_gives_it_back(store: Store) -> None:
    # The outbound commit hands these to the Jira work without reading them again: they must be what a read gives.
    raw_draft = {"summary": "S\x00", "labels": ("a", "b"), "at": utcnow(), 7: {"n": 1.5}}
    with store.transaction() as tx:
        written = tx.records.insert_many(
            "po",
            [
                ("PO-1", {"state": PENDING_CREATE, "source_hash": "s1", "draft": raw_draft, "attempts": 0}),
                ("PO-2", {"state": PENDING_CREATE, "source_hash": "s2", "draft": safe_json({"x": "y"}), "attempts": 2}),
            ],
        )
    assert list(written) == ["PO-1", "PO-2"]
    assert list(written.values()) == store.records.by_ids([r.id for r in written.values()])
    assert written["PO-1"].draft is not None and written["PO-1"].draft["labels"] == ["a", "b"]


def test_find_and_list(store: Store) -> None:
    with store.transaction() as tx:
        tx.records.insert("po", "PO-1", state=SYNCED, jira_key="ABC-7")
        tx.records.insert("po", "PO-10", state=PARKED)
        tx.records.insert("po", "PO_1", state=PARKED)  # "_" is no wildcard
        tx.records.insert("wo", "WO-1", state=SYNCED)
    assert [r.ifs_key for r in store.records.find("PO-1")] == ["PO-1", "PO-10"]
    assert [r.ifs_key for r in store.records.find("ABC-7")] == ["PO-1"]
    assert [r.ifs_key for r in store.records.list(flow="po", state=PARKED)] == ["PO-10", "PO_1"]
    assert [r.ifs_key for r in store.records.list(search="PO-1")] == ["PO-1", "PO-10"]
    everything = store.records.list()
    assert [r.ifs_key for r in store.records.list(after_id=everything[1].id)] == ["PO_1", "WO-1"]
    assert [r.ifs_key for r in store.records.list(limit=1, offset=3)] == ["WO-1"]


def test_batch_updates(store: Store) -> None:
    with store.transaction() as tx:
        written = tx.records.insert_many("po", [(f"K{n}", {"state": PENDING_CREATE}) for n in range(1200)])
    every = sorted(record.id for record in written.values())
    with store.transaction() as tx:
        tx.records.set_many(every, state=RETRY, attempts=2)  # more ids than one IN (...) chunk
        tx.records.update_many(
            [(every[0], {"state": SYNCED, "jira_id": "1"}), (every[1], {"state": PARKED, "jira_id": None})]
        )
    assert store.records.count_by_state("po") == {RETRY: 1198, SYNCED: 1, PARKED: 1}
    first = store.records.by_id(every[0])
    assert first is not None and (first.jira_id, first.attempts) == ("1", 2)
    assert len(store.records.by_ids(every)) == 1200


def test_in_states_filters_by_flow_keys_and_time(store: Store) -> None:
    with store.transaction() as tx:
        tx.records.insert("po", "A", state=PARKED, jira_key="ABC-1")
        tx.records.insert("po", "B", state=RETRY)
        tx.records.insert("po", "C", state=SYNCED)
        tx.records.insert("wo", "D", state=PARKED)
    assert sorted(r.ifs_key for r in store.records.in_states((PARKED, RETRY))) == ["A", "B", "D"]
    assert sorted(r.ifs_key for r in store.records.in_states((PARKED,), flow="po")) == ["A"]
    assert [r.ifs_key for r in store.records.in_states((PARKED, RETRY), keys=["ABC-1", "B"])] == ["A", "B"]
    assert store.records.in_states((PARKED,), since=utcnow() + timedelta(minutes=1)) == []
