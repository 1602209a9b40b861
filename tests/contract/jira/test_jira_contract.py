"""Contract: every request the Jira client sends validates against the official OpenAPI document, and every
simulator response to it validates against the documented response schema.

The document is read from ``$ML_CONNECTOR_JIRA_SPEC`` or ``../shared/specs/``; it is never copied into the repo.
With ``CI=true`` a missing document fails the run; elsewhere the test is skipped with the reason.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import require_import, unavailable
from integration.jira.helpers import (
    RecordingTransport,
    Sim,
    basic_connection,
    consent,
    oauth_connection,
    spec_path,
    validate_exchanges,
)

from ml_connector.jira import DraftIssue, JiraClient, MemoryTokenStore, jql, text_to_adf

require_import("ml_connector.sim.jira", "create_app")


@pytest.fixture(scope="module")
def spec_available() -> Path:
    path = spec_path()
    if path is None:
        unavailable("official Jira OpenAPI document not found (set ML_CONNECTOR_JIRA_SPEC or provide ../shared/specs/)")
    return path


@pytest.fixture(scope="module")
def sim() -> Iterator[Sim]:
    with Sim.start() as running:
        yield running


def _scenario(client: JiraClient, sim: Sim, *, webhooks: bool) -> None:
    client.myself()
    client.server_info()
    client.fields()
    client.projects()
    client.priorities()
    types = {t["name"]: t["id"] for t in client.create_issue_types("PROC")}
    client.create_fields("PROC", types["Purchase Order"])
    client.search_users("ana.alvarez@example.com")
    one = client.create_issue(
        DraftIssue(
            fields={
                "project": {"key": "PROC"},
                "issuetype": {"name": "Task"},
                "summary": "contract",
                "description": text_to_adf("a\nb\n\n- c https://example.com"),
            },
            labels=("contract",),
            properties={"ml-connector": {"ifsKey": "PO-1"}},
        )
    )
    outcomes = client.bulk_create(
        [
            DraftIssue(fields={"project": {"key": "PROC"}, "issuetype": {"name": "Task"}, "summary": f"c{i}"})
            for i in range(3)
        ]
        + [DraftIssue(fields={"project": {"key": "PROC"}, "issuetype": {"name": "Task"}})]
    )
    assert sum(o.ok for o in outcomes) == 3
    client.edit_issue(one.id, {"summary": "contract 2"}, properties={"sync": {"h": 1}})
    client.get_issue(one.key, fields=["summary", "status"], properties=["ml-connector"], expand=["names"])
    client.set_property(one.id, "sync", {"h": 2})
    client.get_property(one.id, "sync")
    client.get_property(one.id, "missing")
    client.property_keys(one.id)
    client.delete_property(one.id, "sync")
    client.transitions(one.key)
    client.transition_to(one.key, "In Progress")
    since = datetime.now(UTC) - timedelta(hours=1)
    query = jql.all_of(jql.eq("project", "PROC"), client.updated_since_clause(since))
    list(client.search(jql.order_by(query, "key"), properties=["ml-connector"], page_size=2))
    list(client.search(jql.eq("labels", "contract"), reconcile_issues=[one.id]))
    if webhooks:
        (hook,) = client.register_webhooks(
            "https://connector.example.com/jira/webhook",
            [{"events": ["jira:issue_updated"], "jqlFilter": "project = PROC", "fieldIdsFilter": ["status"]}],
        )
        assert isinstance(hook, int)
        client.list_webhooks()
        client.refresh_webhooks([hook])
        client.delete_webhooks([hook])
    client.delete_issue(outcomes[0].issue.id if outcomes[0].issue else "")


def _check(recorder: RecordingTransport) -> None:
    checked, problems = validate_exchanges(recorder.exchanges)
    assert checked >= 20
    assert not problems, "\n".join(problems)


def test_basic_auth_scenario_matches_the_spec(spec_available: Path, sim: Sim) -> None:
    sim.reset()
    recorder = RecordingTransport()
    with JiraClient.from_connection(basic_connection(sim), transport=recorder) as client:
        _scenario(client, sim, webhooks=False)
    _check(recorder)


def test_oauth_scenario_matches_the_spec(spec_available: Path, sim: Sim) -> None:
    sim.reset()
    recorder = RecordingTransport()
    store = MemoryTokenStore()
    consent(sim, store, recorder).session.close()
    with JiraClient.from_connection(oauth_connection(sim), token_store=store, transport=recorder) as client:
        _scenario(client, sim, webhooks=True)
    _check(recorder)
