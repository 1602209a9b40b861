"""Webhook delivery checks: admin-webhook HMAC signatures, OAuth-app JWTs, and the delivery identifier.

Admin webhooks with a secret carry ``X-Hub-Signature: <method>=<hex HMAC(secret, raw body)>`` (WebSub style).
Dynamic webhooks of OAuth 2.0 apps carry ``Authorization: Bearer <JWT>`` signed HS256 with the app's client secret.
Delivery is at least once; ``X-Atlassian-Webhook-Identifier`` is stable across retries, so it is the dedupe key (the
webhook inbox stores each identifier once: a redelivery is a no-op there).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Mapping
from typing import Any

import jwt

from ml_connector.errors import AuthError

SIGNATURE_HEADER = "X-Hub-Signature"
IDENTIFIER_HEADER = "X-Atlassian-Webhook-Identifier"
_HASHES: dict[str, Callable[..., Any]] = {"sha256": hashlib.sha256, "sha384": hashlib.sha384, "sha512": hashlib.sha512}


class WebhookVerificationError(AuthError):
    """A delivery that does not prove it came from Jira; never process it."""

    def __init__(self, message: str) -> None:
        super().__init__(message, system="jira", status=401)


def sign_body(body: bytes, secret: str, *, method: str = "sha256") -> str:
    """The ``X-Hub-Signature`` value Jira sends for ``body`` (also used by tests and the simulator's peers)."""
    digest = hmac.new(secret.encode("utf-8"), body, _HASHES[method]).hexdigest()
    return f"{method}={digest}"


def verify_signature(body: bytes, header: str | None, secret: str) -> None:
    """Raise unless ``header`` is a valid HMAC of the *raw* ``body`` under ``secret`` (constant-time compare)."""
    if not secret:
        raise WebhookVerificationError("no webhook secret configured; refusing unsigned deliveries")
    if not header or "=" not in header:
        raise WebhookVerificationError("missing or malformed X-Hub-Signature")
    method, _, received = header.strip().partition("=")
    method = method.lower()
    if method not in _HASHES:
        raise WebhookVerificationError(f"unsupported signature method {method[:16]!r}")
    expected = sign_body(body, secret, method=method).partition("=")[2]
    if not hmac.compare_digest(expected.encode("ascii"), received.strip().lower().encode("ascii", "replace")):
        raise WebhookVerificationError("webhook signature does not match the body")


def verify_jwt(
    authorization: str | None,
    secret: str,
    *,
    leeway: float = 30.0,
    issuer: str | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    """Validate ``Authorization: Bearer <JWT>`` (HS256 with the client secret, ``exp`` required); return its claims."""
    if not secret:
        raise WebhookVerificationError("no client secret configured; cannot verify webhook JWTs")
    if not authorization:
        raise WebhookVerificationError("missing Authorization header on webhook delivery")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() not in {"bearer", "jwt"} or not token:
        raise WebhookVerificationError("webhook Authorization is not a bearer JWT")
    try:
        if now is None:
            claims: dict[str, Any] = jwt.decode(
                token.strip(),
                secret,
                algorithms=["HS256"],
                leeway=leeway,
                issuer=issuer,
                options={"require": ["exp"], "verify_aud": False},
            )
        else:  # an explicit clock (tests, replays): check exp against it instead of the wall clock
            claims = jwt.decode(
                token.strip(),
                secret,
                algorithms=["HS256"],
                issuer=issuer,
                options={"require": ["exp"], "verify_aud": False, "verify_exp": False, "verify_iat": False},
            )
            if float(claims["exp"]) + leeway < now:
                raise jwt.ExpiredSignatureError("Signature has expired")
    except jwt.PyJWTError as exc:
        # The library's message names the failed check, never the token or the key.
        raise WebhookVerificationError(f"webhook JWT rejected: {exc}") from None
    return claims


def changelog_id(payload: Mapping[str, Any]) -> int | None:
    """The delivery's ``changelog.id`` (Jira renders it as a string of digits; it grows with every change), if any.

    Together with the issue's ``fields.updated`` it orders events by the source's time, not by arrival: the delivery
    ``timestamp`` is when Jira sent it, which a retry or a replay changes.
    """
    changelog = payload.get("changelog")
    value = changelog.get("id") if isinstance(changelog, Mapping) else None
    if isinstance(value, bool) or value is None:
        return None
    text = str(value).strip()
    return int(text) if text.isdigit() and len(text) <= 18 else None


def delivery_identifier(headers: Mapping[str, str]) -> str | None:
    for name, value in headers.items():
        if name.lower() == IDENTIFIER_HEADER.lower():
            return value.strip() or None
    return None
