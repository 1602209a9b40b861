"""Rate limit, login throttle and Host/Origin rules, on a fake clock."""

from __future__ import annotations

import pytest

from ml_connector.web.guard import HostPolicy, LoginThrottle, TokenBuckets, same_origin
from unit.clock import Clock


def test_token_bucket_allows_a_burst_then_the_rate() -> None:
    clock = Clock(1000.0)
    buckets = TokenBuckets(rate=2.0, burst=3, clock=clock)
    assert [buckets.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("a") == pytest.approx(0.5)
    assert buckets.take("b") == 0.0  # per source
    clock.now += 0.5
    assert buckets.take("a") == 0.0


def test_login_throttle_locks_out_exponentially_and_forgets() -> None:
    clock = Clock(1000.0)
    throttle = LoginThrottle(free=5, base_delay=1.0, max_delay=60.0, forget_after=600.0, clock=clock)
    for _ in range(5):
        assert throttle.locked_for("x") == 0.0
        throttle.failed("x")
    assert throttle.locked_for("x") == pytest.approx(1.0)
    clock.now += 1.0
    throttle.failed("x")
    assert throttle.locked_for("x") == pytest.approx(2.0)
    for _ in range(20):
        throttle.failed("x")
    assert throttle.locked_for("x") == pytest.approx(60.0)  # capped
    assert throttle.locked_for("y") == 0.0
    clock.now += 601.0
    assert throttle.locked_for("x") == 0.0  # quiet long enough: forgotten
    throttle.failed("x")
    assert throttle.locked_for("x") == 0.0
    throttle.succeeded("x")


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("connector.example.com", True),
        ("CONNECTOR.example.com.:443", True),
        ("dash.internal:8080", True),
        ("dash.internal:8081", False),
        ("dash.internal", False),
        ("localhost:1234", True),
        ("[::1]:8080", True),
        ("127.0.0.1", True),
        ("evil.example", False),
        ("user@connector.example.com", False),
        ("connector.example.com/x", False),
        ("", False),
        (None, False),
    ],
)
def test_host_policy(host: str | None, allowed: bool) -> None:
    policy = HostPolicy.from_config("https://connector.example.com/", ["dash.internal:8080"])
    assert policy.allows(host) is allowed


def _scope(host: str, *, scheme: str = "http", **headers: str) -> dict[str, object]:
    raw = [(b"host", host.encode())] + [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    return {"type": "http", "scheme": scheme, "headers": raw}


def test_same_origin() -> None:
    assert same_origin(_scope("127.0.0.1:8080", Origin="http://127.0.0.1:8080"), tls_proxy=False) is True
    assert same_origin(_scope("example.com", Origin="http://example.com:80"), tls_proxy=False) is True
    assert same_origin(_scope("example.com", Origin="https://example.com"), tls_proxy=False) is False
    assert same_origin(_scope("example.com", Referer="http://example.com/a?b"), tls_proxy=False) is True
    assert same_origin(_scope("example.com", Referer="http://evil.example/"), tls_proxy=False) is False
    assert same_origin(_scope("example.com", Origin="null", Referer="http://example.com/"), tls_proxy=False) is True
    assert same_origin(_scope("example.com", Origin="null"), tls_proxy=False) is False
    assert same_origin(_scope("example.com"), tls_proxy=False) is None
    proxied = _scope("example.com", Origin="https://example.com", **{"X-Forwarded-Proto": "https"})
    assert same_origin(proxied, tls_proxy=True) is True
    assert same_origin(proxied, tls_proxy=False) is False  # untrusted header ignored
