"""Compact JSON through orjson, for text whose form nobody reads back as text: HTTP request bodies and the store's
JSON columns (read back as values). Hashed or digested JSON keeps the standard library's form (``mapping.issue``,
``store.audit``): orjson cannot write its separators.

orjson writes the same JSON value as ``json.dumps`` several times faster (bulk-create bodies and drafts are most of
the JSON a backfill writes). Where the two would differ the standard library decides: what orjson refuses (integers
past 64 bits, keys that are not text, lone surrogates, datetimes and dataclasses, which ``json.dumps`` refuses too)
and NaN or infinity, which orjson writes as null while ``json.dumps(allow_nan=False)`` refuses them.
"""

from __future__ import annotations

import json
import math
from typing import Any

import orjson

_STRICT = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS  # refused (no default): json.dumps decides


def compact_json(value: Any, *, finite: bool = False) -> bytes:
    """``value`` as UTF-8 JSON, the value ``json.dumps(value, ensure_ascii=False, separators=(",", ":"),
    allow_nan=False)`` writes (httpx2's encoding of a ``json=`` body), with its errors for what it refuses.
    ``finite``: the caller knows every float in ``value`` is finite (``store.db.json_safe`` made it so)."""
    try:
        body = orjson.dumps(value, option=_STRICT)
    except orjson.JSONEncodeError:
        return _standard(value)
    if not finite and b"null" in body and _has_non_finite(value):  # only then can a null stand for NaN or infinity
        return _standard(value)
    return body


def _standard(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")


def _has_non_finite(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(_has_non_finite(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_has_non_finite(v) for v in value)
    return False
