"""Runs every check in order (IFS, Jira, then the webhook receiver); a failed prerequisite skips what depends on it."""

from __future__ import annotations

from collections.abc import Callable

from ml_connector.config.models import ConnectorConfig
from ml_connector.diagnostics.ifs import IfsChecks
from ml_connector.diagnostics.jira import JiraChecks
from ml_connector.diagnostics.results import SKIP, CheckResult, Findings
from ml_connector.diagnostics.sample import SampleChecks
from ml_connector.diagnostics.webhooks import WebhookChecks
from ml_connector.ifs import IfsClient
from ml_connector.jira.client import JiraClient
from ml_connector.jira.tokens import TokenStore
from ml_connector.store import Store


class Checker:
    """The checks for one config; the factories stand in for the real clients and store in tests."""

    def __init__(
        self,
        config: ConnectorConfig,
        *,
        ifs_factory: Callable[[], IfsClient] | None = None,
        jira_factory: Callable[[], JiraClient] | None = None,
        token_store: TokenStore | None = None,
        store_factory: Callable[[], Store] | None = None,
        sample: int = 0,
    ) -> None:
        self.config = config
        self.findings = Findings(config.secret_values())
        self._ifs_factory = ifs_factory or (lambda: IfsClient.from_connection(config.ifs))
        self._ifs = IfsChecks(config, self.findings, self._ifs_factory)
        self._jira_factory = jira_factory or (lambda: JiraClient.from_connection(config.jira, token_store=token_store))
        self._jira = JiraChecks(config, self.findings, self._jira_factory, self._ifs.sample_emails)
        self._webhooks = WebhookChecks(config, self.findings, store_factory)
        self.sample = sample
        self._jira_ok = False

    @property
    def results(self) -> list[CheckResult]:
        return self.findings.results

    def run(self) -> list[CheckResult]:
        self.check_ifs()
        self.check_jira()
        self.check_sample()
        self.check_receiver()
        return self.results

    def check_ifs(self) -> None:
        self._ifs.run()

    def check_jira(self) -> None:
        jira = self._jira.connect()
        if jira is None:
            return
        self._jira_ok = True
        try:
            self._jira.flows(jira)
            self._webhooks.registrations(jira)
        finally:
            jira.close()

    def check_sample(self) -> None:
        """``--sample N``: the first N records of each flow through the mapping (needs both sides signed in)."""
        if self.sample <= 0:
            return
        if not (self._ifs.token_ok and self._jira_ok):
            self.findings.add("mapping", f"sample of {self.sample}", SKIP, "needs IFS and Jira signed in (see above)")
            return
        SampleChecks(self.config, self.findings, self._ifs_factory, self._jira_factory, self.sample).run()

    def check_receiver(self) -> None:
        self._webhooks.receiver()


def run_checks(
    config: ConnectorConfig,
    *,
    ifs_factory: Callable[[], IfsClient] | None = None,
    jira_factory: Callable[[], JiraClient] | None = None,
    token_store: TokenStore | None = None,
    store_factory: Callable[[], Store] | None = None,
    sample: int = 0,
) -> list[CheckResult]:
    """Every check for ``config``, in order (IFS, Jira, the ``sample`` records per flow, then the webhook receiver)."""
    return Checker(
        config,
        ifs_factory=ifs_factory,
        jira_factory=jira_factory,
        token_store=token_store,
        store_factory=store_factory,
        sample=sample,
    ).run()
