"""Every simulator response to a documented endpoint validates against the official OpenAPI response schema."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from integration.sim.jira.helpers import RunningSim, po_fields, running_sim

from contract.spec import Recorder, require_openapi, validate_all


@pytest.fixture(scope="module")
def openapi() -> Any:
    return require_openapi()  # parsed once per process; skips (or fails under CI=true) without the document


@pytest.fixture(scope="module")
def jira() -> Iterator[RunningSim]:
    with running_sim() as sim:
        yield sim


def _scenario(client: Any, jira: RunningSim) -> None:
    """Touch every documented endpoint the connector relies on, including their error answers."""
    assert client.get("/rest/api/3/myself").status_code == 200
    assert client.get("/rest/api/3/serverInfo").status_code == 200
    assert (
        client.get("/rest/api/3/project/search", params={"keys": ["PROC", "MAINT"], "expand": "issueTypes"}).status_code
        == 200
    )
    assert client.get("/rest/api/3/project/PROC").status_code == 200
    assert client.get("/rest/api/3/issue/createmeta/PROC/issuetypes").status_code == 200
    assert client.get("/rest/api/3/issue/createmeta/PROC/issuetypes/10002").status_code == 200
    assert client.get("/rest/api/3/field").status_code == 200
    assert client.get("/rest/api/3/priority").status_code == 200
    assert client.get("/rest/api/3/priority/search").status_code == 200
    assert client.get("/rest/api/3/user/search", params={"query": "ana"}).status_code == 200
    assert (
        client.get("/rest/api/3/user/assignable/search", params={"project": "PROC", "query": "bo"}).status_code == 200
    )
    created = client.post(
        "/rest/api/3/issue",
        json={"fields": po_fields("PO-1"), "properties": [{"key": "ml-connector", "value": {"k": "PO-1"}}]},
    )
    assert created.status_code == 201
    key = created.json()["key"]
    assert client.post("/rest/api/3/issue", json={"fields": {"project": {"key": "PROC"}}}).status_code == 400
    bulk = {
        "issueUpdates": [{"fields": po_fields("PO-2")}, {"fields": {**po_fields("PO-3"), "customfield_99999": "x"}}]
    }
    assert client.post("/rest/api/3/issue/bulk", json=bulk).status_code == 201
    assert (
        client.post("/rest/api/3/issue/bulk", json={"issueUpdates": [{"fields": {"summary": "x"}}]}).status_code == 400
    )
    assert (
        client.get(
            f"/rest/api/3/issue/{key}",
            params={"expand": "names,schema,transitions,changelog", "properties": "ml-connector"},
        ).status_code
        == 200
    )
    assert client.get("/rest/api/3/issue/PROC-999").status_code == 404
    assert client.put(f"/rest/api/3/issue/{key}", json={"fields": {"summary": "changed"}}).status_code == 204
    assert (
        client.put(
            f"/rest/api/3/issue/{key}", params={"returnIssue": "true"}, json={"update": {"labels": [{"add": "x"}]}}
        ).status_code
        == 200
    )
    assert client.put(f"/rest/api/3/issue/{key}", json={"fields": {"summary": "x" * 300}}).status_code == 400
    assert client.put(f"/rest/api/3/issue/{key}/properties/sync", json={"v": 1}).status_code == 201
    assert client.put(f"/rest/api/3/issue/{key}/properties/sync", json={"v": 2}).status_code == 200
    assert client.get(f"/rest/api/3/issue/{key}/properties").status_code == 200
    assert client.get(f"/rest/api/3/issue/{key}/properties/sync").status_code == 200
    assert client.delete(f"/rest/api/3/issue/{key}/properties/sync").status_code == 204
    assert client.get(f"/rest/api/3/issue/{key}/properties/sync").status_code == 404
    assert (
        client.get(f"/rest/api/3/issue/{key}/transitions", params={"expand": "transitions.fields"}).status_code == 200
    )
    assert client.post(f"/rest/api/3/issue/{key}/transitions", json={"transition": {"id": "11"}}).status_code == 204
    assert client.post(f"/rest/api/3/issue/{key}/transitions", json={"transition": {"id": "999"}}).status_code == 400
    search = {
        "jql": "project = PROC ORDER BY key",
        "maxResults": 1,
        "fields": ["summary", "status", "updated", "customfield_10053"],
        "properties": ["ml-connector"],
    }
    page = client.post("/rest/api/3/search/jql", json=search)
    assert page.status_code == 200
    token = page.json()["nextPageToken"]
    assert client.post("/rest/api/3/search/jql", json={**search, "nextPageToken": token}).status_code == 200
    assert (
        client.get(
            "/rest/api/3/search/jql", params={"jql": "project = PROC", "fields": "*all", "expand": "names"}
        ).status_code
        == 200
    )
    assert client.get("/rest/api/3/search/jql", params={"jql": "project = PROC"}).status_code == 200
    assert client.get("/rest/api/3/search/jql", params={"jql": "project = "}).status_code == 400
    assert client.post("/rest/api/3/search/approximate-count", json={"jql": "project = PROC"}).status_code == 200
    assert client.delete(f"/rest/api/3/issue/{key}").status_code == 204


def test_basic_auth_responses_validate(jira: RunningSim, openapi: Any) -> None:
    recorder = Recorder()
    with jira.basic(event_hooks={"response": [recorder]}) as client:
        _scenario(client, jira)
    with jira.basic() as client:  # removed from Jira but still in the document: a 410 it does not describe
        gone = client.get("/rest/api/3/search", params={"jql": "project = PROC"})
        assert gone.status_code == 410 and "search/jql" in gone.json()["errorMessages"][0]
    problems = validate_all(openapi, recorder.exchanges)
    assert len(recorder.exchanges) >= 35
    assert not problems, "\n".join(problems[:15])


def test_oauth_and_webhook_responses_validate(jira: RunningSim, openapi: Any) -> None:
    tokens = jira.oauth_tokens()
    recorder = Recorder()
    with jira.bearer(tokens["access_token"], event_hooks={"response": [recorder]}) as client:
        registered = client.post(
            "/rest/api/3/webhook",
            json={
                "url": "http://127.0.0.1:9/hook",
                "webhooks": [
                    {"events": ["jira:issue_created", "jira:issue_updated"], "jqlFilter": "project = PROC"},
                    {"events": ["jira:issue_updated"], "jqlFilter": "watchCount = 1"},
                ],
            },
        )
        assert registered.status_code == 200
        results = registered.json()["webhookRegistrationResult"]
        assert "createdWebhookId" in results[0] and results[1]["errors"]
        wid = results[0]["createdWebhookId"]
        assert client.get("/rest/api/3/webhook").status_code == 200
        assert client.put("/rest/api/3/webhook/refresh", json={"webhookIds": [wid]}).status_code == 200
        assert client.request("DELETE", "/rest/api/3/webhook", json={"webhookIds": [wid]}).status_code == 202
        assert client.get("/rest/api/3/myself").status_code == 200
        assert client.get("/rest/api/3/search/jql", params={"jql": "project = PROC"}).status_code == 200
    with jira.basic(event_hooks={"response": [recorder]}) as basic:
        assert basic.post("/rest/api/3/webhook", json={"url": "http://x", "webhooks": []}).status_code == 403
    problems = validate_all(openapi, recorder.exchanges)
    assert not problems, "\n".join(problems[:15])


def test_v2_answers_validate_against_the_v3_operations(jira: RunningSim, openapi: Any) -> None:
    """The v2 document is not in shared/specs: ``/rest/api/2`` exchanges are checked against the v3 operation of the
    same path, which differs only in rich-text fields (a wiki string where v3 has ADF; both fit the schema)."""
    recorder = Recorder()
    with jira.basic(event_hooks={"response": [recorder]}) as client:
        created = client.post(
            "/rest/api/2/issue", json={"fields": {**po_fields("PO-V2"), "description": "plain *wiki* text"}}
        )
        assert created.status_code == 201, created.text
        key = created.json()["key"]
        assert client.get(f"/rest/api/2/issue/{key}", params={"fields": "summary,description"}).status_code == 200
        assert client.put(f"/rest/api/2/issue/{key}", json={"fields": {"summary": "v2"}}).status_code == 204
        assert client.get("/rest/api/2/myself").status_code == 200
        found = client.post("/rest/api/2/search/jql", json={"jql": f"key = {key}", "fields": ["*all"]})
        assert found.status_code == 200
    problems = validate_all(openapi, recorder.exchanges)
    assert len(recorder.exchanges) == 5
    assert not problems, "\n".join(problems[:15])
