"""The single response classifier: status codes and error bodies become the error classes of ``errors.py``."""

from __future__ import annotations

import email.utils
import time
from typing import Any

import httpx2

from ml_connector.errors import (
    AuthError,
    ConcurrencyConflict,
    ConnectorError,
    NotFound,
    RateLimited,
    Rejected,
    Unavailable,
)

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


def error_details(response: httpx2.Response) -> tuple[str | None, str, dict[str, Any]]:
    """(code, message, details) from IFS (``{"error":{...}}``), Jira (``errorMessages``/``errors``) or OAuth bodies."""
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip()
        return None, (text[:_MAX_MESSAGE] or response.reason_phrase or f"HTTP {response.status_code}"), {}
    if isinstance(body, dict):
        if isinstance(body.get("error"), dict):  # IFS / OData
            err = body["error"]
            return (
                err.get("code"),
                str(err.get("message") or err.get("code") or "error"),
                {"details": err.get("details")},
            )
        if "errorMessages" in body or "errors" in body:  # Jira ErrorCollection
            messages = [str(m) for m in body.get("errorMessages") or []]
            fields = body.get("errors") or {}
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
    where = f"{response.request.method} {response.request.url.path}"
    text = f"{status} {message} ({where})"
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
