"""Paging guards of the search iterator, against a scripted far side (a repeated token cannot be provoked on the
simulator, which pages correctly)."""

from __future__ import annotations

import json
from typing import Any

import httpx2
import pytest

from ml_connector.config.connections import HttpSettings
from ml_connector.http import ApiSession, build_client
from ml_connector.jira import JiraClient, PagingError


def _client(pages: list[dict[str, Any]], bodies: list[dict[str, Any]]) -> JiraClient:
    def handler(request: httpx2.Request) -> httpx2.Response:
        bodies.append(json.loads(request.content))
        return httpx2.Response(200, json=pages[min(len(bodies) - 1, len(pages) - 1)])

    settings = HttpSettings()
    session = ApiSession(
        build_client("https://x.atlassian.net", settings, transport=httpx2.MockTransport(handler)),
        system="jira",
        settings=settings,
    )
    return JiraClient(session)


def test_follows_tokens_and_omits_token_on_first_page() -> None:
    bodies: list[dict[str, Any]] = []
    pages = [
        {"issues": [{"id": "1"}, {"id": "2"}], "nextPageToken": "t1", "isLast": False},
        {"issues": [{"id": "2"}, {"id": "3"}], "isLast": True},  # "2" repeated across pages: yielded once
    ]
    ids = [i["id"] for i in _client(pages, bodies).search("project = A", page_size=2, reconcile_issues=["9"])]
    assert ids == ["1", "2", "3"]
    assert "nextPageToken" not in bodies[0] and bodies[1]["nextPageToken"] == "t1"
    assert bodies[0]["reconcileIssues"] == [9] == bodies[1]["reconcileIssues"]


def test_repeated_token_stops_with_paging_error() -> None:
    bodies: list[dict[str, Any]] = []
    pages = [{"issues": [{"id": str(n)}], "nextPageToken": "same", "isLast": False} for n in range(5)]
    seen: list[str] = []
    with pytest.raises(PagingError, match="repeated"):
        for issue in _client(pages, bodies).search("project = A"):
            seen.append(issue["id"])
    assert len(bodies) == 2 and seen == ["0", "1"]


def test_page_bound() -> None:
    bodies: list[dict[str, Any]] = []
    pages = [{"issues": [], "nextPageToken": f"t{n}", "isLast": False} for n in range(10)]
    client = _client(pages, bodies)
    with pytest.raises(PagingError, match="exceeded 3 pages"):
        list(client.search("project = A", max_pages=3))
    assert len(bodies) == 3


@pytest.mark.parametrize(
    ("page", "more"),
    [
        ({"issues": [{"id": "1"}], "nextPageToken": "t1", "isLast": False}, True),
        ({"issues": [{"id": "1"}], "isLast": True}, False),
        ({"issues": [{"id": "1"}], "nextPageToken": "t1", "isLast": True}, False),  # isLast wins
        ({"issues": [{"id": "1"}], "isLast": False}, False),  # no token: nothing to follow, as search() reads it
        ({"nextPageToken": "t1"}, True),  # no issues key, no isLast: a token means more
    ],
)
def test_first_page_is_one_call_and_says_whether_more_follow(page: dict[str, Any], more: bool) -> None:
    bodies: list[dict[str, Any]] = []
    issues, more_pages = _client([page], bodies).first_page("project = A", fields=("status",), page_size=7)
    assert (issues, more_pages) == (page.get("issues", []), more)
    assert bodies == [{"jql": "project = A", "maxResults": 7, "fields": ["status"]}]
