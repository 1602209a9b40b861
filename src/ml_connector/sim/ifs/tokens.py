"""IAM tokens: signed client-credentials access tokens, their lifetime on the simulator clock, and revocation."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass

import jwt


@dataclass(frozen=True)
class TokenInfo:
    client_id: str
    expires_at: float  # simulator-clock epoch seconds
    scope: str


class TokenStore:
    """Not locked itself: the simulator calls it with its lock held."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.tokens: dict[str, TokenInfo] = {}
        self.key = secrets.token_bytes(32)

    def issue(self, client_id: str, scope: str, issuer: str, lifetime: int) -> str:
        issued = self.clock()
        claims = {
            "exp": int(issued + lifetime),
            "iat": int(issued),
            "jti": secrets.token_hex(8),
            "iss": issuer,
            "aud": "account",
            "sub": f"service-account-{client_id}",
            "typ": "Bearer",
            "azp": client_id,
            "preferred_username": f"service-account-{client_id}".lower(),
            "scope": scope,
            "clientId": client_id,
        }
        token = jwt.encode(claims, self.key, algorithm="HS256")
        self.tokens[token] = TokenInfo(client_id, issued + lifetime, scope)
        return token

    def check(self, token: str | None) -> tuple[TokenInfo | None, str]:
        """(info, "") for a valid token, else (info or None, why it is refused)."""
        if not token:
            return None, "missing"
        info = self.tokens.get(token)
        if info is None:
            return None, "invalid"
        if self.clock() >= info.expires_at:
            return info, "expired"
        return info, ""

    def revoke_all(self) -> int:
        n = len(self.tokens)
        self.tokens.clear()
        return n
