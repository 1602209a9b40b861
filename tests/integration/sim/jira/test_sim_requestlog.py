"""The request log: cheap by default, and with ``record_exchanges`` on it keeps what a contract check validates."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from ml_connector.sim.jira import JiraSimOptions

from .helpers import RunningSim


def _entries(jira: RunningSim) -> list[dict[str, object]]:
    data = jira.control.get("/_sim/requests").json()
    return list(data["requests"])


def test_the_log_keeps_no_bodies_unless_asked(jira: RunningSim) -> None:
    with jira.basic() as client:
        assert client.get("/rest/api/3/myself").status_code == 200
    (entry,) = _entries(jira)
    assert entry["endpoint"] == "/rest/api/3/myself" and entry["auth"] == "basic"
    assert "response_body" not in entry and "request_headers" not in entry
    assert jira.control.get("/_sim/requests").json()["record_exchanges"] is False


def test_recorded_exchanges_keep_bodies_and_headers_but_no_credentials(jira: RunningSim) -> None:
    switched = jira.control.put("/_sim/requests", json={"record_exchanges": True}).json()
    assert switched["record_exchanges"] is True
    try:
        with jira.basic() as client:
            created = client.post(
                "/rest/api/3/issue/bulk",
                json={"issueUpdates": [{"fields": {"project": {"key": "PROC"}, "issuetype": {"name": "Task"}}}]},
            )
            assert client.get("/rest/api/3/nosuch").status_code == 404
        bulk, missing = _entries(jira)
        assert json.loads(str(bulk["request_body"]))["issueUpdates"][0]["fields"]["project"] == {"key": "PROC"}
        assert json.loads(str(bulk["response_body"])) == created.json()
        assert bulk["status"] == created.status_code
        assert bulk["request_headers"] == {"content-type": "application/json", "accept": "*/*"}
        assert bulk["response_headers"] == {"content-type": "application/json"}
        assert "authorization" not in str(bulk).lower()
        assert missing["status"] == 404 and "Not Found" in str(missing["response_body"])
        jira.sim.reset(JiraSimOptions())  # a reset empties the log and keeps the switch
        assert _entries(jira) == []
        assert jira.control.get("/_sim/requests").json()["record_exchanges"] is True
    finally:
        jira.control.put("/_sim/requests", json={"record_exchanges": False})


def test_received_is_when_the_request_arrived_and_time_when_the_answer_left(jira: RunningSim) -> None:
    jira.control.put("/_sim/faults", json={"latency_ms": 400})
    try:
        with jira.basic() as client:
            assert client.get("/rest/api/3/myself").status_code == 200
    finally:
        jira.control.put("/_sim/faults", json={"latency_ms": 0})
    (entry,) = _entries(jira)
    received = datetime.fromisoformat(str(entry["received"]))
    answered = datetime.fromisoformat(str(entry["time"]))
    assert timedelta(seconds=0.3) <= answered - received < timedelta(seconds=5)  # the round trip's latency between
