"""The one bearer-token mechanism: a cached token renewed before it expires, and the ``httpx2.Auth`` that sends it.

A grant (IFS client credentials, Jira OAuth 3LO) subclasses :class:`BearerTokenCache` and implements
:meth:`~BearerTokenCache.fetch_token`, its token call. The cache adds what every grant needs:

* **Expiry margin.** A token is renewed ``margin`` seconds before it expires, capped at half its lifetime when the
  issuer stated one: a 4 s token with a 30 s margin would otherwise be renewed on every call.
* **Single flight.** Renewals run one at a time under one lock; a caller that waited re-checks whether somebody else
  already replaced the token it saw fail, so N concurrent callers cause one token call (a rotating refresh token
  may be used only once).
* **401, renew once.** :class:`BearerAuth` answers a 401 with one renewal and one resend; a second 401 goes back to
  the session, which turns it into ``AuthError``.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Generator
from dataclasses import dataclass

import httpx2
import structlog

log = structlog.get_logger("ml_connector.http.bearer")


@dataclass(frozen=True)
class BearerToken:
    """One access token; ``expires_at`` is on the cache's clock, ``lifetime`` what the issuer granted (if known)."""

    value: str
    expires_at: float
    lifetime: float | None = None

    def __repr__(self) -> str:  # never show a token in a traceback or a log
        return f"BearerToken(expires_at={self.expires_at!r}, lifetime={self.lifetime!r})"


def granted_lifetime(expires_in: object, *, default: float) -> float:
    """A token answer's ``expires_in`` in seconds; ``default`` when it is missing, not a number or not positive."""
    if isinstance(expires_in, int | float) and not isinstance(expires_in, bool) and expires_in > 0:
        return float(expires_in)
    return default


class BearerTokenCache(ABC):
    """Thread-safe cache of one grant's access token; subclasses supply :meth:`fetch_token`."""

    def __init__(self, *, margin: float, clock: Callable[[], float]) -> None:
        self.refresh_margin = margin
        self._clock = clock
        self._lock = threading.Lock()
        self._bearer: BearerToken | None = None
        self.refresh_count = 0

    @abstractmethod
    def fetch_token(self) -> BearerToken:
        """The grant's token call; runs under the renewal lock, so at most one is in flight."""

    def adopt_token(self) -> BearerToken | None:
        """A token obtained elsewhere (another process sharing the grant), tried before a token call."""
        return None

    def margin_for(self, lifetime: float | None) -> float:
        """How long before expiry a token of ``lifetime`` seconds (None: unknown) is renewed."""
        return self.refresh_margin if lifetime is None else min(self.refresh_margin, lifetime / 2)

    def fresh(self, token: BearerToken) -> bool:
        """True while ``token`` is outside its renewal margin (an empty one never is)."""
        return bool(token.value) and self._clock() < token.expires_at - self.margin_for(token.lifetime)

    def token(self) -> str:
        """A token valid for at least the margin; renews first when needed."""
        current = self._bearer
        if current is not None and self.fresh(current):
            return current.value
        return self.renew(stale=current.value if current else None)

    def renew(self, *, stale: str | None) -> str:
        """A token other than ``stale``: the one somebody else renewed meanwhile, an adopted one, or a new one."""
        with self._lock:
            current = self._bearer
            if current is not None and current.value != stale and self.fresh(current):
                return current.value
            adopted = self.adopt_token()
            if adopted is not None and adopted.value != stale and self.fresh(adopted):
                self._bearer = adopted
                return adopted.value
            fetched = self.fetch_token()
            self._bearer = fetched
            self.refresh_count += 1
            return fetched.value

    def _hold(self, token: BearerToken | None) -> None:
        """Make ``token`` the cached one: a seed, or a grant replaced outside :meth:`renew` (under ``_lock``)."""
        self._bearer = token if token is not None and token.value else None


class BearerAuth(httpx2.Auth):
    """Adds ``Authorization: Bearer``; a 401 renews the token once (single flight) and resends once."""

    requires_request_body = True  # the body must be replayable for the resend

    def __init__(self, tokens: BearerTokenCache, *, system: str) -> None:
        self.tokens = tokens
        self.system = system

    def auth_flow(self, request: httpx2.Request) -> Generator[httpx2.Request, httpx2.Response, None]:
        token = self.tokens.token()
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code != 401:
            return
        # Revoked, the server's clock ahead of ours, a restarted IAM: the token is refused, not the grant.
        log.info("http.token_refused", system=self.system, path=request.url.path)
        request.headers["Authorization"] = f"Bearer {self.tokens.renew(stale=token)}"
        yield request
