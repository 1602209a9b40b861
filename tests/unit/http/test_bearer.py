"""The shared bearer mechanism: expiry margin, single-flight renewal across threads, one renewal and resend on 401.

A scripted grant stands in for IFS IAM and Atlassian's token endpoint; the API is an ``httpx2.MockTransport``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import httpx2
import pytest

from ml_connector.config.connections import HttpSettings
from ml_connector.errors import AuthError
from ml_connector.http import ApiSession, BearerAuth, BearerToken, BearerTokenCache, build_client, granted_lifetime
from unit.clock import Clock

SETTINGS = HttpSettings(max_attempts=2, backoff_initial=0.01, backoff_max=0.01)


class Grant(BearerTokenCache):
    """Issues tok-1, tok-2, ... living ``lifetime`` seconds (None: stated nowhere, expiry only)."""

    def __init__(self, clock: Clock, *, margin: float = 30.0, lifetime: float | None = 180.0, delay: float = 0.0):
        super().__init__(margin=margin, clock=clock)
        self.lifetime, self.delay = lifetime, delay
        self.calls = 0
        self.elsewhere: BearerToken | None = None

    def fetch_token(self) -> BearerToken:
        if self.delay:
            time.sleep(self.delay)  # a slow token endpoint: waiters pile up behind the lock
        self.calls += 1
        return BearerToken(f"tok-{self.calls}", self._clock() + (self.lifetime or 180.0), self.lifetime)

    def adopt_token(self) -> BearerToken | None:
        return self.elsewhere


def test_token_is_kept_until_the_margin_before_expiry() -> None:
    clock = Clock()
    grant = Grant(clock)
    assert grant.token() == "tok-1"
    clock.now += 149.9
    assert grant.token() == "tok-1" and grant.calls == 1
    clock.now += 0.2  # 150.1 s of 180: inside the 30 s margin
    assert grant.token() == "tok-2" and grant.calls == 2 == grant.refresh_count


def test_margin_is_at_most_half_the_stated_lifetime() -> None:
    clock = Clock()
    grant = Grant(clock, margin=30.0, lifetime=4.0)
    grant.token()
    clock.now += 1.9
    assert grant.token() == "tok-1"
    clock.now += 0.2
    assert grant.token() == "tok-2"


def test_without_a_stated_lifetime_the_whole_margin_applies() -> None:
    clock = Clock()
    grant = Grant(clock, margin=30.0, lifetime=None)
    grant.token()
    clock.now += 149.9
    assert grant.token() == "tok-1"
    clock.now += 0.2
    assert grant.token() == "tok-2"


@pytest.mark.parametrize("call", ["token", "renew"])
def test_concurrent_callers_cause_one_renewal(call: str) -> None:
    grant = Grant(Clock(), delay=0.2)
    if call == "renew":
        grant.token()  # tok-1, then every thread saw it refused at once
    results: list[str] = []
    barrier = threading.Barrier(8)
    work: Callable[[], str] = grant.token if call == "token" else lambda: grant.renew(stale="tok-1")

    def worker() -> None:
        barrier.wait()
        results.append(work())

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    expected = "tok-1" if call == "token" else "tok-2"
    assert results == [expected] * 8
    assert grant.calls == (1 if call == "token" else 2)


def test_renew_adopts_a_token_obtained_elsewhere_unless_it_is_the_stale_one() -> None:
    clock = Clock()
    grant = Grant(clock)
    grant.token()
    grant.elsewhere = BearerToken("other", clock.now + 600, 600.0)
    assert grant.renew(stale="tok-1") == "other" and grant.calls == 1
    assert grant.renew(stale="other") == "tok-2"  # the adopted one was refused too: a token call


def _api(refuse: set[str], seen: list[str]) -> Callable[[httpx2.Request], httpx2.Response]:
    def handle(request: httpx2.Request) -> httpx2.Response:
        token = request.headers["Authorization"].removeprefix("Bearer ")
        seen.append(token)
        if token in refuse:
            return httpx2.Response(401, json={"errorMessages": ["token refused"]})
        return httpx2.Response(200, json={"ok": True})

    return handle


def _session(grant: Grant, refuse: set[str], seen: list[str]) -> ApiSession:
    transport = httpx2.MockTransport(_api(refuse, seen))
    client = build_client("https://api.test", SETTINGS, auth=BearerAuth(grant, system="test"), transport=transport)
    return ApiSession(client, system="test", settings=SETTINGS)


def test_a_401_renews_once_and_resends_once() -> None:
    grant, seen = Grant(Clock()), []
    session = _session(grant, {"tok-1"}, seen)
    assert session.request("POST", "/x", json={"a": 1}).json() == {"ok": True}
    assert seen == ["tok-1", "tok-2"] and grant.calls == 2


def test_a_second_401_is_auth_error_after_one_renewal() -> None:
    grant, seen = Grant(Clock()), []
    session = _session(grant, {"tok-1", "tok-2", "tok-3"}, seen)
    with pytest.raises(AuthError):
        session.request("GET", "/x")
    assert seen == ["tok-1", "tok-2"] and grant.calls == 2


def test_a_token_never_shows_in_its_repr() -> None:
    assert "secret" not in repr(BearerToken("secret-value", 1.0, 2.0))


@pytest.mark.parametrize(
    ("raw", "expected"), [(300, 300.0), (2.5, 2.5), (0, 60.0), (-5, 60.0), (True, 60.0), ("300", 60.0), (None, 60.0)]
)
def test_granted_lifetime(raw: object, expected: float) -> None:
    assert granted_lifetime(raw, default=60.0) == expected
