"""Bulk create outcomes against scripted ``POST /issue/bulk`` answers (partial success, all failed, short lists)."""

from __future__ import annotations

import json
from typing import Any

import httpx2

from ml_connector.config.connections import HttpSettings
from ml_connector.http import ApiSession, build_client
from ml_connector.jira import DraftIssue, JiraClient

SETTINGS = HttpSettings(max_attempts=1, backoff_initial=0.01, backoff_max=0.01)


def _client(answers: list[httpx2.Response] | None, sent: list[list[str]]) -> JiraClient:
    """Answers in turn, or (None) every draft created: then chunks may be in flight at once."""

    def handler(request: httpx2.Request) -> httpx2.Response:
        summaries = [u["fields"]["summary"] for u in json.loads(request.content)["issueUpdates"]]
        sent.append(summaries)
        if answers is None:
            return httpx2.Response(201, json={"issues": [_issue(int(s)) for s in summaries], "errors": []})
        return answers[len(sent) - 1]

    transport = httpx2.MockTransport(handler)
    session = ApiSession(
        build_client("https://x.atlassian.net", SETTINGS, transport=transport), system="jira", settings=SETTINGS
    )
    return JiraClient(session)


def _drafts(*summaries: str) -> list[DraftIssue]:
    return [DraftIssue(fields={"summary": s}) for s in summaries]


def _issue(n: int) -> dict[str, Any]:
    return {"id": str(10000 + n), "key": f"A-{n}", "self": f"https://x/{n}"}


def _element(position: int, status: int, message: str) -> dict[str, Any]:
    return {
        "failedElementNumber": position,
        "status": status,
        "elementErrors": {"errorMessages": [message], "errors": {}},
    }


def test_partial_success_matches_created_issues_to_drafts_in_order() -> None:
    sent: list[list[str]] = []
    answer = httpx2.Response(201, json={"issues": [_issue(1), _issue(3)], "errors": [_element(1, 400, "bad type")]})
    outcomes = _client([answer], sent).bulk_create(_drafts("a", "b", "c"))
    assert [o.issue.key if o.issue else None for o in outcomes] == ["A-1", None, "A-3"]
    failure = outcomes[1].failure
    assert failure is not None and failure.status == 400 and failure.message == "bad type" and not failure.transient


def test_an_error_collection_400_fails_every_draft_of_the_chunk() -> None:
    sent: list[list[str]] = []
    answer = httpx2.Response(400, json={"errorMessages": ["nope"], "errors": {"project": "required"}})
    outcomes = _client([answer], sent).bulk_create(_drafts("a", "b"))
    assert all(o.failure is not None and o.failure.message == "nope; project: required" for o in outcomes)


def test_a_list_shorter_than_sent_leaves_the_rest_uncertain() -> None:
    sent: list[list[str]] = []
    outcomes = _client([httpx2.Response(201, json={"issues": [_issue(1)], "errors": []})], sent).bulk_create(
        _drafts("a", "b")
    )
    assert outcomes[0].ok
    failure = outcomes[1].failure
    assert failure is not None and failure.uncertain and "fewer issues" in failure.message
    assert len(sent) == 1  # an uncertain element is never resent: the caller reconciles


def test_transient_elements_are_retried_alone_in_a_later_round() -> None:
    sent: list[list[str]] = []
    first = httpx2.Response(201, json={"issues": [_issue(1)], "errors": [_element(1, 503, "busy")]})
    second = httpx2.Response(201, json={"issues": [_issue(2)], "errors": []})
    outcomes = _client([first, second], sent).bulk_create(_drafts("a", "b"), element_retries=1, sleep=lambda _: None)
    assert sent == [["a", "b"], ["b"]]
    assert [o.issue.key if o.issue else None for o in outcomes] == ["A-1", "A-2"]


def test_a_500_after_sending_marks_the_chunk_uncertain_and_is_not_resent() -> None:
    sent: list[list[str]] = []
    outcomes = _client([httpx2.Response(500, json={"errorMessages": ["boom"]})], sent).bulk_create(
        _drafts("a", "b"), sleep=lambda _: None
    )
    assert sent == [["a", "b"]]
    assert all(o.failure is not None and o.failure.transient and o.failure.uncertain for o in outcomes)


def test_chunks_hold_at_most_fifty_drafts() -> None:
    sent: list[list[str]] = []
    outcomes = _client(None, sent).bulk_create(_drafts(*(str(n) for n in range(120))), concurrency=3)
    assert sorted(len(chunk) for chunk in sent) == [20, 50, 50]
    assert [o.issue.key if o.issue else None for o in outcomes] == [f"A-{n}" for n in range(120)]
