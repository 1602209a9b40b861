"""The receiver and its secret are judged from the config alone: no call is made."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ml_connector.diagnostics.results import FAIL, PASS, WARN, CheckResult, Findings
from ml_connector.diagnostics.webhooks import WebhookChecks

from .helpers import example

STRONG = "k7Qw9zX2mN4pL8rT1vB6yH3jF5dS0aGc-strong"


def _receiver(tmp_path: Path, **sections: Any) -> dict[str, CheckResult]:
    def change(data: dict[str, Any]) -> None:
        for key, value in sections.items():
            if key == "webhook_secret":
                data["jira"]["webhook_secret"] = value
            else:
                data[key] = value

    config = example(tmp_path, change)
    findings = Findings(config.secret_values())
    WebhookChecks(config, findings).receiver()
    return {r.name: r for r in findings.results}


def test_a_disabled_receiver_passes_and_needs_no_secret(tmp_path: Path) -> None:
    rows = _receiver(tmp_path)
    assert rows["webhook receiver"].status == PASS and "404" in rows["webhook receiver"].detail
    assert "webhook secret" not in rows


def test_an_enabled_receiver_without_a_public_url_warns(tmp_path: Path) -> None:
    rows = _receiver(tmp_path, webhooks={"enabled": True}, webhook_secret=STRONG)
    assert rows["webhook receiver"].status == WARN
    assert rows["webhook receiver"].fix == "set web.public_url to the https URL Jira reaches this daemon on"
    assert rows["webhook secret"].status == PASS
    assert rows["webhook secret"].detail == f"{len(STRONG)} bytes, not a published default"


def test_an_enabled_receiver_names_its_url(tmp_path: Path) -> None:
    rows = _receiver(
        tmp_path, webhooks={"enabled": True}, web={"public_url": "https://c.example.com/"}, webhook_secret=STRONG
    )
    assert rows["webhook receiver"].status == PASS
    assert rows["webhook receiver"].detail == "enabled at https://c.example.com/webhooks/jira"


def test_basic_auth_without_a_secret_refuses_every_delivery(tmp_path: Path) -> None:
    rows = _receiver(tmp_path, webhooks={"enabled": True})
    assert rows["webhook secret"].status == FAIL
    assert "JIRA_WEBHOOK_SECRET" in (rows["webhook secret"].fix or "")
