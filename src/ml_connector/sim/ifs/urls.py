"""URL parsing for the projections: resource paths with quoted keys, system query options, skiptokens, targets.

Paths are parsed from the raw (still percent-encoded) request path, so keys containing ``/`` survive routing.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote, unquote

from starlette.datastructures import Headers
from starlette.types import Scope

from ml_connector.sim.ifs.odata import ODataError, PropType, parse_key_predicate
from ml_connector.sim.ifs.schema import BASE_PATH, KINDS, EntityKind, EntitySet, Projection
from ml_connector.sim.ifs.store import KindStore, OrderSpec, Record, coerce, to_wire

SYSTEM_OPTIONS = frozenset(
    {"$filter", "$select", "$orderby", "$top", "$skip", "$count", "$expand", "$skiptoken", "$format"}
)
NOT_IMPLEMENTED_OPTIONS = frozenset({"$search", "$apply", "$compute", "$levels", "$deltatoken"})
_QUERY_SAFE = "$',()=:*/@;!"
PropsOf = Callable[[EntityKind, Projection], dict[str, PropType]]


def not_found(message: str) -> ODataError:
    return ODataError(message, status=404, code="ODP_RESOURCE_NOTFOUND")


def _skip_string(text: str, i: int) -> int:
    """Index after the string literal starting at ``text[i] == "'"`` (doubled quotes stay inside)."""
    i += 1
    while i < len(text):
        if text[i] == "'":
            if i + 1 < len(text) and text[i + 1] == "'":
                i += 2
                continue
            return i + 1
        i += 1
    raise ODataError(f"Malformed Request: unterminated string literal in '{text}'")


def split_resource_path(text: str) -> list[tuple[str, str | None]]:
    """``Set(K='a/b')/Nav`` -> [("Set", "K='a/b'"), ("Nav", None)]; quotes and parentheses are respected."""
    segments: list[tuple[str, str | None]] = []
    i, n = 0, len(text)
    while i < n:
        start = i
        while i < n and text[i] not in "(/":
            i += 1
        name = text[start:i]
        if not name:
            raise not_found(f"Malformed Request: empty path segment in '{text}'")
        key: str | None = None
        if i < n and text[i] == "(":
            depth, j = 1, i + 1
            while j < n and depth:
                c = text[j]
                if c == "'":
                    j = _skip_string(text, j)
                    continue
                depth += (c == "(") - (c == ")")
                j += 1
            if depth:
                raise ODataError(f"Malformed Request: unbalanced parentheses in '{text}'")
            key = text[i + 1 : j - 1]
            i = j
        segments.append((name, key))
        if i < n:
            if text[i] != "/":
                raise ODataError(f"Malformed Request: unexpected '{text[i]}' in '{text}'")
            i += 1
            if i == n:
                break
    return segments


def collapse_keys(path: str) -> str:
    """Replace every parenthesised key predicate with ``(...)`` (for request-log endpoint names)."""
    out: list[str] = []
    i, n = 0, len(path)
    try:
        while i < n:
            c = path[i]
            if c == "(":
                depth, j = 1, i + 1
                while j < n and depth:
                    if path[j] == "'":
                        j = _skip_string(path, j)
                        continue
                    depth += (path[j] == "(") - (path[j] == ")")
                    j += 1
                out.append("(...)")
                i = j
            else:
                out.append(c)
                i += 1
    except ODataError:
        return path
    return "".join(out)


def endpoint_name(method: str, path: str) -> str:
    rel = path[len(BASE_PATH) + 1 :] if path.startswith(BASE_PATH + "/") else path.lstrip("/")
    return f"{method} {collapse_keys(rel)}"


def decoded_raw_path(scope: Scope) -> tuple[str, str]:
    """(raw percent-encoded path, decoded path) of the request."""
    raw = scope.get("raw_path")
    raw_text = raw.decode("latin-1") if raw else quote(scope["path"])
    raw_text = raw_text.split("?", 1)[0]
    return raw_text, unquote(raw_text, errors="strict")


def system_options(params: list[tuple[str, str]]) -> dict[str, str]:
    seen: dict[str, str] = {}
    for name, value in params:
        if not name.startswith("$"):
            continue
        if name in NOT_IMPLEMENTED_OPTIONS:
            raise ODataError(f"The query option '{name}' is not supported", status=501, code="ODP_NOT_IMPLEMENTED")
        if name not in SYSTEM_OPTIONS:
            raise ODataError(f"Malformed Request: unknown system query option '{name}'")
        if name in seen:
            raise ODataError(f"Malformed Request: the query option '{name}' is given twice")
        seen[name] = value
    return seen


def int_option(options: Mapping[str, str], name: str) -> int | None:
    text = options.get(name)
    if text is None:
        return None
    if not text.isdigit():
        raise ODataError(f"Malformed Request: {name} must be a non-negative integer, got '{text}'")
    return int(text)


def max_page_size(headers: Headers) -> int | None:
    for prefer in headers.getlist("prefer"):
        for part in prefer.split(","):
            name, _, value = part.strip().partition("=")
            if name.strip().lower() == "odata.maxpagesize":
                value = value.strip().strip('"')
                if not value.isdigit() or int(value) < 1:
                    raise ODataError(f"Malformed Request: invalid odata.maxpagesize '{value}'")
                return int(value)
    return None


def prefers_minimal(headers: Headers) -> bool:
    return any("return=minimal" in p.replace(" ", "").lower() for p in headers.getlist("prefer"))


def encode_skiptoken(order: OrderSpec, record: Record) -> str:
    values = [to_wire(record.values.get(p)) for p, _ in order]
    payload = {"o": _order_text(order), "v": values, "k": list(record.key)}
    raw = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_skiptoken(token: str, order: OrderSpec, kind: EntityKind) -> tuple[Any, ...]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        payload = json.loads(raw)
        if payload["o"] != _order_text(order) or len(payload["v"]) != len(order):
            raise ODataError("Malformed Request: the $skiptoken does not belong to this $orderby")
        values = {
            p: coerce(p, kind.props[p], v) if kind.props[p] != "enum" else v
            for (p, _), v in zip(order, payload["v"], strict=True)
        }
        key = tuple(coerce(k, kind.props[k], v) for k, v in zip(kind.keys, payload["k"], strict=True))
    except ODataError:
        raise
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise ODataError("Malformed Request: invalid $skiptoken") from None
    return KindStore.sort_key(order, values, key)


def _order_text(order: OrderSpec) -> str:
    return ",".join(f"{p} {'desc' if d else 'asc'}" for p, d in order)


def query_string(params: list[tuple[str, str]]) -> str:
    return "&".join(f"{quote(k, safe='$')}={quote(v, safe=_QUERY_SAFE)}" for k, v in params)


class Target:
    """A parsed projection URL."""

    def __init__(self, projection: Projection, entity_set: EntitySet) -> None:
        self.projection = projection
        self.entity_set = entity_set
        self.kind = KINDS[entity_set.kind]
        self.key: tuple[Any, ...] | None = None
        self.child: EntityKind | None = None  # LinePartArray etc.
        self.child_nav: str | None = None
        self.child_key: tuple[Any, ...] | None = None
        self.action: str | None = None
        self.count = False


def resolve(projection: Projection, tail: str, props_of: PropsOf) -> Target:
    """Parse the path after ``<Projection>.svc/`` into a target (set, key, child collection, $count or action)."""
    segments = split_resource_path(tail)
    set_name, key_text = segments[0]
    entity_set = projection.entity_set(set_name)
    if entity_set is None:
        raise not_found(f"The entity set '{set_name}' does not exist in {projection.name}")
    target = Target(projection, entity_set)
    kind = target.kind
    props = props_of(kind, projection)
    rest = segments[1:]
    if key_text is not None:
        target.key = tuple(parse_key_predicate(key_text, {k: props[k] for k in kind.keys}).values())
    if rest and rest[-1] == ("$count", None):
        target.count = True
        rest = rest[:-1]
    if not rest:
        if target.count and target.key is not None:
            raise not_found("$count applies to collections")
        return target
    if target.key is None or len(rest) > 1:
        raise not_found(f"The resource '{tail}' does not exist")
    name, sub_key = rest[0]
    nav = kind.nav(name)
    if nav is not None and nav.collection:
        target.child = KINDS[nav.target]
        target.child_nav = name
        cprops = props_of(target.child, projection)
        if sub_key is not None:
            target.child_key = tuple(parse_key_predicate(sub_key, {k: cprops[k] for k in target.child.keys}).values())
        return target
    if nav is not None:
        raise ODataError(
            "Navigating to a single related entity is not supported; use $expand",
            status=501,
            code="ODP_NOT_IMPLEMENTED",
        )
    prefix = f"{projection.namespace}.{kind.type_name}_"
    if name.startswith(prefix) and sub_key is None and not target.count:
        action = name[len(prefix) :]
        if entity_set.writable and any(t.action == action for t in kind.transitions):
            target.action = action
            return target
    raise not_found(f"The resource '{name}' does not exist on {set_name}")
