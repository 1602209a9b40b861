"""Dynamic webhook upkeep against the Jira simulator (OAuth): one registration across restarts, refreshed early."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from ml_connector.jira import JiraClient, MemoryTokenStore
from ml_connector.runner import WebhookManager
from ml_connector.store import Store, utcnow

from ..jira.helpers import Sim, consent, oauth_connection

URL = "https://connector.example.com/webhooks/jira"
JQL = "project in (PROC, MAINT)"


@pytest.fixture
def sim() -> Iterator[Sim]:
    with Sim.start() as running:
        yield running


@pytest.fixture
def jira(sim: Sim) -> Iterator[JiraClient]:
    tokens = MemoryTokenStore()
    consent(sim, tokens).session.close()
    client = JiraClient.from_connection(oauth_connection(sim), token_store=tokens)
    yield client
    client.close()


class Clock:
    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return utcnow() + self.offset


def shift(sim: Sim, clock: Clock, days: float) -> None:
    """Move the simulator's clock and ours together."""
    clock.offset += timedelta(days=days)
    response = sim.control.put("/_sim/clock", json={"offset_seconds": clock.offset.total_seconds()})
    assert response.status_code < 300, response.text


def manager(jira: JiraClient, store: Store, clock: Clock) -> WebhookManager:
    return WebhookManager(lambda: jira, store, url=URL, jql_filter=JQL, refresh_before=7 * 86400, clock=clock)


def test_registration_survives_restarts_and_is_refreshed_before_expiry(
    sim: Sim, jira: JiraClient, tmp_path: Path
) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'a.sqlite'}")
    clock = Clock()
    first = manager(jira, store, clock).ensure()
    assert first.action == "registered"
    for _ in range(3):  # three daemon restarts on the same database
        again = manager(jira, store, clock).ensure()
        assert (again.webhook_id, again.action) == (first.webhook_id, "reused")
    assert [w.id for w in jira.list_webhooks()] == [first.webhook_id]
    assert [s["webhook_id"] for s in store.webhooks.all()] == [str(first.webhook_id)]

    shift(sim, clock, 20)  # 10 days left: outside the 7-day window, nothing to do
    assert manager(jira, store, clock).ensure().action == "reused"
    shift(sim, clock, 4)  # 6 days left: refresh
    refreshed = manager(jira, store, clock).ensure()
    assert (refreshed.webhook_id, refreshed.action) == (first.webhook_id, "refreshed")
    assert refreshed.expires_at - clock() > timedelta(days=29)
    shift(sim, clock, 10)  # past the original 30 days: Jira still has it, with the refreshed expiry
    [live] = jira.list_webhooks()
    assert live.id == first.webhook_id
    assert isinstance(live.expiration, int) and live.expiration / 1000 > clock().timestamp()
    store.close()


def test_lost_database_adopts_and_lost_registration_is_replaced(sim: Sim, jira: JiraClient, tmp_path: Path) -> None:
    clock = Clock()
    old = Store.open(f"sqlite:///{tmp_path / 'old.sqlite'}")
    original = manager(jira, old, clock).ensure()
    fresh = Store.open(f"sqlite:///{tmp_path / 'new.sqlite'}")  # the database was rebuilt: adopt, don't pile up
    adopted = manager(jira, fresh, clock).ensure()
    assert (adopted.webhook_id, adopted.action) == (original.webhook_id, "adopted")
    assert len(jira.list_webhooks()) == 1

    jira.delete_webhooks([original.webhook_id])  # Jira lost it (deleted by an admin, or expired)
    replaced = manager(jira, fresh, clock).ensure()
    assert replaced.action == "registered" and replaced.webhook_id != original.webhook_id
    assert [w.id for w in jira.list_webhooks()] == [replaced.webhook_id]
    assert [s["webhook_id"] for s in fresh.webhooks.all()] == [str(replaced.webhook_id)]
    old.close()
    fresh.close()
