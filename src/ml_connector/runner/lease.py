"""The scheduler lease: one scheduling daemon per database, visible to the next one that tries."""

from __future__ import annotations

import os
import socket
import threading
import uuid
from datetime import datetime, timedelta

import structlog

from ml_connector.store import Store

log = structlog.get_logger("ml_connector.runner")

SCHEDULER_LEASE = "scheduler"


def default_holder() -> str:
    """``host:pid:nonce``: readable for the operator, unique even when a pid is reused."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Lease:
    """A renewable, expiring row in ``leases``; whoever holds it may schedule flows."""

    def __init__(self, store: Store, *, ttl: float, name: str = SCHEDULER_LEASE, holder: str | None = None) -> None:
        self.store = store
        self.name = name
        self.ttl = timedelta(seconds=ttl)
        self.holder = holder or default_holder()
        self.held = False
        self._lock = threading.Lock()

    def acquire(self) -> bool:
        """Take or renew; also the renewal call, so a lapse to another holder is noticed here."""
        with self._lock:  # renewals from several threads of this process would race each other's update
            was_held = self.held
            held = self.store.leases.acquire(self.name, self.holder, self.ttl)
            if not held:
                current = self.current()
                held = current is not None and current[0] == self.holder
            self.held = held
        if was_held and not self.held:
            log.warning("lease.lost", lease=self.name, holder=self.holder, current=self.describe_holder())
        return self.held

    def release(self) -> None:
        if self.held:
            self.store.leases.release(self.name, self.holder)
            self.held = False

    def current(self) -> tuple[str, datetime] | None:
        return self.store.leases.holder(self.name)

    def describe_holder(self) -> str:
        current = self.current()
        if current is None:
            return "nobody (the lease is free)"
        holder, until = current
        return f"{holder} until {until.strftime('%Y-%m-%d %H:%M:%S UTC')}"
