"""Secret redaction for every log line and audit payload."""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from functools import lru_cache
from typing import Any

REDACTED = "[redacted]"

_SENSITIVE_KEYS = re.compile(
    r"(authorization|password|passwd|secret|token|api[_-]?key|apikey|cookie|credential|assertion|"
    r"client_secret|refresh_token|access_token|id_token|signature|private)",
    re.IGNORECASE,
)
_TEXT_SOURCES: tuple[tuple[str, int], ...] = (
    # Authorization header values
    (r"\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{6,}", re.IGNORECASE),
    # key=value pairs in form bodies, query strings and log text
    (
        r"\b(client_secret|refresh_token|access_token|id_token|api_token|password|code|token)=[^&\s\"',;]+",
        re.IGNORECASE,
    ),
    # "key": "value" inside JSON text
    (
        r"\"(client_secret|refresh_token|access_token|id_token|api_token|password|secret|token)\"\s*:\s*\"[^\"]*\"",
        re.IGNORECASE,
    ),
    # JWT-looking strings anywhere
    (r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*", 0),
)
_TEXT_PATTERNS = [re.compile(source, flags) for source, flags in _TEXT_SOURCES]


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


# Every name the key=value and "key": "value" patterns look for ends in one of these (in any case).
_NAME_ENDINGS = ("token", "code", "password", "secret")


def may_hold_secret(text: str) -> bool:
    """False only for text none of the patterns can match: each needs "eyJ", "bearer"/"basic" in any case, or "="
    or a quote after one of the names (all end in ``_NAME_ENDINGS``): so an IFS ``keyref`` like ``ORDER_NO=PO-1^``
    is ruled out. Non-ASCII text is not ruled out (ignoring case, ``re`` matches U+017F to "s", U+0131 to "i")."""
    if "eyJ" in text or not text.isascii():
        return True
    lowered = text.lower()
    if "bearer" in lowered or "basic" in lowered:
        return True
    return ("=" in text or '"' in text) and any(name in lowered for name in _NAME_ENDINGS)


def redact_text(text: str) -> str:
    if not may_hold_secret(text):  # most text: four pattern scans saved
        return text
    for pattern in _TEXT_PATTERNS:
        text = pattern.sub(_sub_text, text)
    return text


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {k: (REDACTED if _sensitive(k) else v) for k, v in headers.items()}


@lru_cache(maxsize=4096)
def _sensitive(key: str) -> bool:
    # Field names repeat on every record: look each up once.
    return _SENSITIVE_KEYS.search(key) is not None


def redact(value: Any, *, secrets: tuple[str, ...] = ()) -> Any:
    """Redact a JSON-like tree: sensitive keys, secret-looking text and any of the known ``secrets`` verbatim.

    A dict or list with nothing to redact comes back as itself, not a copy (so a value the store already made
    JSON-safe stays marked as such); callers must not change what they get back."""
    if value is None:
        return None
    if type(value) is str and not secrets:  # the common leaf, before the slower ABC checks
        return redact_text(value)
    if isinstance(value, (dict, Mapping)):  # dict first (the store's SafeJson too): the ABC check is slow
        return _redact_mapping(value, secrets)
    if isinstance(value, list | tuple):
        if not secrets and type(value) is list and _untouched(value):
            return value
        items = [v if v is None or _plain(v, secrets) else redact(v, secrets=secrets) for v in value]
        return value if isinstance(value, list) and _same(items, value) else items
    if isinstance(value, str):
        for secret in secrets:
            if secret and len(secret) >= 4:
                value = value.replace(secret, REDACTED)
        return redact_text(value)
    return value


@lru_cache(maxsize=1024)
def _any_sensitive(keys: tuple[Any, ...]) -> bool:
    # The same few key sets (a draft, a row of one entity set) come back for every record: decided once each.
    return any(isinstance(k, str) and _sensitive(k) for k in keys)


def _untouched(values: Collection[Any]) -> bool:
    """True when redaction leaves every one of ``values`` as it is, decided with one text check for all the text
    among them instead of one per value (``_any_may_hold_secret``)."""
    texts = [v for v in values if type(v) is str]
    if _any_may_hold_secret(texts):
        return False
    return len(texts) == len(values) or all(redact(v) is v for v in values if type(v) not in _LEAVES)


def _any_may_hold_secret(texts: list[str]) -> bool:
    """``any(may_hold_secret(t) for t in texts)`` in one check of the texts joined by NUL, which no trigger spans,
    but for one: "=" or a quote in one text and a name in another. So a joined text that says yes is checked again
    text by text."""
    return may_hold_secret("\x00".join(texts)) and any(may_hold_secret(text) for text in texts)


# Values ``redact`` gives back as they are without a look (text is judged by ``may_hold_secret``): numbers, mostly,
# which would each go through the slow ABC checks of ``redact`` to come back unchanged.
_LEAVES = frozenset({str, int, float, bool, type(None)})


def _redact_mapping(value: Mapping[Any, Any], secrets: tuple[str, ...]) -> Mapping[Any, Any]:
    if not secrets and isinstance(value, dict) and not _any_sensitive(tuple(value)) and _untouched(value.values()):
        return value
    out: dict[Any, Any] = {}
    changed = not isinstance(value, dict)
    for k, v in value.items():
        if isinstance(k, str) and _sensitive(k) and v not in (None, ""):
            new: Any = REDACTED
        elif v is None or _plain(v, secrets):
            new = v  # the common leaves, without a redact call each
        else:
            new = redact(v, secrets=secrets)
        changed = changed or new is not v
        out[k] = new
    return out if changed else value


def _plain(value: Any, secrets: tuple[str, ...]) -> bool:
    """Text with nothing to redact (no known secrets to look for, and no pattern can match it)."""
    return type(value) is str and not secrets and not may_hold_secret(value)


def _same(new: Iterable[Any], old: Iterable[Any]) -> bool:
    return all(a is b for a, b in zip(new, old, strict=True))
