"""Webhooks: dynamic (OAuth app) and admin registrations, matching events to them, and queueing signed deliveries."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import secrets
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import jwt

from ml_connector.sim.jira.common import ApiError, Principal, offset_page
from ml_connector.sim.jira.delivery import Delivery, DeliveryWorker
from ml_connector.sim.jira.jql import Compiled, JqlError, compile_query, webhook_filter_error
from ml_connector.sim.jira.model import Issue

if TYPE_CHECKING:
    from ml_connector.sim.jira.core import JiraSim

Signer = Callable[[int], dict[str, str]]  # attempt number -> signature headers
MAX_DELIVERIES = 10_000
_EVENTS = {
    "jira:issue_created",
    "jira:issue_updated",
    "jira:issue_deleted",
    "comment_created",
    "comment_updated",
    "comment_deleted",
    "issue_property_set",
    "issue_property_deleted",
}
_APPS_ONLY = "Only Connect and OAuth 2.0 apps can use this operation."


@dataclass
class DynamicWebhook:
    id: int
    url: str
    events: list[str]
    jql: str
    compiled: Compiled
    field_ids: list[str] | None
    expires: datetime
    client_id: str
    account_id: str

    def wants(self, event: str, issue: Issue, items: list[dict[str, Any]] | None, now: datetime) -> bool:
        if event not in self.events or self.expires <= now or not self.compiled.pred(issue):
            return False
        if event != "jira:issue_updated" or self.field_ids is None:
            return True
        return any(it["fieldId"] in self.field_ids for it in items or [])


@dataclass
class AdminWebhook:
    id: int
    name: str
    url: str
    events: list[str]
    jql: str
    compiled: Compiled | None
    secret: str | None
    exclude_body: bool
    enabled: bool = True


class Webhooks:
    """Registrations and deliveries of one site; the delivery worker sends on its own thread."""

    def __init__(self, sim: JiraSim) -> None:
        self.sim = sim
        self.dynamic: dict[int, DynamicWebhook] = {}
        self.admin: dict[int, AdminWebhook] = {}
        self.webhook_seq = itertools.count(10000)
        self.admin_seq = itertools.count(1)
        self.deliveries: list[dict[str, Any]] = []
        opts = sim.options
        self.worker = DeliveryWorker(
            retry_delays=opts.webhook_retry_delays, timeout=opts.webhook_timeout_seconds, record=self._record_delivery
        )

    # ------------------------------------------------------------------------------------------------ dynamic
    def _mine(self, principal: Principal) -> list[DynamicWebhook]:
        if principal.client_id is None:
            raise ApiError(403, [_APPS_ONLY])
        return [w for w in self.dynamic.values() if w.client_id == principal.client_id]

    def register(self, payload: Any, principal: Principal) -> dict[str, Any]:
        with self.sim.lock:
            mine = self._mine(principal)
            if not isinstance(payload, dict) or not isinstance(payload.get("url"), str):
                raise ApiError(400, ["'url' is required."])
            webhooks = payload.get("webhooks")
            if not isinstance(webhooks, list) or not webhooks:
                raise ApiError(400, ["'webhooks' must be a non-empty list."])
            url = payload["url"]
            if any(w.url != url for w in mine):
                raise ApiError(400, ["Only a single URL per app is allowed to be registered."])
            results: list[dict[str, Any]] = []
            count = len(mine)
            for spec in webhooks:
                errors = self._spec_errors(spec)
                if not errors and count >= self.sim.options.max_webhooks_per_app:
                    errors = ["Maximum number of webhooks per app reached."]
                if errors:
                    results.append({"errors": errors})
                    continue
                results.append({"createdWebhookId": self._add_dynamic(url, spec, principal)})
                count += 1
            return {"webhookRegistrationResult": results}

    def _add_dynamic(self, url: str, spec: dict[str, Any], principal: Principal) -> int:
        assert principal.client_id is not None
        wid = next(self.webhook_seq)
        self.dynamic[wid] = DynamicWebhook(
            id=wid,
            url=url,
            events=list(spec["events"]),
            jql=spec["jqlFilter"],
            compiled=compile_query(spec["jqlFilter"], self.sim.jql_env(principal.account_id)),
            field_ids=spec.get("fieldIdsFilter"),
            expires=self.sim.now() + timedelta(days=self.sim.options.webhook_ttl_days),
            client_id=principal.client_id,
            account_id=principal.account_id,
        )
        return wid

    def _spec_errors(self, spec: Any) -> list[str]:
        if not isinstance(spec, dict):
            return ["Webhook details must be an object."]
        events = spec.get("events")
        if not isinstance(events, list) or not events or not set(events) <= _EVENTS:
            return ["Webhook events are missing or not supported."]
        jql = spec.get("jqlFilter")
        if not isinstance(jql, str) or not jql.strip():
            return ["The jqlFilter is required."]
        problem = webhook_filter_error(jql)
        if problem is None:
            try:
                compile_query(jql, self.sim.jql_env(self.sim.me.account_id))
            except JqlError as exc:
                problem = str(exc)
        return [problem] if problem else []

    def listing(self, principal: Principal, start_at: int, max_results: int) -> dict[str, Any]:
        with self.sim.lock:
            mine = sorted(self._mine(principal), key=lambda w: w.id)
            return offset_page(mine, start_at, max_results, _dynamic_json)

    def _owned(self, ids: Any, principal: Principal) -> list[DynamicWebhook]:
        """The hooks among ``ids`` that belong to the caller's app (unknown and foreign ids are ignored)."""
        self._mine(principal)
        if not isinstance(ids, list):
            raise ApiError(400, ["'webhookIds' must be a list."])
        hooks = [self.dynamic.get(wid) if isinstance(wid, int) else None for wid in ids]
        return [h for h in hooks if h is not None and h.client_id == principal.client_id]

    def delete(self, ids: Any, principal: Principal) -> None:
        with self.sim.lock:
            for hook in self._owned(ids, principal):
                self.dynamic.pop(hook.id, None)

    def refresh(self, ids: Any, principal: Principal) -> dict[str, Any]:
        with self.sim.lock:
            owned = self._owned(ids, principal)
            expires = self.sim.now() + timedelta(days=self.sim.options.webhook_ttl_days)
            for hook in owned:
                hook.expires = expires
            return {"expirationDate": int(expires.timestamp() * 1000)}

    # ------------------------------------------------------------------------------------------------ admin
    def register_admin(self, payload: Any) -> AdminWebhook:
        with self.sim.lock:
            if not isinstance(payload, dict) or not isinstance(payload.get("url"), str):
                raise ApiError(400, ["'url' is required."])
            events = payload.get("events") or []
            filters = payload.get("filters") or {}
            jql = str(filters.get("issue-related-events-section") or payload.get("jqlFilter") or "")
            compiled = None
            if jql:
                try:
                    compiled = compile_query(jql, self.sim.jql_env(self.sim.me.account_id))
                except JqlError as exc:
                    raise ApiError(400, [str(exc)]) from exc
            hook = AdminWebhook(
                id=next(self.admin_seq),
                name=str(payload.get("name") or "webhook"),
                url=payload["url"],
                events=list(events),
                jql=jql,
                compiled=compiled,
                secret=payload.get("secret") or None,
                exclude_body=bool(payload.get("excludeBody", False)),
                enabled=bool(payload.get("enabled", True)),
            )
            self.admin[hook.id] = hook
            return hook

    def admin_json(self, hook: AdminWebhook) -> dict[str, Any]:
        return {
            "self": f"{self.sim.base_url}/rest/webhooks/1.0/webhook/{hook.id}",
            "name": hook.name,
            "url": hook.url,
            "events": hook.events,
            "filters": {"issue-related-events-section": hook.jql},
            "excludeBody": hook.exclude_body,
            "enabled": hook.enabled,
        }

    # ------------------------------------------------------------------------------------------------ delivery
    def emit(self, event: str, issue: Issue, items: list[dict[str, Any]] | None, actor: str) -> None:
        """Queue deliveries for every matching, unexpired webhook (called with the lock held)."""
        now = self.sim.now()
        dynamic = [w for w in self.dynamic.values() if w.wants(event, issue, items, now)]
        admin = [
            h
            for h in self.admin.values()
            if h.enabled and event in h.events and (h.compiled is None or h.compiled.pred(issue))
        ]
        if not dynamic and not admin:
            return
        payload = self._payload(event, issue, items, actor, now)
        by_url: dict[str, list[DynamicWebhook]] = {}
        for w in dynamic:
            by_url.setdefault(w.url, []).append(w)
        for url, hooks in by_url.items():
            body = json.dumps({**payload, "matchedWebhookIds": [w.id for w in hooks]}).encode()
            self._queue(url, body, event, [w.id for w in hooks], "dynamic", self._jwt_signer(hooks[0]))
        for hook in admin:
            body = json.dumps(
                {"timestamp": payload["timestamp"], "webhookEvent": event} if hook.exclude_body else payload
            ).encode()
            self._queue(hook.url, body, event, [hook.id], "admin", _hmac_signer(hook.secret, body))

    def _payload(
        self, event: str, issue: Issue, items: list[dict[str, Any]] | None, actor: str, now: datetime
    ) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "timestamp": int(now.timestamp() * 1000),
            "webhookEvent": event,
            "issue_event_type_name": {
                "jira:issue_created": "issue_created",
                "jira:issue_deleted": "issue_deleted",
            }.get(event, "issue_generic"),
            "user": self.sim.render.user_json(actor),
            "issue": self.sim.render.issue_json(issue),
        }
        if items is not None:
            payload["changelog"] = {"id": str(next(self.sim.changelog_seq)), "items": items}
        return payload

    def _jwt_signer(self, hook: DynamicWebhook) -> Signer:
        secret = self.sim.options.oauth_client_secret
        issuer = f"jira:{self.sim.options.cloud_id}"
        clock = self.sim.now

        def headers(attempt: int) -> dict[str, str]:
            iat = int(clock().timestamp())
            claims = {
                "iss": issuer,
                "aud": hook.client_id,
                "sub": hook.account_id,
                "iat": iat,
                "exp": iat + 300,
                "qsh": "context-qsh",
            }
            with warnings.catch_warnings():  # the contract's default secret is short; that is the operator's choice
                warnings.simplefilter("ignore")
                token = jwt.encode(claims, secret, algorithm="HS256")
            return {"Authorization": "Bearer " + token}

        return headers

    def _queue(self, url: str, body: bytes, event: str, ids: list[int], kind: str, signer: Signer) -> None:
        identifier = secrets.token_hex(16)

        def headers_for(attempt: int) -> dict[str, str]:
            return {
                "X-Atlassian-Webhook-Identifier": identifier,
                "X-Atlassian-Webhook-Retry": str(attempt),
                "X-Atlassian-Webhook-Flow": "Primary",
                **signer(attempt),
            }

        copies = 2 if self.sim.rng.random() < self.sim.faults.duplicate_delivery_rate else 1
        for n in range(copies):
            self.worker.submit(Delivery(url, body, identifier, event, ids, kind, headers_for, duplicate=n > 0))

    def _record_delivery(self, entry: dict[str, Any]) -> None:
        with self.sim.lock:
            self.deliveries.append(entry)
            if len(self.deliveries) > MAX_DELIVERIES:
                del self.deliveries[:1000]

    def wait(self, timeout: float = 10.0) -> bool:
        """Tests: block until the delivery worker is idle (all attempts and retries done)."""
        return self.worker.wait_idle(timeout)


def _dynamic_json(w: DynamicWebhook) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": w.id,
        "url": w.url,
        "jqlFilter": w.jql,
        "events": w.events,
        "expirationDate": int(w.expires.timestamp() * 1000),
    }
    if w.field_ids is not None:
        entry["fieldIdsFilter"] = w.field_ids
    return entry


def _hmac_signer(secret: str | None, body: bytes) -> Signer:
    def headers(attempt: int) -> dict[str, str]:
        if not secret:
            return {}
        digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        return {"X-Hub-Signature": f"sha256={digest}"}

    return headers
