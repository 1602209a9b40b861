"""Jira dynamic webhook upkeep (OAuth apps): one broad registration, reused across restarts, refreshed early.

Jira keeps a dynamic webhook for 30 days unless refreshed (``PUT /webhook/refresh``). The connector registers one
webhook covering every project its flows write to, records it in ``webhook_subscriptions``, and on each check:
reuses it if Jira still lists it, refreshes it when ``expires_at - now < refresh_before``, and registers again only
when Jira lost it. Identical registrations left over from a lost database are adopted, extras deleted, so
registrations never pile up.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from ml_connector.config.models import ConnectorConfig, webhook_path
from ml_connector.errors import ConfigError, ConnectorError
from ml_connector.jira import jql
from ml_connector.jira.client import JiraClient
from ml_connector.store import Store, utcnow

log = structlog.get_logger("ml_connector.runner")

EVENTS = ("jira:issue_updated", "jira:issue_deleted")
JIRA_TTL = timedelta(days=30)
REFRESH_BEFORE = 7 * 86400.0  # refresh a week before Jira's 30-day expiry: a daemon down for days still catches it


def parse_expiration(value: Any, *, default: datetime) -> datetime:
    """Jira answers epoch milliseconds (list) or an ISO string (refresh); anything else: ``default``."""
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(float(value) / 1000.0, UTC)
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit():
            return datetime.fromtimestamp(int(text) / 1000.0, UTC)
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return default
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC)
    return default


def webhook_projects(config: ConnectorConfig) -> list[str]:
    """Every Jira project the enabled flows create issues in (defaults and mapped values)."""
    keys: set[str] = set()
    for flow in config.flows:
        if not flow.enabled or not flow.writeback.enabled:
            continue
        project = flow.mapping.project
        if project.default:
            keys.add(project.default)
        keys.update(project.map.values())
    return sorted(keys)


def webhook_jql(config: ConnectorConfig) -> str:
    projects = webhook_projects(config)
    if not projects:
        raise ConfigError("no enabled flow with write-back names a Jira project; nothing to subscribe to")
    return jql.in_("project", projects)


@dataclass
class WebhookStatus:
    webhook_id: int
    action: str  # registered | reused | refreshed | adopted
    expires_at: datetime


@dataclass
class WebhookManager:
    """Keeps exactly one live registration for ``url``; call :meth:`ensure` at start and then periodically."""

    jira: Callable[[], JiraClient]
    store: Store
    _: KW_ONLY
    url: str
    jql_filter: str
    refresh_before: float = REFRESH_BEFORE  # seconds before expiry at which the registration is refreshed
    events: tuple[str, ...] = EVENTS
    clock: Callable[[], datetime] = utcnow

    @classmethod
    def for_config(
        cls, config: ConnectorConfig, jira: Callable[[], JiraClient], store: Store, **kwargs: Any
    ) -> WebhookManager:
        if not config.web.public_url:
            raise ConfigError(
                "webhooks are enabled but web.public_url is not set; Jira needs a URL it can reach", path="web"
            )
        url = config.web.public_url.rstrip("/") + webhook_path(config.name)
        return cls(
            jira,
            store,
            url=url,
            jql_filter=webhook_jql(config),
            **kwargs,
        )

    def _matches(self, events: Any, jql_filter: Any) -> bool:
        return set(events or ()) == set(self.events) and str(jql_filter or "") == self.jql_filter

    def ensure(self) -> WebhookStatus:
        """Reuse, refresh, adopt or register; one registration at the end, whatever the starting state."""
        jira = self.jira()
        now = self.clock()
        live = {w.id: w for w in jira.list_webhooks()}
        stored = self.store.webhooks.all()
        mine = [s for s in stored if s["url"] == self.url and self._matches(s["events"], s["jql"])]
        # Rows Jira no longer has, or for an old URL/filter, are stale: forget them (and delete old-filter hooks).
        stale = [s for s in stored if s not in mine or int(s["webhook_id"]) not in live]
        outdated = [int(s["webhook_id"]) for s in stale if s not in mine and int(s["webhook_id"]) in live]
        if outdated:
            jira.delete_webhooks(outdated)
            log.info("webhook.deleted", ids=outdated, reason="url or filter changed")
        self.store.webhooks.delete(str(s["webhook_id"]) for s in stale)
        keep = [s for s in mine if int(s["webhook_id"]) in live]
        action = "reused"
        if keep:
            chosen = int(keep[0]["webhook_id"])
            expires = _aware(keep[0]["expires_at"])
        else:
            adoptable = [w for w in live.values() if self._matches(w.events, w.jql_filter)]
            if adoptable:
                chosen, action = adoptable[0].id, "adopted"
                expires = parse_expiration(adoptable[0].expiration, default=now)
            else:
                chosen, action = self._register(jira), "registered"
                expires = now + JIRA_TTL
            self.store.webhooks.save(
                str(chosen), url=self.url, events=self.events, jql=self.jql_filter, expires_at=expires
            )
        duplicates = [w.id for w in live.values() if w.id != chosen and self._matches(w.events, w.jql_filter)] + [
            int(s["webhook_id"]) for s in keep[1:]
        ]
        if duplicates:
            jira.delete_webhooks(sorted(set(duplicates)))
            self.store.webhooks.delete(str(i) for i in duplicates)
            log.info("webhook.deleted", ids=sorted(set(duplicates)), reason="duplicate registration")
        live_expiry = parse_expiration(live[chosen].expiration, default=expires) if chosen in live else expires
        expires = min(expires, live_expiry)
        if expires - now < timedelta(seconds=self.refresh_before):
            expires = parse_expiration(jira.refresh_webhooks([chosen]), default=now + JIRA_TTL)
            self.store.webhooks.save(
                str(chosen), url=self.url, events=self.events, jql=self.jql_filter, expires_at=expires
            )
            action = "refreshed" if action in {"reused", "adopted"} else action
        log.info("webhook.ensured", webhook_id=chosen, action=action, expires_at=expires.isoformat())
        return WebhookStatus(chosen, action, expires)

    def _register(self, jira: JiraClient) -> int:
        results = jira.register_webhooks(self.url, [{"events": list(self.events), "jqlFilter": self.jql_filter}])
        if not results or not isinstance(results[0], int):
            reason = "; ".join(getattr(results[0], "error_messages", ())) if results else "no result"
            raise ConnectorError(f"Jira refused the webhook registration: {reason}", system="jira")
        return results[0]

    def maintain(self) -> None:
        """Periodic job body: never raises (a failed refresh is retried on the next tick, well before expiry)."""
        try:
            self.ensure()
        except ConnectorError as exc:
            log.error("webhook.maintain_failed", error_class=type(exc).__name__, error=str(exc))
        except Exception:  # a bug here must not stop the scheduler
            log.exception("webhook.maintain_crashed")


def delete_registrations(jira: JiraClient, store: Store) -> list[int]:
    """Delete at Jira every webhook the store lists as this connection's, then forget them; the ids deleted.

    Dynamic webhooks belong to the OAuth grant: call this before the grant is forgotten, or Jira goes on sending
    their events until they expire (30 days after the last refresh)."""
    ids = sorted(int(row["webhook_id"]) for row in store.webhooks.all())
    if ids:
        jira.delete_webhooks(ids)
        store.webhooks.delete(str(i) for i in ids)
        log.info("webhook.deleted", ids=ids, reason="the Jira grant is being forgotten")
    return ids


def _aware(value: Any) -> datetime:
    assert isinstance(value, datetime)
    return value if value.tzinfo else value.replace(tzinfo=UTC)
