"""The single response classifier: status codes and error bodies become the error classes of ``errors.py``."""

from __future__ import annotations

import email.utils
import json
import time
from typing import Any

import httpx2

from ml_connector.errors import (
    AuthError,
    ConcurrencyConflict,
    ConnectorError,
    MalformedResponse,
    NotFound,
    RateLimited,
    Rejected,
    Unavailable,
)
from ml_connector.jsonbody import parse_json

_MAX_MESSAGE = 500


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds from now: delta-seconds or an HTTP date; None when absent or unreadable."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


def _where(response: httpx2.Response) -> str:
    return f"{response.request.method} {response.request.url.path}"


def _media_type(response: httpx2.Response) -> str:
    return response.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()


def _what_arrived(response: httpx2.Response) -> str:
    """A short description of a body that is not JSON, e.g. ``text/html (proxy or login page?)``."""
    media = _media_type(response)
    if not response.content:
        return "an empty body"
    if media in {"text/html", "application/xhtml+xml"} or response.content.lstrip()[:1] == b"<":
        return f"{media or 'markup'} (proxy or login page?)"
    return media or "a body without a content type"


def response_json(
    response: httpx2.Response,
    *,
    system: str,
    expect: type[dict[str, Any]] | type[list[Any]] | None = dict,
    require: tuple[str, ...] = (),
) -> Any:
    """The JSON body of a successful response, checked against what the API promises, or ``MalformedResponse``.

    ``expect`` is the top-level type (None: any JSON value); ``require`` names keys an object must have.
    """
    where = _where(response)
    try:
        body = parse_json(response.content)
    except (ValueError, UnicodeDecodeError):
        if "json" in _media_type(response) and response.content:
            raise MalformedResponse(
                f"invalid JSON from {where} ({len(response.content)} bytes; cut off or corrupt?)", system=system
            ) from None
        raise MalformedResponse(f"expected JSON from {where}, got {_what_arrived(response)}", system=system) from None
    if expect is not None and not isinstance(body, expect):
        wanted = "a JSON object" if expect is dict else "a JSON array"
        raise MalformedResponse(f"expected {wanted} from {where}, got {type(body).__name__}", system=system)
    missing = [key for key in require if key not in body] if isinstance(body, dict) else []
    if missing:
        raise MalformedResponse(f"answer from {where} lacks {', '.join(missing)}", system=system)
    return body


def error_details(response: httpx2.Response) -> tuple[str | None, str, dict[str, Any]]:
    """(code, message, details) from IFS (``{"error":{...}}``), Jira (``errorMessages``/``errors``) or OAuth bodies."""
    try:
        body = json.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        if _media_type(response) in {"", "text/plain"} and response.content.lstrip()[:1] != b"<":
            text = response.text.strip()
            return None, (text[:_MAX_MESSAGE] or response.reason_phrase or f"HTTP {response.status_code}"), {}
        return None, f"{response.reason_phrase or 'error'}, body is {_what_arrived(response)}", {}
    if isinstance(body, dict):
        if isinstance(body.get("error"), dict):  # IFS / OData
            err = body["error"]
            return (
                err.get("code"),
                str(err.get("message") or err.get("code") or "error"),
                {"details": err.get("details")},
            )
        if "errorMessages" in body or "errors" in body:  # Jira ErrorCollection
            raw_messages = body.get("errorMessages")
            messages = [str(m) for m in raw_messages] if isinstance(raw_messages, list) else []
            raw_fields = body.get("errors")
            fields: dict[str, Any] = raw_fields if isinstance(raw_fields, dict) else {}
            parts = messages + [f"{k}: {v}" for k, v in fields.items()]
            return (
                None,
                ("; ".join(parts) or f"HTTP {response.status_code}")[:_MAX_MESSAGE],
                {"errors": fields},
            )
        if isinstance(body.get("error"), str):  # OAuth (RFC 6749)
            desc = body.get("error_description") or body["error"]
            return str(body["error"]), str(desc)[:_MAX_MESSAGE], {}
        if "message" in body:
            return body.get("code"), str(body["message"])[:_MAX_MESSAGE], {}
    return None, f"HTTP {response.status_code}", {}


def classify(response: httpx2.Response, *, system: str) -> ConnectorError | None:
    """The error a response stands for, or None for success."""
    status = response.status_code
    if status < 400:
        return None
    code, message, details = error_details(response)
    text = f"{status} {message} ({_where(response)})"
    retry_after = parse_retry_after(response.headers.get("Retry-After"))
    if status == 429:
        return RateLimited(
            text, system=system, retry_after=retry_after, reason=response.headers.get("RateLimit-Reason")
        )
    if status in (401, 403) and code not in {"CSRF_ERROR"}:
        return AuthError(text, system=system, status=status)
    if status == 412:
        return ConcurrencyConflict(text, system=system, status=status, code=code, details=details)
    if status == 404:
        return NotFound(text, system=system, status=status, code=code, details=details)
    if status >= 500 or status == 408 or code == "MI_MODIFIED_ERROR":
        return Unavailable(text, system=system, status=status, retry_after=retry_after)
    return Rejected(text, system=system, status=status, code=code, details=details)


def raise_for_response(response: httpx2.Response, *, system: str) -> httpx2.Response:
    error = classify(response, system=system)
    if error is not None:
        raise error
    return response
