"""LeaseRepository: one holder at a time, renewals, expiry."""

from __future__ import annotations

from datetime import timedelta

from ml_connector.store import Store


def test_lease_excludes_a_second_holder(store: Store) -> None:
    assert store.leases.acquire("scheduler", "host-a", timedelta(seconds=60))
    assert not store.leases.acquire("scheduler", "host-b", timedelta(seconds=60))
    assert store.leases.acquire("scheduler", "host-a", timedelta(seconds=60))  # renewal
    store.leases.release("scheduler", "host-a")
    assert store.leases.acquire("scheduler", "host-b", timedelta(seconds=60))
    holder = store.leases.holder("scheduler")
    assert holder is not None and holder[0] == "host-b"


def test_expired_lease_can_be_taken_over(store: Store) -> None:
    assert store.leases.acquire("scheduler", "host-a", timedelta(seconds=-1))
    assert store.leases.holder("scheduler") is None
    assert store.leases.acquire("scheduler", "host-b", timedelta(seconds=60))
