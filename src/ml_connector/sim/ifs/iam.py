"""IAM: the realm's OAuth2 client-credentials token endpoint and its OpenID discovery document."""

from __future__ import annotations

import base64
import binascii
from urllib.parse import parse_qsl, unquote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ml_connector.sim.ifs.responses import json_response, oauth_error
from ml_connector.sim.ifs.simulator import IfsSimulator

_BAD_CLIENT = "Invalid client or Invalid client credentials"
REFRESH_EXPIRES_IN = 1800  # the refresh lifetime in IFS's documented token answer (30 minutes)


class Iam:
    def __init__(self, sim: IfsSimulator) -> None:
        self.sim = sim

    def routes(self) -> list[Route]:
        prefix = "/auth/realms/{realm}"
        return [
            Route(f"{prefix}/protocol/openid-connect/token", self.token, methods=["POST"]),
            Route(f"{prefix}/.well-known/openid-configuration", self.discovery, methods=["GET"]),
        ]

    def _realm_or_404(self, request: Request) -> Response | None:
        if request.path_params["realm"] != self.sim.options.realm:
            return json_response(
                {"error": "Realm does not exist", "error_description": "Realm does not exist"},
                404,
                media_type="application/json",
            )
        return None

    def _issuer(self, request: Request) -> str:
        return f"{str(request.base_url).rstrip('/')}/auth/realms/{self.sim.options.realm}"

    async def token(self, request: Request) -> Response:
        refused = self._realm_or_404(request)
        if refused is not None:
            return refused
        if "application/x-www-form-urlencoded" not in request.headers.get("content-type", ""):
            return oauth_error(400, "invalid_request", "Content-Type must be application/x-www-form-urlencoded")
        form = dict(parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True))
        client_id, secret = form.get("client_id"), form.get("client_secret")
        basic = request.headers.get("authorization", "")
        if basic.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(basic[6:].strip()).decode("utf-8")
                client_id, _, secret = decoded.partition(":")
                client_id, secret = unquote(client_id), unquote(secret)
            except (ValueError, binascii.Error):
                return oauth_error(401, "invalid_client", _BAD_CLIENT)
        if form.get("grant_type") != "client_credentials":
            return oauth_error(400, "unsupported_grant_type", "Unsupported grant_type")
        options = self.sim.options
        clients = {options.client_id: options.client_secret, **options.extra_clients}
        if not client_id or clients.get(client_id) != secret:
            return oauth_error(401, "unauthorized_client", _BAD_CLIENT)
        scope = form.get("scope") or "email profile"
        access, lifetime = self.sim.issue_token(client_id, scope, self._issuer(request))
        body = {
            "access_token": access,
            "expires_in": lifetime,
            "refresh_expires_in": REFRESH_EXPIRES_IN,
            "token_type": "Bearer",
            "not-before-policy": 0,
            "scope": scope,
        }
        return json_response(
            body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"}, media_type="application/json"
        )

    async def discovery(self, request: Request) -> Response:
        refused = self._realm_or_404(request)
        if refused is not None:
            return refused
        issuer = self._issuer(request)
        oidc = f"{issuer}/protocol/openid-connect"
        return json_response(
            {
                "issuer": issuer,
                "authorization_endpoint": f"{oidc}/auth",
                "token_endpoint": f"{oidc}/token",
                "introspection_endpoint": f"{oidc}/token/introspect",
                "userinfo_endpoint": f"{oidc}/userinfo",
                "end_session_endpoint": f"{oidc}/logout",
                "jwks_uri": f"{oidc}/certs",
                "grant_types_supported": ["authorization_code", "client_credentials", "refresh_token", "password"],
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
                "scopes_supported": ["openid", "microprofile-jwt", "email", "profile"],
            },
            media_type="application/json",
        )
