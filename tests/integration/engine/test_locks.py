from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy.exc import OperationalError

from ml_connector.engine import FlowBusy, flow_lock
from ml_connector.engine.locks import following
from ml_connector.store import Store, utcnow


def test_a_second_run_of_the_same_flow_is_refused_and_others_are_not(store: Store) -> None:
    with flow_lock(store, "purchase_orders"):
        with pytest.raises(FlowBusy, match="purchase_orders"), flow_lock(store, "purchase_orders"):
            pass
        with flow_lock(store, "work_orders"):
            pass
    with flow_lock(store, "purchase_orders"):  # released on exit
        pass


def test_a_killed_holder_on_this_host_is_taken_over_at_once(store: Store) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    holder = f"{socket.gethostname()}:{dead.stdout.strip()}:deadbeef"
    assert store.leases.acquire("flow:purchase_orders", holder, timedelta(hours=1))
    with flow_lock(store, "purchase_orders"):
        current = store.leases.holder("flow:purchase_orders")
        assert current is not None and current[0] != holder


def test_the_lease_is_still_renewed_after_a_renewal_fails(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """A store hiccup during one renewal must not end renewing: the run would outlive its lease unnoticed."""
    real_acquire = store.leases.acquire
    renewals: list[str] = []

    def flaky(name: str, holder: str, ttl: timedelta) -> bool:
        renewals.append(name)
        if len(renewals) == 2:  # the first renewal (after the initial acquire) fails
            raise OperationalError("renew", {}, Exception("database is locked"))
        return real_acquire(name, holder, ttl)

    monkeypatch.setattr(store.leases, "acquire", flaky)
    ttl = timedelta(seconds=0.3)  # renewed every 0.1 s
    with flow_lock(store, "purchase_orders", ttl=ttl):
        deadline = time.monotonic() + 5
        while len(renewals) < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        current = store.leases.holder("flow:purchase_orders")
        assert len(renewals) >= 4, renewals
        assert current is not None and current[1] > utcnow()


def test_a_holder_whose_lease_was_taken_is_told(store: Store) -> None:
    lost = threading.Event()
    with flow_lock(store, "purchase_orders", ttl=timedelta(seconds=0.3), on_lost=lost.set):
        store.leases.release("flow:purchase_orders", store.leases.holder("flow:purchase_orders")[0])  # type: ignore[index]
        assert store.leases.acquire("flow:purchase_orders", "elsewhere:1:cafe", timedelta(hours=1))
        assert lost.wait(5)
        current = store.leases.holder("flow:purchase_orders")
        assert current is not None and current[0] == "elsewhere:1:cafe"  # the new holder keeps it


def test_no_renewal_for_a_whole_ttl_counts_as_lost(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """After a TTL without a renewal another process may take the lease at any moment: the run must not go on."""
    real_acquire = store.leases.acquire
    calls: list[str] = []

    def down_after_the_first(name: str, holder: str, ttl: timedelta) -> bool:
        calls.append(name)
        if len(calls) > 1:
            raise OperationalError("renew", {}, Exception("connection refused"))
        return real_acquire(name, holder, ttl)

    monkeypatch.setattr(store.leases, "acquire", down_after_the_first)
    lost = threading.Event()
    with flow_lock(store, "purchase_orders", ttl=timedelta(seconds=0.3), on_lost=lost.set):
        assert lost.wait(5)
        assert len(calls) >= 3  # two failed renewals are still within the TTL; the third is not


def test_one_failed_renewal_is_not_a_loss(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    real_acquire = store.leases.acquire
    calls: list[str] = []

    def one_hiccup(name: str, holder: str, ttl: timedelta) -> bool:
        calls.append(name)
        if len(calls) == 2:
            raise OperationalError("renew", {}, Exception("database is locked"))
        return real_acquire(name, holder, ttl)

    monkeypatch.setattr(store.leases, "acquire", one_hiccup)
    lost = threading.Event()
    with flow_lock(store, "purchase_orders", ttl=timedelta(seconds=0.3), on_lost=lost.set):
        deadline = time.monotonic() + 5
        while len(calls) < 6 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(calls) >= 6 and not lost.is_set()


def test_a_following_event_follows_its_parent_but_not_back() -> None:
    parent = threading.Event()
    with following(parent) as child:
        child.set()
        assert not parent.is_set()
    with following(parent, poll=0.01) as child:
        parent.set()
        assert child.wait(1)
