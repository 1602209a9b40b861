"""SQLite files keep pooled connections: a pooled connection never serves a stale or half-finished view."""

from __future__ import annotations

import threading
from pathlib import Path

from sqlalchemy.pool import NullPool, QueuePool

from ml_connector.store import PENDING_CREATE, SYNCED, Store
from ml_connector.store.db import POOL_SIZE, create_db_engine


def test_a_file_is_pooled_without_a_cap_and_memory_is_not(tmp_path: Path) -> None:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'state.sqlite'}")
    assert isinstance(engine.pool, QueuePool) and engine.pool.size() == POOL_SIZE
    assert engine.pool._max_overflow < 0  # no cap: never waits for a connection, as with no pool
    engine.dispose()
    assert isinstance(create_db_engine("sqlite:///:memory:").pool, NullPool)


def test_another_process_sees_each_commit_through_its_pooled_connections(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.sqlite'}"
    writer, reader = Store.open(url), Store.open(url, migrate_schema=False)  # two processes' stores on one file
    try:
        record = writer.records.insert("flow", "K1", state=PENDING_CREATE)
        assert reader.records.get("flow", "K1") is not None  # the reader's connection is now pooled
        with writer.transaction() as tx:
            tx.records.update(record.id, state=SYNCED)
            # Not committed yet: the pooled reader sees the old state, not a half-finished page.
            seen = reader.records.get("flow", "K1")
            assert seen is not None and seen.state == PENDING_CREATE
        seen = reader.records.get("flow", "K1")
        assert seen is not None and seen.state == SYNCED
    finally:
        writer.close()
        reader.close()


def test_more_threads_than_the_pool_holds_all_get_a_connection(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'state.sqlite'}")
    started, release = threading.Barrier(POOL_SIZE * 4), threading.Event()
    errors: list[BaseException] = []

    def hold() -> None:
        try:
            with store.engine.connect():
                started.wait(timeout=30)  # every thread holds a connection at once
                release.wait(timeout=30)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=hold) for _ in range(POOL_SIZE * 4)]
    for thread in threads:
        thread.start()
    release.set()
    for thread in threads:
        thread.join(timeout=60)
    store.close()
    assert not errors and not any(thread.is_alive() for thread in threads)
