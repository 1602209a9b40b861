"""IFS's response shapes: OData JSON, the ``{"error": {...}}`` body, 401 challenges, 429s and OAuth errors."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from starlette.responses import Response

JSON_TYPE = "application/json;odata.metadata=minimal"
IEEE754_JSON_TYPE = JSON_TYPE + ";IEEE754Compatible=true"
DEFAULT_CODES = {
    400: "ODP_UNSUPPORTED_URL",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "ODP_RESOURCE_NOTFOUND",
    405: "ODP_METHOD_NOT_ALLOWED",
    409: "ODP_CONFLICT",
    412: "ODP_PRECONDITION_FAILED",
    428: "ODP_MISSING_PRECONDITION",
    429: "TOO_MANY_REQUESTS",
    500: "INTERNAL_SERVER_ERROR",
    501: "ODP_NOT_IMPLEMENTED",
    502: "BAD_GATEWAY",
    503: "MI_MODIFIED_ERROR",
    504: "GATEWAY_TIMEOUT",
}
DEFAULT_MESSAGES = {
    503: "The metadata of the projection has been modified; please retry the request.",
    429: "Too many requests; retry later.",
}


def json_response(
    body: Any, status: int = 200, headers: Mapping[str, str] | None = None, media_type: str = JSON_TYPE
) -> Response:
    content = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    out = {"OData-Version": "4.0", **(headers or {})}
    return Response(content, status_code=status, headers=out, media_type=media_type)


def ieee754_compatible(media: str | None) -> bool:
    """Whether an Accept or Content-Type value carries the OData format parameter ``IEEE754Compatible=true``
    (Edm.Int64 and Edm.Decimal travel as JSON strings then)."""
    for media_range in (media or "").split(","):
        for param in media_range.split(";")[1:]:
            name, _, value = param.partition("=")
            if name.strip().lower() == "ieee754compatible" and value.strip().strip('"').lower() == "true":
                return True
    return False


def ifs_error(status: int, message: str, code: str | None = None, headers: Mapping[str, str] | None = None) -> Response:
    body = {"error": {"code": code or DEFAULT_CODES.get(status, "ERROR"), "message": message, "details": []}}
    return json_response(body, status, headers, media_type="application/json")


def unauthorized(realm: str, why: str) -> Response:
    challenge = f'Bearer realm="{realm}"'
    if why in ("invalid", "expired"):
        text = "The access token expired" if why == "expired" else "The access token is invalid or revoked"
        challenge += f', error="invalid_token", error_description="{text}"'
    else:
        text = "Authentication required: send a bearer access token"
    return ifs_error(401, text, "UNAUTHORIZED", {"WWW-Authenticate": challenge})


def rate_limited(retry_after: float | None) -> Response:
    """A 429; ``retry_after`` None sends no ``Retry-After`` (IFS documents no rate-limit headers at all)."""
    headers = {} if retry_after is None else {"Retry-After": str(max(0, round(retry_after)))}
    return ifs_error(429, DEFAULT_MESSAGES[429], headers=headers)


def oauth_error(status: int, error: str, description: str) -> Response:
    return json_response({"error": error, "error_description": description}, status, media_type="application/json")
