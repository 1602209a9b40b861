"""The chaos matrix's webhook row: every fault kind on each webhook call the daemon's upkeep makes (list, register,
refresh, delete), against the Jira simulator over loopback with OAuth.

With the fault on, the periodic job (``WebhookManager.maintain``) must not raise (the scheduler keeps running) and
must not leave two registrations behind; once the fault is cleared, the next tick ends with exactly one live
registration for the connector's URL, stored with its id, and not due for refresh. "drop after" and "truncated"
cover the ambiguous case: Jira registered (or refreshed, or deleted) but the connector never heard back.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ml_connector.config.connections import HttpSettings
from ml_connector.jira import JiraClient, MemoryTokenStore
from ml_connector.runner import WebhookManager
from ml_connector.store import Store, utcnow

from ..jira.helpers import Sim, consent, oauth_connection

URL = "https://connector.example.com/webhooks/jira"
JQL = "project in (PROC, MAINT)"
EVENTS = ("jira:issue_updated",)
REFRESH_BEFORE_DAYS = 7
# Short timeouts and retries so a persistent fault costs a second or two, and "hang" outlasts the read timeout.
SETTINGS = HttpSettings(read_timeout=1.0, backoff_initial=0.01, backoff_max=0.05, max_attempts=3, max_retry_seconds=3)

CALLS = {  # the call under fault and its matching rule (path and method)
    "list": {"path_contains": "/rest/api/3/webhook", "method": "GET"},
    "register": {"path_contains": "/rest/api/3/webhook", "method": "POST"},
    "refresh": {"path_contains": "/rest/api/3/webhook/refresh", "method": "PUT"},
    "delete": {"path_contains": "/rest/api/3/webhook", "method": "DELETE"},
}
FAULTS: dict[str, dict[str, Any]] = {
    "500": {"status": 500},
    "503": {"status": 503},
    "400": {"status": 400},
    "403": {"status": 403},
    "404": {"status": 404},
    "429 storm": {"status": 429, "count": 5, "retry_after": 0},
    "drop before": {"kind": "drop_before"},
    "drop after": {"kind": "drop_after"},
    "HTML 2xx": {"kind": "html"},
    "truncated": {"kind": "truncated"},
    "hang": {"kind": "hang", "hang_seconds": 2.0},
    "token revoked": {"status": 401, "count": 1},  # the access token is revoked: refresh once, go on
}


class Clock:
    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return utcnow() + self.offset


@dataclass
class Upkeep:
    sim: Sim
    jira: JiraClient
    store: Store
    clock: Clock

    def manager(self) -> WebhookManager:
        return WebhookManager(
            lambda: self.jira,
            self.store,
            url=URL,
            jql_filter=JQL,
            events=EVENTS,
            refresh_before=REFRESH_BEFORE_DAYS * 86400,
            clock=self.clock,
        )

    def mine(self) -> list[int]:
        return sorted(w.id for w in self.jira.list_webhooks() if w.jql_filter == JQL)

    def age(self, days: float) -> None:
        """Move the simulator's clock and ours together (a registration nears its 30-day expiry)."""
        self.clock.offset += timedelta(days=days)
        self.sim.clock(self.clock.offset.total_seconds())


@pytest.fixture
def upkeep(tmp_path: Path) -> Iterator[Upkeep]:
    with Sim.start() as sim:
        tokens = MemoryTokenStore()
        consent(sim, tokens).session.close()
        jira = JiraClient.from_connection(oauth_connection(sim, SETTINGS), token_store=tokens)
        store = Store.open(f"sqlite:///{tmp_path / 'state.sqlite'}")
        try:
            yield Upkeep(sim, jira, store, Clock())
        finally:
            store.close()
            jira.close()


def _prepare(u: Upkeep, call: str) -> None:
    """The starting state in which the next tick makes ``call``."""
    if call in ("refresh", "delete"):
        u.manager().ensure()  # one registration
    if call == "refresh":
        u.age(30 - REFRESH_BEFORE_DAYS + 1)  # inside the refresh window
    if call == "delete":  # a second matching registration (another process): the tick deletes the duplicate
        u.jira.register_webhooks(URL, [{"events": list(EVENTS), "jqlFilter": JQL}])


@pytest.mark.parametrize("fault", list(FAULTS))
@pytest.mark.parametrize("call", list(CALLS))
def test_webhook_upkeep_survives_the_fault_and_ends_with_one_registration(
    upkeep: Upkeep, call: str, fault: str
) -> None:
    u = upkeep
    _prepare(u, call)
    rule = {"count": 100_000, **CALLS[call], **FAULTS[fault]}
    u.sim.faults(fail_next=[rule])
    u.manager().maintain()  # never raises: a failed tick is retried on the next one
    left = u.sim.faults()["fail_next"]
    assert not left or left[0]["count"] < rule["count"], "the fault was never met"
    u.sim.faults(fail_next=[])
    assert len(u.mine()) <= 2  # at worst the duplicate a lost answer left, never more

    status = u.manager().ensure()
    live = u.mine()
    assert live == [status.webhook_id], (call, fault, live)
    stored = [int(s["webhook_id"]) for s in u.store.webhooks.all()]
    assert stored == [status.webhook_id]
    assert status.expires_at - u.clock() > timedelta(days=REFRESH_BEFORE_DAYS)
