"""Helpers for simulator tests: a running sim, clients, OAuth consent and a webhook receiver (all real HTTP)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ml_connector.serve import serve_in_thread
from ml_connector.sim.jira import JiraSim, JiraSimOptions, create_app

EMAIL = "connector@example.com"
TOKEN = "sim-api-token"
CLIENT_ID = "sim-oauth-client"
CLIENT_SECRET = "sim-oauth-secret"
CLOUD_ID = "11111111-2222-3333-4444-555555555555"
REDIRECT = "http://127.0.0.1:9/callback"


@dataclass
class RunningSim:
    url: str
    sim: JiraSim
    control: httpx2.Client

    def basic(self, **kwargs: Any) -> httpx2.Client:
        return httpx2.Client(base_url=self.url, auth=(EMAIL, TOKEN), timeout=30, **kwargs)

    def oauth_tokens(
        self, scope: str = "read:jira-work write:jira-work manage:jira-webhook offline_access"
    ) -> dict[str, Any]:
        response = self.control.get(
            "/authorize",
            params={
                "audience": "api.atlassian.com",
                "client_id": CLIENT_ID,
                "scope": scope,
                "redirect_uri": REDIRECT,
                "state": "xyz",
                "response_type": "code",
                "prompt": "consent",
            },
        )
        assert response.status_code == 302, response.text
        query = parse_qs(urlsplit(response.headers["location"]).query)
        assert query["state"] == ["xyz"]
        token = self.control.post(
            "/oauth/token",
            json={
                "grant_type": "authorization_code",
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "code": query["code"][0],
                "redirect_uri": REDIRECT,
            },
        )
        assert token.status_code == 200, token.text
        body: dict[str, Any] = token.json()
        return body

    def bearer(self, access_token: str, **kwargs: Any) -> httpx2.Client:
        return httpx2.Client(
            base_url=f"{self.url}/ex/jira/{CLOUD_ID}",
            headers={"Authorization": f"Bearer {access_token}"},
            timeout=30,
            **kwargs,
        )


@contextlib.contextmanager
def running_sim(options: JiraSimOptions | None = None) -> Iterator[RunningSim]:
    app = create_app(options)
    handle = serve_in_thread(app)
    control = httpx2.Client(base_url=handle.url, timeout=30)
    try:
        yield RunningSim(handle.url, app.state.sim, control)
    finally:
        control.close()
        handle.stop()


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A webhook callback server; answers ``fail_first`` deliveries with 500 before accepting."""

    url: str = ""
    received: list[Received] = field(default_factory=list)
    fail_first: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self, fail_first: int = 0) -> None:
        with self.lock:
            self.received.clear()
            self.fail_first = fail_first


@contextlib.contextmanager
def webhook_receiver() -> Iterator[Receiver]:
    receiver = Receiver()

    async def hook(request: Request) -> Response:
        body = await request.body()
        with receiver.lock:
            receiver.received.append(Received({k.lower(): v for k, v in request.headers.items()}, body))
            if receiver.fail_first > 0:
                receiver.fail_first -= 1
                return Response(status_code=500)
        return Response(status_code=204)

    handle = serve_in_thread(Starlette(routes=[Route("/hook", hook, methods=["POST"])]))
    receiver.url = handle.url + "/hook"
    try:
        yield receiver
    finally:
        handle.stop()


def po_fields(ref: str, **extra: Any) -> dict[str, Any]:
    """A valid PROC / Purchase Order create payload's fields."""
    return {
        "project": {"key": "PROC"},
        "issuetype": {"name": "Purchase Order"},
        "summary": f"{ref} Purchase order",
        "customfield_10053": ref,
        "customfield_10050": "4000-100",
        "labels": ["ifs", f"ifs-{ref}"],
        **extra,
    }
