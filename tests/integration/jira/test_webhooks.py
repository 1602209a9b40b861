"""Dynamic webhooks against the simulator: register/list/refresh/delete, JWT and signature checks, dedupe, expiry."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ml_connector.jira import (
    DraftIssue,
    JiraClient,
    WebhookVerificationError,
    delivery_identifier,
    sign_body,
    verify_jwt,
    verify_signature,
)
from ml_connector.serve import serve_in_thread

from .helpers import CLIENT_SECRET, Sim


class Receiver:
    def __init__(self) -> None:
        self.deliveries: list[tuple[dict[str, str], bytes]] = []
        self.lock = threading.Lock()

    async def hook(self, request: Request) -> Response:
        body = await request.body()
        with self.lock:
            self.deliveries.append((dict(request.headers), body))
        return Response(status_code=204)

    def wait_for(self, count: int, timeout: float = 10) -> list[tuple[dict[str, str], bytes]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.deliveries) >= count:
                    return list(self.deliveries)
            time.sleep(0.02)
        with self.lock:
            return list(self.deliveries)


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    rec = Receiver()
    app = Starlette(routes=[Route("/jira/webhook", rec.hook, methods=["POST"])])
    handle = serve_in_thread(app)
    yield rec, f"{handle.url}/jira/webhook"
    handle.stop()


def _move(sim: Sim, key: str, status: str) -> None:
    sim.control.post(f"/_sim/issues/{key}/transition", json={"status": status, "as": "ana.alvarez@example.com"})


def _deliveries_settled(sim: Sim) -> list[dict[str, Any]]:
    """Every delivery the simulator queued has been attempted (its worker is idle), then the delivery log."""
    jira = sim.app.state.sim
    if jira.worker is not None:
        assert jira.wait_deliveries(10), "webhook deliveries still running after 10 s"
    data = sim.control.get("/_sim/webhook-deliveries").json()
    return list(data["deliveries"] if isinstance(data, dict) else data)


def test_register_list_refresh_delete_and_deliveries(
    oauth_client: JiraClient, sim: Sim, receiver: tuple[Receiver, str]
) -> None:
    rec, url = receiver
    results = oauth_client.register_webhooks(
        url,
        [
            {"events": ["jira:issue_updated"], "jqlFilter": "project = PROC", "fieldIdsFilter": ["status"]},
            {"events": ["jira:issue_updated"], "jqlFilter": "watchCount = 1"},  # unsupported clause: refused
        ],
    )
    assert isinstance(results[0], int)
    assert not isinstance(results[1], int) and results[1].error_messages
    hook_id = results[0]
    listed = oauth_client.list_webhooks()
    assert [w.id for w in listed] == [hook_id] and listed[0].jql_filter == "project = PROC"

    issue = oauth_client.create_issue(
        DraftIssue(fields={"project": {"key": "PROC"}, "issuetype": {"name": "Task"}, "summary": "hooked"})
    )
    _move(sim, issue.key, "In Progress")
    (headers, body), *_ = rec.wait_for(1)
    claims = verify_jwt(headers.get("authorization"), CLIENT_SECRET)
    assert claims["exp"] > time.time()
    payload = json.loads(body)
    assert payload["webhookEvent"] == "jira:issue_updated" and payload["issue"]["id"] == issue.id
    assert hook_id in payload.get("matchedWebhookIds", [hook_id])
    with pytest.raises(WebhookVerificationError):
        verify_jwt(headers.get("authorization"), "not-the-client-secret-but-long-enough")
    assert delivery_identifier(headers)  # the inbox's dedupe key

    # Expiry: 31 days later the webhook no longer delivers; a refresh restores delivery.
    sim.clock(31 * 86400)
    before = len(rec.deliveries)
    _move(sim, issue.key, "Awaiting Delivery")
    _deliveries_settled(sim)
    assert len(rec.deliveries) == before
    expiration = oauth_client.refresh_webhooks([hook_id])
    assert expiration is not None
    _move(sim, issue.key, "Done")
    assert len(rec.wait_for(before + 1)) == before + 1

    oauth_client.delete_webhooks([hook_id])
    assert oauth_client.list_webhooks() == []


def test_duplicate_deliveries_are_recognised(
    oauth_client: JiraClient, sim: Sim, receiver: tuple[Receiver, str]
) -> None:
    rec, url = receiver
    (hook_id,) = oauth_client.register_webhooks(
        url, [{"events": ["jira:issue_updated"], "jqlFilter": "project = MAINT"}]
    )
    assert isinstance(hook_id, int)
    sim.faults(duplicate_delivery_rate=1.0)
    issue = oauth_client.create_issue(
        DraftIssue(fields={"project": {"key": "MAINT"}, "issuetype": {"name": "Task"}, "summary": "dup"})
    )
    _move(sim, issue.key, "In Progress")
    deliveries = rec.wait_for(2)
    assert len(deliveries) >= 2
    # A redelivery carries the same identifier: the webhook inbox stores it once (tests/unit/web/test_webhooks.py).
    first, second = (delivery_identifier(h) for h, _ in deliveries[:2])
    assert first is not None and first == second


def test_admin_webhook_signature(sim: Sim, receiver: tuple[Receiver, str]) -> None:
    """Admin webhooks are HMAC-signed; forged, wrongly re-signed and altered bodies all fail."""
    rec, url = receiver
    from ml_connector.sim.jira import JiraSimOptions, create_app

    app = create_app(JiraSimOptions(admin_webhook_url=url))
    handle = serve_in_thread(app)
    try:
        import httpx2

        with httpx2.Client(base_url=handle.url, timeout=10) as control:
            created = control.post(
                "/rest/api/3/issue",
                auth=("connector@example.com", "sim-api-token"),
                json={"fields": {"project": {"key": "PROC"}, "issuetype": {"name": "Task"}, "summary": "admin"}},
            )
            created.raise_for_status()
            control.post(
                f"/_sim/issues/{created.json()['key']}/transition", json={"status": "In Progress"}
            ).raise_for_status()
        deliveries = rec.wait_for(1)
    finally:
        handle.stop()
    assert deliveries
    headers, body = deliveries[-1]
    signature = headers.get("x-hub-signature")
    verify_signature(body, signature, "sim-webhook-secret")
    forged = body.replace(b"In Progress", b"Done") if b"In Progress" in body else body + b" "
    for bad_body, bad_sig in (
        (forged, signature),  # altered body
        (body, sign_body(body, "wrong-secret")),  # re-signed with the wrong secret
        (forged, sign_body(forged, "attacker-secret")),  # forged body, forged signature
        (body, None),
    ):
        with pytest.raises(WebhookVerificationError):
            verify_signature(bad_body, bad_sig, "sim-webhook-secret")
