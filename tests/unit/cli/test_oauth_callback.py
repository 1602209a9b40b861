"""The consent redirect: parsing what the listener received or what the admin pasted, and the state check."""

from __future__ import annotations

import pytest

from ml_connector.cli.oauth_callback import Callback, parse_listen, parse_pasted
from ml_connector.errors import AuthError, ConfigError


def test_a_pasted_redirect_url_yields_code_and_state() -> None:
    callback = parse_pasted(" http://127.0.0.1:8765/callback?code=abc&state=xyz \n")
    assert callback == Callback(code="abc", state="xyz")
    assert callback.checked_code("xyz") == "abc"


def test_a_bare_code_carries_no_state() -> None:
    assert parse_pasted("abc") == Callback(code="abc", state=None)


def test_a_redirect_for_another_request_is_refused_before_its_error_is_read() -> None:
    with pytest.raises(AuthError, match="different state"):
        Callback(code=None, state="other", error="access_denied").checked_code("mine")


def test_a_declined_consent_names_the_reason() -> None:
    callback = Callback.from_query("error=access_denied&error_description=User+did+not+authorize&state=s")
    with pytest.raises(AuthError, match=r"consent was not given: access_denied \(User did not authorize\)"):
        callback.checked_code("s")


def test_a_redirect_without_code_is_refused() -> None:
    with pytest.raises(AuthError, match="no code"):
        Callback(code=None, state="s").checked_code("s")


@pytest.mark.parametrize(
    ("value", "expected"), [("127.0.0.1:8765", ("127.0.0.1", 8765)), ("[::1]:9000", ("::1", 9000))]
)
def test_listen_address(value: str, expected: tuple[str, int]) -> None:
    assert parse_listen(value) == expected


@pytest.mark.parametrize("value", ["8765", "localhost", "host:port"])
def test_listen_address_needs_host_and_port(value: str) -> None:
    with pytest.raises(ConfigError, match="HOST:PORT"):
        parse_listen(value)


def test_a_pasted_denial_is_reported_as_such() -> None:
    pasted = parse_pasted("http://127.0.0.1:8765/callback?error=access_denied&state=s")
    with pytest.raises(AuthError, match="consent was not given"):
        pasted.checked_code(pasted.state)
