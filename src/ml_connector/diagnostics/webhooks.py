"""The webhook receiver: whether it is on and reachable by name, its secret's strength (from the config alone), and
whether Jira's registered webhooks deliver to it (the store remembers which dynamic webhook was registered where)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ml_connector.config.connections import webhook_secret_problem
from ml_connector.config.models import ConnectorConfig, webhook_path
from ml_connector.diagnostics.results import FAIL, PASS, WARN, Findings
from ml_connector.jira.client import JiraClient
from ml_connector.store import Store

RECEIVER, SECRET, POINTS_HERE = "webhook receiver", "webhook secret", "Jira webhook points here"


class WebhookChecks:
    """``store_factory`` opens the store that records registered webhooks; without one none are known."""

    def __init__(
        self, config: ConnectorConfig, findings: Findings, store_factory: Callable[[], Store] | None = None
    ) -> None:
        self.config = config
        self.findings = findings
        self._store_factory = store_factory

    def _url(self) -> str:
        return (self.config.web.public_url or "").rstrip("/") + webhook_path(self.config.name)

    # -- from the config alone -------------------------------------------------------------------------------------

    def receiver(self) -> None:
        """The receiver's state and its secret's strength (no call)."""
        config = self.config
        if not config.webhooks.enabled:
            self.findings.add("web", RECEIVER, PASS, "disabled: POST /webhooks/jira answers 404 (JQL polling only)")
        elif not config.web.public_url:
            self.findings.add(
                "web",
                RECEIVER,
                WARN,
                "enabled, but web.public_url is not set, so nothing tells Jira where to deliver",
                "set web.public_url to the https URL Jira reaches this daemon on",
            )
        else:
            self.findings.add("web", RECEIVER, PASS, f"enabled at {self._url()}")
        self._secret()

    def _secret(self) -> None:
        jira = self.config.jira
        secret = jira.webhook_secret.get_secret_value() if jira.webhook_secret else None
        oauth = jira.auth.kind == "oauth"
        if secret is None:
            if self.config.webhooks.enabled and not oauth:
                self.findings.add(
                    "web",
                    SECRET,
                    FAIL,
                    "webhooks are enabled with Basic auth but jira.webhook_secret is unset: every delivery is refused",
                    "run `ml-connector init` for a generated secret or set JIRA_WEBHOOK_SECRET (32+ random bytes)",
                )
            elif oauth:
                self.findings.add(
                    "web", SECRET, PASS, "OAuth app: deliveries carry a JWT signed with the client secret"
                )
            return
        problem = webhook_secret_problem(secret)
        if problem and jira.simulator:
            self.findings.add("web", SECRET, WARN, f"{problem}; accepted only because jira.simulator is set (loopback)")
        elif problem:  # unreachable after config validation; kept so check never reports a weak secret as fine
            self.findings.add("web", SECRET, FAIL, problem, "set a random secret of 32+ bytes")
        else:
            self.findings.add("web", SECRET, PASS, f"{len(secret.encode('utf-8'))} bytes, not a published default")

    # -- on Jira ---------------------------------------------------------------------------------------------------

    def registrations(self, jira: JiraClient) -> None:
        """Whether Jira's registered webhooks point at this connector's URL."""
        if not self.config.webhooks.enabled or not self.config.web.public_url:
            return
        if self.config.jira.auth.kind == "oauth":
            self._dynamic_registration(jira)
        else:
            self._admin_registration(jira)

    def _dynamic_registration(self, jira: JiraClient) -> None:
        # Jira's list does not repeat the URL (it is the app's); the store remembers which id was registered for
        # which URL, and the list proves Jira still has it.
        want = self._url()
        live = self.findings.guard("jira", POINTS_HERE, "check the manage:jira-webhook scope", jira.list_webhooks)
        if live is None:
            return
        ours = [s for s in self._stored_subscriptions() if s.get("url") == want]
        ids = {w.id for w in live}
        if any(int(s["webhook_id"]) in ids for s in ours):
            self.findings.add("jira", POINTS_HERE, PASS, f"a dynamic webhook registered for {want} is live")
        else:
            self.findings.add(
                "jira",
                POINTS_HERE,
                WARN,
                f"no live dynamic webhook registered for {want} ({len(live)} registered by this app)",
                "`ml-connector run` registers it at start",
            )

    def _admin_registration(self, jira: JiraClient) -> None:
        want = self._url()
        response = self.findings.guard(
            "jira",
            POINTS_HERE,
            "check jira.url",
            lambda: jira.session.request("GET", "rest/webhooks/1.0/webhook", allow_status=(401, 403, 404)),
        )
        if response is None:
            return
        if response.status_code != 200:
            self.findings.add(
                "jira",
                POINTS_HERE,
                WARN,
                f"cannot be verified: the admin webhook list answered {response.status_code} (it needs a Jira admin)",
                f"make sure a Jira admin webhook with this secret delivers to {want}",
            )
            return
        try:
            hooks = [h for h in response.json() if isinstance(h, dict)]
        except ValueError:
            hooks = []
        pointing = [h for h in hooks if str(h.get("url", "")).rstrip("/") == want and h.get("enabled", True)]
        if pointing:
            detail = f"admin webhook {pointing[0].get('name') or ''!s} delivers to {want}".strip()
            self.findings.add("jira", POINTS_HERE, PASS, detail)
        else:
            self.findings.add(
                "jira",
                POINTS_HERE,
                FAIL,
                f"no enabled admin webhook delivers to {want} ({len(hooks)} admin webhooks found)",
                f"in Jira settings → System → WebHooks, create one with URL {want} and the configured secret",
            )

    def _stored_subscriptions(self) -> list[dict[str, Any]]:
        if self._store_factory is None:
            return []
        store = self._store_factory()
        try:
            return list(store.webhooks.all())
        finally:
            store.close()
