"""Secret redaction for every log line and audit payload."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

REDACTED = "[redacted]"

_SENSITIVE_KEYS = re.compile(
    r"(authorization|password|passwd|secret|token|api[_-]?key|apikey|cookie|credential|assertion|"
    r"client_secret|refresh_token|access_token|id_token|signature|private)",
    re.IGNORECASE,
)
_TEXT_PATTERNS = [
    # Authorization header values
    re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{6,}"),
    # key=value pairs in form bodies, query strings and log text
    re.compile(
        r"(?i)\b(client_secret|refresh_token|access_token|id_token|api_token|password|code|token)"
        r"=[^&\s\"',;]+"
    ),
    # "key": "value" inside JSON text
    re.compile(
        r"(?i)\"(client_secret|refresh_token|access_token|id_token|api_token|password|secret|token)\"\s*:\s*\"[^\"]*\""
    ),
    # JWT-looking strings anywhere
    re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"),
]


def _sub_text(match: re.Match[str]) -> str:
    whole = match.group(0)
    if whole.startswith("eyJ"):
        return REDACTED
    if whole.startswith('"'):
        key = match.group(1)
        return f'"{key}": "{REDACTED}"'
    if "=" in whole:
        return f"{match.group(1)}={REDACTED}"
    return f"{match.group(1)} {REDACTED}"


def redact_text(text: str) -> str:
    for pattern in _TEXT_PATTERNS:
        text = pattern.sub(_sub_text, text)
    return text


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {k: (REDACTED if _SENSITIVE_KEYS.search(k) else v) for k, v in headers.items()}


def redact(value: Any, *, secrets: tuple[str, ...] = ()) -> Any:
    """Redact a JSON-like tree: sensitive keys, secret-looking text and any of the known ``secrets`` verbatim."""
    if isinstance(value, Mapping):
        return {
            k: (
                REDACTED
                if isinstance(k, str) and _SENSITIVE_KEYS.search(k) and v not in (None, "")
                else redact(v, secrets=secrets)
            )
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(v, secrets=secrets) for v in value]
    if isinstance(value, str):
        for secret in secrets:
            if secret and len(secret) >= 4:
                value = value.replace(secret, REDACTED)
        return redact_text(value)
    return value
