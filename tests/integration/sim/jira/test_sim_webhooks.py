"""Webhook deliveries: HMAC for admin webhooks, JWT for app webhooks, retries, duplicates, 30-day expiry."""

from __future__ import annotations

import hashlib
import hmac
import json

import jwt
import pytest

from .helpers import CLIENT_ID, CLIENT_SECRET, Receiver, RunningSim, po_fields


def _create(jira: RunningSim, ref: str = "PO-1") -> str:
    with jira.basic() as c:
        response = c.post("/rest/api/3/issue", json={"fields": po_fields(ref)})
        assert response.status_code == 201
        return str(response.json()["key"])


def _register_dynamic(jira: RunningSim, receiver: Receiver, jql: str = "project = PROC") -> tuple[str, int]:
    access = jira.oauth_tokens()["access_token"]
    with jira.bearer(access) as c:
        result = c.post(
            "/rest/api/3/webhook",
            json={
                "url": receiver.url,
                "webhooks": [
                    {"events": ["jira:issue_created", "jira:issue_updated", "jira:issue_deleted"], "jqlFilter": jql}
                ],
            },
        )
        return access, int(result.json()["webhookRegistrationResult"][0]["createdWebhookId"])


def test_admin_webhook_is_signed_with_hmac_of_raw_body(jira: RunningSim, receiver: Receiver) -> None:
    receiver.reset()
    with jira.basic() as c:
        hook = c.post(
            "/rest/webhooks/1.0/webhook",
            json={
                "name": "connector",
                "url": receiver.url,
                "events": ["jira:issue_created", "jira:issue_updated"],
                "filters": {"issue-related-events-section": "project = PROC"},
                "secret": "s3cret",
            },
        )
        assert hook.status_code == 201
    key = _create(jira)
    _create_maint = jira.sim.seed_issues([{"project": "MAINT"}])  # seeding fires nothing
    jira.control.put(f"/_sim/issues/{key}", json={"fields": {"summary": "by a person"}, "as": "bo.chen@example.com"})
    assert jira.sim.wait_deliveries()
    assert len(receiver.received) == 2 and _create_maint
    for delivery in receiver.received:
        expected = "sha256=" + hmac.new(b"s3cret", delivery.body, hashlib.sha256).hexdigest()
        assert delivery.headers["x-hub-signature"] == expected
        assert delivery.headers["x-atlassian-webhook-identifier"]
    created, updated = (json.loads(d.body) for d in receiver.received)
    assert created["webhookEvent"] == "jira:issue_created" and created["issue"]["key"] == key
    assert updated["webhookEvent"] == "jira:issue_updated"
    assert updated["changelog"]["items"][0]["toString"] == "by a person"
    assert updated["user"]["displayName"] == "Bo Chen"
    assert len({d.headers["x-atlassian-webhook-identifier"] for d in receiver.received}) == 2


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
def test_app_webhook_carries_jwt_signed_with_client_secret(jira: RunningSim, receiver: Receiver) -> None:
    receiver.reset()
    _, wid = _register_dynamic(jira, receiver)
    jira.sim.seed_issues([{"project": "MAINT"}])
    key = _create(jira)
    with jira.basic() as c:
        c.post(f"/rest/api/3/issue/{key}/transitions", json={"transition": {"id": "11"}})
        c.put(f"/rest/api/3/issue/{key}", json={"fields": {"summary": "x"}})
        maint = c.post(
            "/rest/api/3/issue",
            json={"fields": {"project": {"key": "MAINT"}, "issuetype": {"name": "Task"}, "summary": "not matched"}},
        )
        assert maint.status_code == 201
    assert jira.sim.wait_deliveries()
    events = [json.loads(d.body)["webhookEvent"] for d in receiver.received]
    assert events == ["jira:issue_created", "jira:issue_updated", "jira:issue_updated"]
    for delivery in receiver.received:
        scheme, token = delivery.headers["authorization"].split(" ")
        claims = jwt.decode(token, CLIENT_SECRET, algorithms=["HS256"], audience=CLIENT_ID)
        assert scheme == "Bearer" and claims["qsh"] == "context-qsh"
        assert json.loads(delivery.body)["matchedWebhookIds"] == [wid]
    status_change = json.loads(receiver.received[1].body)["changelog"]["items"][0]
    assert (status_change["fieldId"], status_change["fromString"], status_change["toString"]) == (
        "status",
        "To Do",
        "In Progress",
    )


def test_retry_on_failure_keeps_identifier_and_duplicates_knob(jira: RunningSim, receiver: Receiver) -> None:
    receiver.reset(fail_first=2)
    _register_dynamic(jira, receiver)
    _create(jira)
    assert jira.sim.wait_deliveries()
    ids = [d.headers["x-atlassian-webhook-identifier"] for d in receiver.received]
    assert len(ids) == 3 and len(set(ids)) == 1
    assert [d.headers["x-atlassian-webhook-retry"] for d in receiver.received] == ["0", "1", "2"]
    statuses = [d["status"] for d in jira.control.get("/_sim/webhook-deliveries").json()["deliveries"]]
    assert statuses == [500, 500, 204]

    receiver.reset()
    jira.control.put("/_sim/faults", json={"duplicate_delivery_rate": 1.0})
    _create(jira, "PO-2")
    assert jira.sim.wait_deliveries()
    ids = [d.headers["x-atlassian-webhook-identifier"] for d in receiver.received]
    assert len(ids) == 2 and len(set(ids)) == 1


def test_dynamic_webhooks_expire_after_30_days_and_refresh_restores(jira: RunningSim, receiver: Receiver) -> None:
    receiver.reset()
    access, wid = _register_dynamic(jira, receiver)
    with jira.bearer(access) as c:
        listed = c.get("/rest/api/3/webhook").json()["values"][0]
    registered_expiry = listed["expirationDate"]
    jira.control.put("/_sim/clock", json={"offset_seconds": 29 * 86400})
    _create(jira, "PO-1")
    assert jira.sim.wait_deliveries() and len(receiver.received) == 1
    jira.control.put("/_sim/clock", json={"offset_seconds": 30 * 86400 + 60})
    access = jira.oauth_tokens()["access_token"]  # the old access token expired with the clock
    _create(jira, "PO-2")
    assert jira.sim.wait_deliveries() and len(receiver.received) == 1  # expired: nothing delivered
    with jira.bearer(access) as c:
        refreshed = c.put("/rest/api/3/webhook/refresh", json={"webhookIds": [wid, 424242]}).json()
    assert refreshed["expirationDate"] > registered_expiry + 30 * 86400 * 1000 - 120_000
    _create(jira, "PO-3")
    assert jira.sim.wait_deliveries() and len(receiver.received) == 2
    assert json.loads(receiver.received[-1].body)["issue"]["fields"]["customfield_10053"] == "PO-3"


def test_basic_auth_cannot_register_dynamic_webhooks(jira: RunningSim) -> None:
    with jira.basic() as c:
        response = c.post(
            "/rest/api/3/webhook",
            json={"url": "http://x", "webhooks": [{"events": ["jira:issue_created"], "jqlFilter": "project = PROC"}]},
        )
        assert response.status_code == 403
