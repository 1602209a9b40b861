from __future__ import annotations

import socket
import subprocess
import sys
from datetime import timedelta

import pytest

from ml_connector.engine import FlowBusy, flow_lock
from ml_connector.store import Store


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
