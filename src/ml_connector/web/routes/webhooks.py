"""The Jira webhook receiver: throttle, verify (before parsing), store in the inbox, wake the inbox thread.

Jira gets its answer as soon as the delivery is stored; the store's unique delivery id makes a redelivery a no-op.
The router is mounted only when ``webhooks.enabled`` (otherwise 404: nothing to probe).
"""

from __future__ import annotations

import json

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from ml_connector.config.connections import JiraConnection, JiraOAuth
from ml_connector.config.models import WEBHOOK_PATH
from ml_connector.jira.webhooks import (
    SIGNATURE_HEADER,
    WebhookVerificationError,
    delivery_identifier,
    verify_jwt,
    verify_signature,
)
from ml_connector.web.context import Web, WebContext, client_host
from ml_connector.web.guard import retry_after

log = structlog.get_logger("ml_connector.web")

router = APIRouter()


@router.post(WEBHOOK_PATH)
async def jira_webhook(request: Request, web: Web) -> JSONResponse:
    source = client_host(request) or "unknown"
    wait = web.webhook_buckets.take(source)
    if wait > 0:
        web.metrics.webhooks.labels("throttled").inc()
        return JSONResponse(
            {"error": "too many deliveries"}, status_code=429, headers={"Retry-After": retry_after(wait)}
        )
    body = await request.body()  # bounded by BoundedBodies: size and read timeout
    try:
        verify_delivery(web.config.jira, request, body)  # before the body is parsed at all
    except WebhookVerificationError as exc:
        web.metrics.webhooks.labels("rejected").inc()
        log.warning("web.webhook_rejected", reason=exc.message, client=source)
        return JSONResponse({"error": "delivery not verified"}, status_code=401)
    return await _accept(web, request, body)


def verify_delivery(jira: JiraConnection, request: Request, body: bytes) -> None:
    """Raise ``WebhookVerificationError`` unless the delivery carries a valid JWT (OAuth) or HMAC signature."""
    authorization = request.headers.get("authorization")
    signature = request.headers.get(SIGNATURE_HEADER)
    if isinstance(jira.auth, JiraOAuth) and (authorization or not signature):
        verify_jwt(authorization, jira.auth.client_secret.get_secret_value())
        return
    secret = jira.webhook_secret.get_secret_value() if jira.webhook_secret else ""
    verify_signature(body, signature, secret)


async def _accept(web: WebContext, request: Request, body: bytes) -> JSONResponse:
    try:
        payload = json.loads(body)
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        web.metrics.webhooks.labels("invalid").inc()
        return JSONResponse({"error": "body is not a JSON object"}, status_code=400)
    identifier = delivery_identifier(request.headers)
    if identifier is None:
        web.metrics.webhooks.labels("invalid").inc()
        return JSONResponse({"error": "missing X-Atlassian-Webhook-Identifier"}, status_code=400)
    event = str(payload.get("webhookEvent") or "unknown")[:60]
    issue = payload.get("issue")
    issue_id = str(issue["id"])[:40] if isinstance(issue, dict) and issue.get("id") is not None else None
    stored = await run_in_threadpool(web.store.inbox.add, identifier[:200], event, issue_id, payload)
    if not stored:
        web.metrics.webhooks.labels("duplicate").inc()
        return JSONResponse({"status": "duplicate"}, status_code=200)
    web.metrics.webhooks.labels("accepted").inc()
    web.work.wake_inbox()
    return JSONResponse({"status": "accepted"}, status_code=202)
