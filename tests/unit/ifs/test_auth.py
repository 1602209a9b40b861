"""Token cache logic against a scripted IAM endpoint (httpx2.MockTransport stands in for Keycloak, the far side).

The same behaviour is exercised against the IFS simulator in tests/integration/ifs.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import httpx2
import pytest

from ml_connector.config.connections import HttpSettings
from ml_connector.errors import AuthError, MalformedResponse
from ml_connector.http import ApiSession, BearerAuth, build_client
from ml_connector.ifs.auth import TokenProvider
from unit.clock import Clock

SETTINGS = HttpSettings(max_attempts=2, backoff_initial=0.01, backoff_max=0.01)


class Iam:
    """Counts token requests; issues tok-1, tok-2, ... with the configured lifetime."""

    def __init__(self, expires_in: object = 180, delay: float = 0.0) -> None:
        self.calls = 0
        self.expires_in = expires_in
        self.delay = delay
        self.forms: list[bytes] = []
        self._lock = threading.Lock()

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        assert request.url.path == "/auth/realms/mlc/protocol/openid-connect/token"
        with self._lock:
            self.calls += 1
            n = self.calls
        self.forms.append(request.content)
        if self.delay:
            time.sleep(self.delay)
        body: dict[str, object] = {"access_token": f"tok-{n}", "token_type": "Bearer"}
        if self.expires_in is not None:
            body["expires_in"] = self.expires_in
        return httpx2.Response(200, json=body)


def provider(handler: Callable[[httpx2.Request], httpx2.Response], clock: Clock, margin: float = 30.0) -> TokenProvider:
    client = build_client("http://ifs.test", SETTINGS, transport=httpx2.MockTransport(handler))
    session = ApiSession(client, system="ifs-iam", settings=SETTINGS)
    return TokenProvider(
        session,
        realm="mlc",
        client_id="ml-connector",
        client_secret="s3cret-value",
        scope="openid",
        refresh_margin=margin,
        clock=clock,
    )


def test_caches_and_refreshes_margin_before_expiry() -> None:
    iam, clock = Iam(180), Clock()
    tokens = provider(iam, clock)
    assert tokens.token() == "tok-1"
    clock.now += 149
    assert tokens.token() == "tok-1"
    assert iam.calls == 1
    clock.now += 2  # 151 s: inside the 30 s margin
    assert tokens.token() == "tok-2"
    assert iam.calls == 2
    form = iam.forms[0].decode()
    assert "grant_type=client_credentials" in form and "client_id=ml-connector" in form and "scope=openid" in form


def test_margin_is_capped_for_short_lived_tokens() -> None:
    iam, clock = Iam(4), Clock()
    tokens = provider(iam, clock, margin=30)
    tokens.token()
    clock.now += 1.9
    tokens.token()
    assert iam.calls == 1
    clock.now += 0.2
    tokens.token()
    assert iam.calls == 2


def test_missing_expires_in_assumes_short_life_not_an_hour() -> None:
    iam, clock = Iam(None), Clock()
    tokens = provider(iam, clock)
    tokens.token()
    clock.now += 300
    tokens.token()
    assert iam.calls == 2


def test_single_flight_refresh_under_concurrency() -> None:
    iam = Iam(180, delay=0.2)
    tokens = provider(iam, Clock())
    results: list[str] = []
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait()
        results.append(tokens.token())

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert iam.calls == 1
    assert results == ["tok-1"] * 8


def test_renew_replaces_only_the_refused_token() -> None:
    iam, clock = Iam(180), Clock()
    tokens = provider(iam, clock)
    first = tokens.token()
    second = tokens.renew(stale=first)
    assert tokens.renew(stale=first) == second  # a late 401 for the old token must not throw away the new one
    assert tokens.token() == second == "tok-2"
    assert iam.calls == 2


def test_refused_credentials_are_auth_error_without_the_secret() -> None:
    def deny(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(401, json={"error": "unauthorized_client", "error_description": "Invalid client secret"})

    with pytest.raises(AuthError) as info:
        provider(deny, Clock()).token()
    assert "s3cret-value" not in str(info.value)


def test_answer_without_token_is_malformed() -> None:
    with pytest.raises(MalformedResponse, match="lacks access_token"):
        provider(lambda r: httpx2.Response(200, json={"token_type": "Bearer"}), Clock()).token()


def test_bearer_flow_resends_once_with_a_fresh_token_then_gives_up() -> None:
    iam = Iam(180)
    refuse = {"tok-1"}
    seen: list[str] = []

    def api(request: httpx2.Request) -> httpx2.Response:
        if request.url.path.startswith("/auth/"):
            return iam(request)
        auth = request.headers["Authorization"]
        seen.append(auth)
        if auth.removeprefix("Bearer ") in refuse:
            return httpx2.Response(
                401, headers={"WWW-Authenticate": 'Bearer realm="mlc"'}, json={"error": {"code": "X", "message": "no"}}
            )
        return httpx2.Response(200, json={"ok": True})

    transport = httpx2.MockTransport(api)
    tokens = provider(api, Clock())
    client = build_client("http://ifs.test", SETTINGS, auth=BearerAuth(tokens, system="ifs"), transport=transport)
    session = ApiSession(client, system="ifs", settings=SETTINGS)
    assert session.request("GET", "/x").json() == {"ok": True}
    assert seen == ["Bearer tok-1", "Bearer tok-2"]

    refuse.update({"tok-2", "tok-3"})
    seen.clear()
    with pytest.raises(AuthError):
        session.request("GET", "/x", json={"a": 1})
    assert seen == ["Bearer tok-2", "Bearer tok-3"]  # exactly one resend per call
