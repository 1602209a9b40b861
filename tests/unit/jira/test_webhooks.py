from __future__ import annotations

import time

import jwt
import pytest

from ml_connector.jira.webhooks import (
    WebhookVerificationError,
    delivery_identifier,
    sign_body,
    verify_jwt,
    verify_signature,
)


def test_atlassian_test_vector() -> None:
    # From Atlassian's "Secure admin webhooks" documentation.
    assert sign_body(b"Hello World!", "It's a Secret to Everybody") == (
        "sha256=a4771c39fbe90f317c7824e83ddef3caae9cb3d976c214ace1f2937e133263c9"
    )


def test_signature_checks() -> None:
    body = b'{"webhookEvent":"jira:issue_updated"}'
    good = sign_body(body, "s3cret")
    verify_signature(body, good, "s3cret")
    verify_signature(body, good.upper().replace("SHA256", "sha256"), "s3cret")  # hex case does not matter
    for header in (None, "", "sha256", "md5=abc", sign_body(body, "wrong"), sign_body(body + b" ", "s3cret")):
        with pytest.raises(WebhookVerificationError):
            verify_signature(body, header, "s3cret")
    with pytest.raises(WebhookVerificationError):
        verify_signature(body, good, "")


def test_jwt_checks() -> None:
    now = time.time()
    token = jwt.encode({"iss": "jira", "exp": int(now) + 60}, "client-secret-of-at-least-32-bytes!!", algorithm="HS256")
    assert verify_jwt(f"Bearer {token}", "client-secret-of-at-least-32-bytes!!")["iss"] == "jira"
    wrong = jwt.encode({"exp": int(now) + 60}, "other-secret-of-at-least-32-bytes!!!", algorithm="HS256")
    expired = jwt.encode({"exp": int(now) - 3600}, "client-secret-of-at-least-32-bytes!!", algorithm="HS256")
    no_exp = jwt.encode({"iss": "jira"}, "client-secret-of-at-least-32-bytes!!", algorithm="HS256")
    none_alg = jwt.encode({"exp": int(now) + 60}, None, algorithm="none")
    for header in (None, "Basic abc", f"Bearer {wrong}", f"Bearer {expired}", f"Bearer {no_exp}", f"Bearer {none_alg}"):
        with pytest.raises(WebhookVerificationError) as info:
            verify_jwt(header, "client-secret-of-at-least-32-bytes!!")
        assert "client-secret-of-at-least-32-bytes!!" not in str(info.value)
    with pytest.raises(WebhookVerificationError):
        verify_jwt(f"Bearer {token}", "client-secret-of-at-least-32-bytes!!", now=now + 3600)


def test_delivery_identifier() -> None:
    assert delivery_identifier({"X-Atlassian-Webhook-Identifier": "7"}) == "7"
    assert delivery_identifier({"x-atlassian-webhook-identifier": "  "}) is None
    assert delivery_identifier({"x-atlassian-webhook-identifier": " 42 "}) == "42"
    assert delivery_identifier({}) is None
