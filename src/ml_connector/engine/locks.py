"""One run per flow at a time, across processes: the CLI, the daemon's jobs and the dashboard share a DB lease.

Two overlapping runs of one flow could both create the same new records. The lease ``flow:<name>`` is renewed by a
small thread while the run lasts; a holder on this host whose process is gone (killed) is taken over at once, one
elsewhere when its lease expires.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
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
def try_lease(
    store: Store, name: str, *, ttl: timedelta = LEASE_TTL, on_lost: Callable[[], None] | None = None
) -> Iterator[bool]:
    """Hold lease ``name`` while the block runs (renewed by a small thread); yields False, holding nothing, when
    another holder has it. Each call is its own holder, so two threads of one process exclude each other too.

    ``on_lost`` is called once if the lease is lost while the block runs: another holder took it, or no renewal
    got through for a whole TTL (from then on another process may take it at any moment)."""
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
        renewed = time.monotonic()
        while not done.wait(ttl.total_seconds() / 3):
            held = _renew_once(store, name, holder, ttl)
            renewed = time.monotonic() if held else renewed
            if held is False or time.monotonic() - renewed >= ttl.total_seconds():
                log.error("lease.lost", lease=name, holder=holder, taken_over=held is False)
                if on_lost is not None:
                    on_lost()
                return

    renewer = threading.Thread(target=renew, name=f"lease-{name}", daemon=True)
    renewer.start()
    try:
        yield True
    finally:
        done.set()
        renewer.join(timeout=5)
        store.leases.release(name, holder)


def _renew_once(store: Store, name: str, holder: str, ttl: timedelta) -> bool | None:
    """One renewal: True when renewed, False when another holder has the lease, None when the store failed (logged;
    the next tick tries again: the renewing thread must not die)."""
    try:
        return store.leases.acquire(name, holder, ttl)
    except Exception as exc:  # the store unreachable for a moment: keep renewing
        log.warning("lease.renew_failed", lease=name, error_class=type(exc).__name__)
        return None


@contextmanager
def flow_lock(
    store: Store, flow: str, *, ttl: timedelta = LEASE_TTL, on_lost: Callable[[], None] | None = None
) -> Iterator[None]:
    """Hold ``flow:<flow>`` while the block runs, or raise ``FlowBusy``. ``on_lost`` as in ``try_lease``: the run
    must stop, since another run of the flow may start once the lease is gone."""
    name = f"flow:{flow}"
    with try_lease(store, name, ttl=ttl, on_lost=on_lost) as held:
        if not held:
            current = store.leases.holder(name)
            who = f"{current[0]} until {current[1]:%Y-%m-%d %H:%M:%S} UTC" if current else "another process"
            raise FlowBusy(f"flow {flow!r} is being run by {who}; try again when it finishes")
        yield


@contextmanager
def following(parent: threading.Event, *, poll: float = 0.1) -> Iterator[threading.Event]:
    """An event of the block's own, set as soon as ``parent`` is (within ``poll`` s). The block may also set it for a
    reason of its own (a lost lease) without setting ``parent``, which other runs share."""
    child = threading.Event()
    done = threading.Event()

    def follow() -> None:
        while not done.is_set() and not child.is_set():
            if parent.wait(poll):
                child.set()

    threading.Thread(target=follow, name="stop-follower", daemon=True).start()
    try:
        yield child
    finally:
        done.set()  # not joined: the follower ends within ``poll``, and a short run must not wait for it
