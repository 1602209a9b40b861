"""One run per flow at a time, across processes: the CLI, the daemon's jobs and the dashboard share a DB lease.

Two overlapping runs of one flow could both create the same new records. The lease ``flow:<name>`` is renewed by a
small thread while the run lasts; a holder on this host whose process is gone (killed) is taken over at once, one
elsewhere when its lease expires.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import structlog

from ml_connector.errors import ConnectorError
from ml_connector.store import Store

log = structlog.get_logger("ml_connector.engine")

LEASE_TTL = timedelta(minutes=2)


class FlowBusy(ConnectorError):
    """Another process is running this flow right now."""


def _holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _gone(holder: str) -> bool:
    """True when ``holder`` is a process on this host that no longer exists."""
    host, _, rest = holder.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


@contextmanager
def try_lease(store: Store, name: str, *, ttl: timedelta = LEASE_TTL) -> Iterator[bool]:
    """Hold lease ``name`` while the block runs (renewed by a small thread); yields False, holding nothing, when
    another holder has it. Each call is its own holder, so two threads of one process exclude each other too."""
    holder = _holder()
    if not store.leases.acquire(name, holder, ttl):
        current = store.leases.holder(name)
        if current is not None and _gone(current[0]):
            store.leases.release(name, current[0])
        if not store.leases.acquire(name, holder, ttl):
            yield False
            return
    done = threading.Event()

    def renew() -> None:
        # Renewed every third of the TTL, so two missed renewals (a store outage) still leave the lease held.
        while not done.wait(ttl.total_seconds() / 3):
            _renew_once(store, name, holder, ttl)

    renewer = threading.Thread(target=renew, name=f"lease-{name}", daemon=True)
    renewer.start()
    try:
        yield True
    finally:
        done.set()
        renewer.join(timeout=5)
        store.leases.release(name, holder)


def _renew_once(store: Store, name: str, holder: str, ttl: timedelta) -> None:
    """One renewal; a failure is logged and the next tick tries again (the renewing thread must not die)."""
    try:
        if not store.leases.acquire(name, holder, ttl):
            log.error("lease.lost", lease=name, holder=holder)
    except Exception as exc:  # the store unreachable for a moment: keep renewing
        log.warning("lease.renew_failed", lease=name, error_class=type(exc).__name__)


@contextmanager
def flow_lock(store: Store, flow: str, *, ttl: timedelta = LEASE_TTL) -> Iterator[None]:
    name = f"flow:{flow}"
    with try_lease(store, name, ttl=ttl) as held:
        if not held:
            current = store.leases.holder(name)
            who = f"{current[0]} until {current[1]:%Y-%m-%d %H:%M:%S} UTC" if current else "another process"
            raise FlowBusy(f"flow {flow!r} is being run by {who}; try again when it finishes")
        yield
