"""The webhook receiver's checks: its state and secret from the config, and whether Jira delivers to it (an admin
webhook with Basic auth, the dynamic webhook the store remembers with OAuth)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx2

from ml_connector.config.models import load_config
from ml_connector.diagnostics import Checker
from ml_connector.errors import Unavailable
from ml_connector.jira import JiraClient, MemoryTokenStore
from ml_connector.runner import WebhookManager
from ml_connector.serve import ServerHandle
from ml_connector.store import Store

from ..jira.helpers import Sim, consent, oauth_connection
from ..runner.simenv import example_config, write_config
from .helpers import STRONG, json_rows


def receiver_rows(tmp_path: Path, data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    _, rows = json_rows(tmp_path, data)
    return {r["name"]: r for r in rows if r["name"].startswith(("webhook", "Jira webhook"))}


def test_check_reports_a_disabled_receiver(env: None, tmp_path: Path) -> None:
    rows = receiver_rows(tmp_path, example_config())
    assert rows["webhook receiver"]["status"] == "pass"
    assert "404" in rows["webhook receiver"]["detail"]
    assert "Jira webhook points here" not in rows


def test_check_reports_secret_strength_and_where_jira_delivers(
    env: None, sims: tuple[ServerHandle, ServerHandle], tmp_path: Path
) -> None:
    public = "https://connector-check.example.com"
    data = example_config()
    data["jira"]["webhook_secret"] = STRONG
    data["webhooks"] = {"enabled": True}
    data["web"] = {"public_url": public}
    rows = receiver_rows(tmp_path, data)
    assert rows["webhook receiver"]["status"] == "pass" and public in rows["webhook receiver"]["detail"]
    assert rows["webhook secret"]["status"] == "pass"
    assert rows["webhook secret"]["detail"] == f"{len(STRONG)} bytes, not a published default"
    missing = rows["Jira webhook points here"]
    assert missing["status"] == "fail"
    assert f"{public}/webhooks/jira" in missing["fix"]
    hook = httpx2.post(
        f"{sims[1].url}/rest/webhooks/1.0/webhook",
        json={"name": "ml-connector", "url": f"{public}/webhooks/jira", "events": ["jira:issue_updated"]},
        auth=("connector@example.com", "sim-api-token"),
        timeout=10,
    )
    assert hook.status_code == 201, hook.text
    rows = receiver_rows(tmp_path, data)
    assert rows["Jira webhook points here"]["status"] == "pass"


def test_check_warns_about_the_simulator_secret_on_the_simulator(env: None, tmp_path: Path) -> None:
    data = example_config()
    data["jira"].update(simulator=True, webhook_secret="sim-webhook-secret")
    rows = receiver_rows(tmp_path, data)
    assert rows["webhook secret"]["status"] == "warn"
    assert "jira.simulator" in rows["webhook secret"]["detail"]


def test_check_finds_the_oauth_dynamic_webhook_registered_for_this_url(tmp_path: Path) -> None:
    public = "https://connector-oauth.example.com"
    store_url = f"sqlite:///{tmp_path / 'state.sqlite'}"
    with Sim.start() as sim:
        tokens = MemoryTokenStore()
        consent(sim, tokens).session.close()
        connection = oauth_connection(sim)
        data = example_config()
        data["jira"] = connection.model_dump(mode="json")
        data["jira"]["auth"]["client_secret"] = connection.auth.client_secret.get_secret_value()  # type: ignore[union-attr]
        data["webhooks"] = {"enabled": True}
        data["web"] = {"public_url": public}
        data["store"] = {"url": store_url}
        config = load_config(write_config(tmp_path, data), env={})

        def unreachable_ifs() -> Any:
            raise Unavailable("IFS is not part of this test", system="ifs")

        def rows() -> dict[str, Any]:
            checker = Checker(
                config,
                ifs_factory=unreachable_ifs,
                jira_factory=lambda: JiraClient.from_connection(connection, token_store=tokens),
                store_factory=lambda: Store.open(store_url),
            )
            return {r.name: r for r in checker.run()}

        before = rows()["Jira webhook points here"]
        assert before.status == "warn" and "run` registers it" in (before.fix or "")
        assert rows()["webhook secret"].detail.startswith("OAuth app")
        store = Store.open(store_url)
        jira = JiraClient.from_connection(connection, token_store=tokens)
        try:
            WebhookManager.for_config(config, lambda: jira, store).ensure()
        finally:
            jira.close()
            store.close()
        after = rows()["Jira webhook points here"]
        assert after.status == "pass", after
        assert f"{public}/webhooks/jira" in after.detail
