"""IFS ETags: ``W/"`` + base64(``W/"<objid>:<objversion>"``) + ``"``.

The ETag is opaque for If-Match (we always send it back verbatim), but decoding it gives the objversion, the only
row version IFS exposes; the engine may log or compare it. Objversion is a ``yyyymmddhh24miss`` timestamp for most
LUs and a plain counter for some, so it is kept as text.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

_OUTER = re.compile(r'^W/"(?P<payload>[^"]*)"$')
_INNER = re.compile(r'^W/"(?P<objid>[^:"]+):(?P<objversion>[^"]*)"$')


@dataclass(frozen=True)
class EtagInfo:
    objid: str
    objversion: str


def decode_etag(etag: str | None) -> EtagInfo | None:
    """The (objid, objversion) inside an IFS ETag, or None when it is not one (``*``, foreign or garbled)."""
    if not etag:
        return None
    outer = _OUTER.match(etag.strip())
    if not outer:
        return None
    payload = outer["payload"]
    try:
        inner_text = base64.b64decode(payload + "=" * (-len(payload) % 4), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    inner = _INNER.match(inner_text)
    if not inner:
        return None
    return EtagInfo(inner["objid"], inner["objversion"])


def encode_etag(objid: str, objversion: str) -> str:
    """The inverse of :func:`decode_etag` (tests and tools; the client never invents ETags)."""
    inner = f'W/"{objid}:{objversion}"'.encode()
    return 'W/"' + base64.b64encode(inner).decode("ascii") + '"'
