from __future__ import annotations

import socket
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from sqlalchemy.exc import OperationalError

from ml_connector.engine import FlowBusy, flow_lock
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
