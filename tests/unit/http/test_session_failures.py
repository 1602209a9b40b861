"""ApiSession on the failure path: answers that are not what the API promises, transport errors that may or may not
have reached the server, and 429s that are waited out against a run's budget without using attempts.

The far side here is an ``httpx2.MockTransport``: these are the byte-level shapes (a redirect to a login page, a
body of the wrong type) that no simulator route produces on purpose; the same faults over real HTTP are covered in
tests/integration/ifs and tests/integration/jira.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import httpx2
import pytest

from ml_connector.config.connections import HttpSettings
from ml_connector.errors import ConnectorError, MalformedResponse, RateLimited, Unavailable
from ml_connector.http import ApiSession, RateLimitBudget, rate_limit_scope, response_json
from ml_connector.http.session import may_have_acted

FAST = HttpSettings(max_attempts=3, backoff_initial=0.01, backoff_max=0.02, max_retry_seconds=30)
Handler = Callable[[httpx2.Request], httpx2.Response]


class Observer:
    def __init__(self) -> None:
        self.retries: list[tuple[str, float]] = []

    def on_response(self, system: str, method: str, endpoint: str, status: int, seconds: float) -> None:
        return None

    def on_retry(self, system: str, error: ConnectorError, delay: float) -> None:
        self.retries.append((type(error).__name__, delay))


def session(handler: Handler, settings: HttpSettings = FAST, observer: Observer | None = None) -> ApiSession:
    client = httpx2.Client(base_url="https://jira.example", transport=httpx2.MockTransport(handler))
    client.headers["Accept"] = "application/json"
    return ApiSession(client, system="jira", settings=settings, observer=observer)


def counting(*answers: httpx2.Response | Exception) -> tuple[Handler, list[httpx2.Request]]:
    """A handler giving ``answers`` in turn (the last one forever), recording every request."""
    seen: list[httpx2.Request] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        answer = answers[min(len(seen), len(answers)) - 1]
        if isinstance(answer, Exception):
            raise answer
        return answer

    return handler, seen


HTML = httpx2.Response(200, headers={"Content-Type": "text/html; charset=utf-8"}, content=b"<html>Sign in</html>")
CUT = httpx2.Response(201, headers={"Content-Type": "application/json"}, content=b'{"issues": [{"id": "1000')
OK = httpx2.Response(200, json={"id": "10000", "key": "PROC-1"})


# ------------------------------------------------------------------------------------------------ malformed answers


def test_html_2xx_is_malformed_with_a_clear_message() -> None:
    handler, seen = counting(HTML)
    with pytest.raises(MalformedResponse) as info:
        session(handler).request_json("POST", "/rest/api/3/issue/bulk", json={})
    assert str(info.value) == (
        "jira: expected JSON from POST /rest/api/3/issue/bulk, got text/html (proxy or login page?)"
    )
    assert len(seen) == 1  # a create that got a malformed answer is never resent inside the call
    assert may_have_acted(info.value)


def test_html_2xx_fails_even_a_call_that_expects_no_body() -> None:
    handler, _ = counting(HTML)
    with pytest.raises(MalformedResponse, match="got text/html"):
        session(handler, HttpSettings(max_attempts=1)).request("PUT", "/rest/api/3/issue/1", json={})


def test_redirect_to_a_login_page_is_malformed_and_names_no_query() -> None:
    login = httpx2.Response(302, headers={"Location": "https://sso.example/login?session=s3cret"})
    handler, _ = counting(login)
    with pytest.raises(MalformedResponse) as info:
        session(handler, HttpSettings(max_attempts=1)).request("GET", "/rest/api/3/myself")
    assert "302 redirect to sso.example/login (proxy or login page?)" in str(info.value)
    assert "s3cret" not in str(info.value)


def test_cut_json_is_malformed_and_not_resent_for_a_create() -> None:
    handler, seen = counting(CUT)
    with pytest.raises(MalformedResponse, match=r"invalid JSON from POST /rest/api/3/issue/bulk \(24 bytes"):
        session(handler).request_json("POST", "/rest/api/3/issue/bulk", json={})
    assert len(seen) == 1


@pytest.mark.parametrize(
    ("answer", "expect", "require", "message"),
    [
        (httpx2.Response(200, json=[1, 2]), dict, (), "expected a JSON object from GET /x, got list"),
        (httpx2.Response(200, json={"a": 1}), list, (), "expected a JSON array from GET /x, got dict"),
        (httpx2.Response(200, json={"id": "1"}), dict, ("id", "key"), "answer from GET /x lacks key"),
        (httpx2.Response(200, content=b""), dict, (), "expected JSON from GET /x, got an empty body"),
        (
            httpx2.Response(200, headers={"Content-Type": "text/plain"}, content=b"Service Unavailable"),
            dict,
            (),
            "expected JSON from GET /x, got text/plain",
        ),
        (
            httpx2.Response(200, headers={"Content-Type": "application/json"}, content=b"\xff\xfe{"),
            dict,
            (),
            "invalid JSON from GET /x",
        ),
    ],
)
def test_response_json_shapes(
    answer: httpx2.Response,
    expect: type[dict[str, object]] | type[list[object]],
    require: tuple[str, ...],
    message: str,
) -> None:
    answer.request = httpx2.Request("GET", "https://jira.example/x")
    with pytest.raises(MalformedResponse) as info:
        response_json(answer, system="jira", expect=expect, require=require)
    assert message in str(info.value)


def test_a_malformed_read_is_retried_and_recovers() -> None:
    handler, seen = counting(HTML, CUT, OK)
    observer = Observer()
    _, body = session(handler, observer=observer).request_json("GET", "/rest/api/3/issue/1")
    assert body["key"] == "PROC-1" and len(seen) == 3
    assert [name for name, _ in observer.retries] == ["MalformedResponse", "MalformedResponse"]


def test_a_persistent_malformed_read_gives_up_after_max_attempts() -> None:
    handler, seen = counting(HTML)
    with pytest.raises(MalformedResponse):
        session(handler).request_json("GET", "/rest/api/3/myself")
    assert len(seen) == FAST.max_attempts


def test_html_error_page_does_not_become_the_message() -> None:
    page = httpx2.Response(
        502, headers={"Content-Type": "text/html"}, content=b"<html><body>" + b"x" * 5000 + b"</body></html>"
    )
    handler, _ = counting(page)
    with pytest.raises(Unavailable) as info:
        session(handler, HttpSettings(max_attempts=1)).request("GET", "/rest/api/3/myself")
    assert "body is text/html (proxy or login page?)" in str(info.value) and "xxxx" not in str(info.value)


def test_bulk_errors_as_a_list_do_not_break_error_details() -> None:
    body = {"errors": [{"status": 400, "failedElementNumber": 0}], "errorMessages": "not a list"}
    handler, _ = counting(httpx2.Response(422, json=body))
    with pytest.raises(ConnectorError, match="422 HTTP 422"):
        session(handler).request("POST", "/rest/api/3/issue/bulk", json={})


# ------------------------------------------------------------------------------------------------ transport errors


@pytest.mark.parametrize(
    ("exc", "not_sent", "phrase"),
    [
        (httpx2.ConnectError("refused"), True, "could not connect for POST /rest/api/3/issue/bulk"),
        (httpx2.ReadTimeout("slow"), False, "no answer to POST /rest/api/3/issue/bulk in time (ReadTimeout)"),
        (httpx2.RemoteProtocolError("peer closed"), False, "connection lost before the answer to POST"),
        (httpx2.ReadError("reset"), False, "(ReadError: reset); the server may have acted"),
    ],
)
def test_transport_errors_say_whether_the_server_may_have_acted(exc: Exception, not_sent: bool, phrase: str) -> None:
    handler, seen = counting(exc, OK)
    if not_sent:  # provably never reached the server: even a create is resent
        _, body = session(handler).request_json("POST", "/rest/api/3/issue/bulk", json={})
        assert body["id"] == "10000" and len(seen) == 2
        return
    with pytest.raises(Unavailable) as info:
        session(handler).request_json("POST", "/rest/api/3/issue/bulk", json={})
    assert phrase in str(info.value)
    assert info.value.not_sent is False and may_have_acted(info.value)
    assert len(seen) == 1


def test_a_reset_read_is_retried() -> None:
    handler, seen = counting(httpx2.RemoteProtocolError("peer closed"), httpx2.ReadTimeout("slow"), OK)
    assert session(handler).request_json("GET", "/rest/api/3/issue/1")[1]["id"] == "10000"
    assert len(seen) == 3


# ------------------------------------------------------------------------------------------------ rate limits


def too_many(retry_after: str | None = None) -> httpx2.Response:
    return httpx2.Response(429, headers={"Retry-After": retry_after} if retry_after else {}, json={})


def test_429s_do_not_use_attempts_and_are_counted_as_waiting() -> None:
    handler, seen = counting(*[too_many("0.05")] * 8, OK)
    observer = Observer()
    budget = RateLimitBudget(60)
    with rate_limit_scope(budget):
        session(handler, HttpSettings(max_attempts=2, backoff_initial=0.01), observer).request("POST", "/issue")
    assert len(seen) == 9  # eight 429s with only two attempts allowed, and a create resent: 429 means not acted
    assert [name for name, _ in observer.retries] == ["RateLimited"] * 8
    assert all(delay >= 0.05 for _, delay in observer.retries)
    assert budget.waited == pytest.approx(sum(delay for _, delay in observer.retries))


def test_429_without_retry_after_backs_off_exponentially() -> None:
    handler, _ = counting(*[too_many()] * 5, OK)
    observer = Observer()
    with rate_limit_scope(RateLimitBudget(60)):
        session(handler, HttpSettings(backoff_initial=0.01, backoff_max=0.08), observer).request("GET", "/x")
    delays = [d for _, d in observer.retries]
    caps = [0.01, 0.02, 0.04, 0.08, 0.08]
    assert all(cap / 2 <= d <= cap for d, cap in zip(delays, caps, strict=True)), delays


def test_the_budget_ends_a_storm_with_rate_limited() -> None:
    handler, seen = counting(too_many("0.2"))
    budget = RateLimitBudget(1.0)
    started = time.monotonic()
    with rate_limit_scope(budget), pytest.raises(RateLimited):
        session(handler).request("GET", "/x")
    assert 0.9 <= time.monotonic() - started < 3
    assert len(seen) == 6 and budget.waited == pytest.approx(1.0)  # five waits of 0.2 s fit, the sixth does not


def test_a_wait_longer_than_the_budget_fails_at_once() -> None:
    handler, seen = counting(too_many("3600"))  # e.g. the hourly points quota
    started = time.monotonic()
    with rate_limit_scope(RateLimitBudget(900)), pytest.raises(RateLimited):
        session(handler).request("GET", "/x")
    assert time.monotonic() - started < 1 and len(seen) == 1


def test_stop_ends_a_long_wait_within_a_fraction_of_a_second() -> None:
    handler, seen = counting(too_many("60"))
    stop = threading.Event()
    threading.Timer(0.3, stop.set).start()
    budget = RateLimitBudget(900, stop=stop)
    started = time.monotonic()
    with rate_limit_scope(budget), pytest.raises(RateLimited):
        session(handler).request("GET", "/x")
    assert time.monotonic() - started < 1.5 and len(seen) == 1
    assert budget.waited == pytest.approx(0.3, abs=0.2)  # only what was actually waited counts


def test_stop_also_ends_a_backoff_between_5xx_retries() -> None:
    handler, seen = counting(httpx2.Response(503, headers={"Retry-After": "60"}, json={}))
    stop = threading.Event()
    threading.Timer(0.2, stop.set).start()
    started = time.monotonic()
    with rate_limit_scope(RateLimitBudget(900, stop=stop)), pytest.raises(Unavailable):
        session(handler, HttpSettings(max_attempts=5, max_retry_seconds=600)).request("GET", "/x")
    assert time.monotonic() - started < 1.5 and len(seen) == 1


def test_outside_a_run_429_waits_are_bounded_by_max_retry_seconds() -> None:
    handler, seen = counting(too_many("0.3"))
    started = time.monotonic()
    with pytest.raises(RateLimited):
        session(handler, HttpSettings(max_retry_seconds=1.0, backoff_initial=0.01)).request("GET", "/x")
    assert time.monotonic() - started < 2 and len(seen) == 4


def test_budget_is_shared_by_concurrent_calls() -> None:
    budget = RateLimitBudget(0.5)
    assert budget.wait(0.3)
    assert not budget.wait(0.3)  # would overdraw
    assert budget.wait(0.2) and budget.waited == pytest.approx(0.5)


def test_a_deferral_from_another_calls_429_is_charged_to_the_budget_and_ended_by_stop() -> None:
    handler, seen = counting(OK)
    api = session(handler)
    api.pacer.defer("burst:issue-bulk", 60)  # another thread met a 429 with Retry-After: 60
    stop = threading.Event()
    threading.Timer(0.3, stop.set).start()
    budget = RateLimitBudget(900, stop=stop)
    started = time.monotonic()
    with rate_limit_scope(budget), pytest.raises(RateLimited, match="held back"):
        api.request("POST", "/rest/api/3/issue/bulk", pace_keys=("burst:issue-bulk",))
    assert time.monotonic() - started < 1.5 and seen == []
    assert budget.waited == pytest.approx(0.3, abs=0.2)


def test_a_short_deferral_is_waited_out_then_the_call_goes_out() -> None:
    handler, seen = counting(OK)
    api = session(handler)
    api.pacer.defer("burst:read", 0.2)
    budget = RateLimitBudget(900)
    with rate_limit_scope(budget):
        api.request("GET", "/rest/api/3/myself", pace_keys=("burst:read",))
    assert len(seen) == 1 and 0.1 <= budget.waited <= 0.2
