"""The contract helpers themselves: path mapping, the allow-list, undocumented paths, and exchanges read back from
the Jira simulator's request log (request and response both checked)."""

from __future__ import annotations

from typing import Any

import pytest

from contract.spec import api_path, documented, logged_exchanges, require_openapi, validate_all


@pytest.fixture(scope="module")
def openapi() -> Any:
    return require_openapi()


def _entry(method: str, path: str, *, body: str = "", status: int = 200, answer: str = "{}", auth: str = "basic",
           query: str = "") -> dict[str, Any]:  # fmt: skip
    return {
        "method": method,
        "path": path,
        "query": query,
        "status": status,
        "auth": auth,
        "request_headers": {"content-type": "application/json"} if body else {},
        "request_body": body,
        "response_headers": {"content-type": "application/json"},
        "response_body": answer,
    }


def _problems(openapi: Any, entry: dict[str, Any]) -> list[str]:
    return validate_all(openapi, logged_exchanges([entry]))


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://x/rest/api/3/issue/PROC-1", "/rest/api/3/issue/PROC-1"),
        ("https://x/ex/jira/cloud-1/rest/api/3/myself", "/rest/api/3/myself"),
        ("https://x/rest/api/2/issue/PROC-1?fields=summary", "/rest/api/3/issue/PROC-1"),
        ("https://x/ex/jira/cloud-1/rest/api/2/search/jql", "/rest/api/3/search/jql"),
        ("https://x/oauth/token", None),
        ("https://x/oauth/token/accessible-resources", None),
        ("https://x/rest/webhooks/1.0/webhook/7", None),
        ("https://x/_sim/requests", None),
        ("https://x/rest/api/3/no/such/thing", "/rest/api/3/no/such/thing"),
    ],
)
def test_paths_map_onto_the_document(url: str, expected: str | None) -> None:
    assert api_path(url) == expected


def test_documented_knows_the_templates(openapi: Any) -> None:
    assert documented("/rest/api/3/issue/PROC-1/properties/ml-connector")
    assert documented("/rest/api/3/search/jql")
    assert not documented("/rest/api/3/issue/PROC-1/no-such-leaf")
    assert not documented("/rest/api/3")


def test_an_undocumented_path_is_a_violation(openapi: Any) -> None:
    problems = _problems(openapi, _entry("GET", "/ex/jira/c/rest/api/3/nosuch", auth="bearer"))
    assert problems == ["request GET /rest/api/3/nosuch -> 200: no such path in the official document"]


def test_allow_listed_paths_are_skipped(openapi: Any) -> None:
    assert _problems(openapi, _entry("POST", "/oauth/token", body="{}")) == []
    assert _problems(openapi, _entry("GET", "/rest/webhooks/1.0/webhook", answer="[]")) == []


def test_logged_requests_and_responses_are_both_checked(openapi: Any) -> None:
    good = _entry("GET", "/ex/jira/c/rest/api/3/myself", answer='{"accountId": "a"}', auth="bearer")
    assert _problems(openapi, good) == []
    assert _problems(openapi, _entry("GET", "/rest/api/2/myself", answer='{"accountId": "a"}')) == []
    wrong_answer = _entry("GET", "/rest/api/3/myself", answer='{"accountId": 5}')
    assert "response GET /rest/api/3/myself" in _problems(openapi, wrong_answer)[0]
    wrong_body = _entry("POST", "/rest/api/3/issue/bulk", body='{"issueUpdates": 5}', status=201)
    assert "request POST /rest/api/3/issue/bulk" in _problems(openapi, wrong_body)[0]
    wrong_query = _entry("GET", "/rest/api/3/search/jql", query="maxResults=abc", answer='{"issues": []}')
    assert "maxResults" in _problems(openapi, wrong_query)[0]


def test_an_entry_logged_without_exchanges_is_refused() -> None:
    bare = {k: v for k, v in _entry("GET", "/rest/api/3/myself").items() if k != "response_body"}
    with pytest.raises(AssertionError, match="record_exchanges"):
        logged_exchanges([bare])
