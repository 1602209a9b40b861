"""The dashboard's view of the scheduler: a small protocol the daemon implements, and a store-backed fallback."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol, runtime_checkable

from ml_connector.store import Store, utcnow


@runtime_checkable
class SchedulerControl(Protocol):
    """What the dashboard asks of a live scheduler (``ml-connector run`` passes one to ``create_app``)."""

    def next_run(self, flow: str) -> datetime | None:
        """When the flow runs next (UTC); None when unscheduled or paused."""

    def sync_now(self, flow: str) -> None:
        """Run the flow as soon as possible (coalesced with a run already in flight)."""

    def pause(self, flow: str) -> None:
        """Stop scheduling the flow; a run in flight finishes."""

    def resume(self, flow: str) -> None:
        """Schedule the flow again."""

    def is_paused(self, flow: str) -> bool:
        """Whether the flow is paused."""


class StoreControl:
    """Without a live scheduler, requests are recorded in ``flow_controls``; the daemon polls and honours them."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def next_run(self, flow: str) -> datetime | None:
        return None

    def sync_now(self, flow: str) -> None:
        self.store.controls.set(flow, sync_requested_at=utcnow())

    def pause(self, flow: str) -> None:
        self.store.controls.set(flow, paused=True)

    def resume(self, flow: str) -> None:
        self.store.controls.set(flow, paused=False)

    def is_paused(self, flow: str) -> bool:
        return bool(self.store.controls.get(flow).get("paused"))
