"""Dynamic webhooks (OAuth apps only): register, refresh before their 30-day expiry, list and delete.

Receiving and verifying deliveries is :mod:`ml_connector.jira.webhooks`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ml_connector.jira.base import JiraBase
from ml_connector.jira.models import JiraFailure, Webhook

WEBHOOK = ("burst:webhook",)
WEBHOOK_PAGE = 100


def _webhook_of(item: Mapping[str, Any]) -> Webhook:
    return Webhook(
        id=int(item["id"]),
        jql_filter=item.get("jqlFilter"),
        events=tuple(item.get("events") or ()),
        expiration=item.get("expirationDate"),
        raw=dict(item),
    )


class WebhookOps(JiraBase):
    """The app's webhook registrations on this site."""

    def register_webhooks(self, url: str, webhooks: Sequence[Mapping[str, Any]]) -> list[int | JiraFailure]:
        """Register dynamic webhooks; one entry per input: the new id, or Jira's reason for refusing it."""
        data = self._json(
            "POST", "webhook", json={"url": url, "webhooks": [dict(w) for w in webhooks]}, pace_keys=WEBHOOK
        )
        out: list[int | JiraFailure] = []
        for result in data.get("webhookRegistrationResult") or []:
            if result.get("createdWebhookId") is not None:
                out.append(int(result["createdWebhookId"]))
            else:
                out.append(JiraFailure(status=400, error_messages=tuple(str(e) for e in result.get("errors") or ())))
        return out

    def refresh_webhooks(self, ids: Sequence[int]) -> str | int | None:
        """Extend the 30-day life of ``ids``; returns Jira's new expiration (ISO string or epoch ms)."""
        data = self._json("PUT", "webhook/refresh", json={"webhookIds": [int(i) for i in ids]}, pace_keys=WEBHOOK)
        value: str | int | None = data.get("expirationDate")
        return value

    def list_webhooks(self) -> list[Webhook]:
        return [_webhook_of(item) for item in self._listing("webhook", page_size=WEBHOOK_PAGE, pace_keys=WEBHOOK)]

    def delete_webhooks(self, ids: Sequence[int]) -> None:
        self._call("DELETE", "webhook", json={"webhookIds": [int(i) for i in ids]}, pace_keys=WEBHOOK)
