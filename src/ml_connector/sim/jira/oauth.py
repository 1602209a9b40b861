"""OAuth 2.0 (3LO) and basic auth: consent, the token endpoint with rotating refresh tokens, and who a caller is."""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from ml_connector.sim.jira.common import ApiError, Principal

if TYPE_CHECKING:
    from ml_connector.sim.jira.core import JiraSim

_SITE_AVATAR = "https://site-admin-avatar-cdn.prod.public.atl-paas.net/avatars/240/rocket.png"


@dataclass
class OAuthState:
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    access: dict[str, dict[str, Any]] = field(default_factory=dict)
    refresh: dict[str, dict[str, Any]] = field(default_factory=dict)  # token -> {"used": bool, ...}


def _grant_error(status: int, error: str, description: str) -> ApiError:
    return ApiError(status, body={"error": error, "error_description": description})


class OAuth:
    def __init__(self, sim: JiraSim) -> None:
        self.sim = sim
        self.state = OAuthState()

    def authorize(self, params: dict[str, str]) -> str:
        """Consent as the connector's account; return the redirect URL carrying ``code`` and ``state``."""
        with self.sim.lock:
            if params.get("client_id") != self.sim.options.oauth_client_id:
                raise _grant_error(400, "invalid_client", "Unknown client_id.")
            if params.get("response_type") != "code":
                raise _grant_error(400, "unsupported_response_type", "response_type must be code")
            redirect = params.get("redirect_uri")
            if not redirect:
                raise _grant_error(400, "invalid_request", "redirect_uri is required")
            code = secrets.token_urlsafe(24)
            self.state.codes[code] = {
                "redirect_uri": redirect,
                "scope": params.get("scope", ""),
                "expires": self.sim.now() + timedelta(minutes=10),
            }
            sep = "&" if "?" in redirect else "?"
            return redirect + sep + urlencode({"code": code, "state": params.get("state", "")})

    def token(self, form: dict[str, Any]) -> dict[str, Any]:
        with self.sim.lock:
            options = self.sim.options
            if form.get("client_id") != options.oauth_client_id or not hmac.compare_digest(
                str(form.get("client_secret", "")), options.oauth_client_secret
            ):
                raise _grant_error(401, "access_denied", "Unauthorized")
            grant = form.get("grant_type")
            if grant == "authorization_code":
                scope = self._redeem_code(form)
            elif grant == "refresh_token":
                scope = self._redeem_refresh(form)
            else:
                raise _grant_error(400, "unsupported_grant_type", str(grant))
            return self._issue_tokens(scope)

    def _redeem_code(self, form: dict[str, Any]) -> str:
        code = self.state.codes.pop(str(form.get("code", "")), None)
        if code is None or code["expires"] < self.sim.now():
            raise _grant_error(403, "invalid_grant", "Invalid authorization code")
        if form.get("redirect_uri") != code["redirect_uri"]:
            raise _grant_error(403, "invalid_grant", "redirect_uri does not match")
        return str(code["scope"])

    def _redeem_refresh(self, form: dict[str, Any]) -> str:
        entry = self.state.refresh.get(str(form.get("refresh_token", "")))
        if entry is None or entry["used"]:
            raise _grant_error(403, "invalid_grant", "Unknown or invalid refresh token.")
        entry["used"] = True  # rotating refresh tokens: each one works exactly once
        return str(entry["scope"])

    def _issue_tokens(self, scope: str) -> dict[str, Any]:
        access = secrets.token_urlsafe(32)
        lifetime = self.sim.faults.access_token_lifetime_seconds
        self.state.access[access] = {"expires": self.sim.now() + timedelta(seconds=lifetime), "scope": scope}
        out: dict[str, Any] = {"access_token": access, "expires_in": lifetime, "token_type": "Bearer", "scope": scope}
        if "offline_access" in scope.split():
            refresh = secrets.token_urlsafe(32)
            self.state.refresh[refresh] = {"used": False, "scope": scope}
            out["refresh_token"] = refresh
        return out

    def revoke_all(self) -> int:
        """The consenting user (or a site admin) revoked the app in *Connected apps*: every grant of the app stops
        working, its refresh and its access tokens alike; a new consent is the only way back. Returns how many
        refresh tokens were live. (Atlassian offers no API for this, so only the control API can do it.)"""
        with self.sim.lock:
            live = sum(1 for entry in self.state.refresh.values() if not entry["used"])
            self.state.refresh.clear()
            self.state.access.clear()
            return live

    def _live_access(self, token: str) -> dict[str, Any] | None:
        entry = self.state.access.get(token)
        if entry is None or entry["expires"] <= self.sim.now():
            return None
        return entry

    def bearer_principal(self, token: str) -> Principal | None:
        with self.sim.lock:
            if self._live_access(token) is None:
                return None
            return Principal(self.sim.me.account_id, "bearer", self.sim.options.oauth_client_id)

    def basic_principal(self, email: str, token: str) -> Principal | None:
        options = self.sim.options
        if email.lower() == options.email.lower() and hmac.compare_digest(token, options.api_token):
            return Principal(self.sim.me.account_id, "basic")
        return None

    def accessible_resources(self, site_url: str, token: str) -> list[dict[str, Any]]:
        with self.sim.lock:
            entry = self._live_access(token)
            if entry is None:
                raise ApiError(401, body={"code": 401, "message": "Unauthorized"})
            return [
                {
                    "id": self.sim.options.cloud_id,
                    "url": site_url,
                    "name": self.sim.options.site_name,
                    "scopes": entry["scope"].split(),
                    "avatarUrl": _SITE_AVATAR,
                }
            ]
