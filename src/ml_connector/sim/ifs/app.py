"""The ASGI app: IAM token endpoint, OData projections, and the ``/_sim/`` control API.

Every request outside ``/_sim/`` passes a gate first: it is logged, then scripted failures, latency and random drops
apply, then (for projection calls) the bearer token, the per-client rate budget and random ``MI_MODIFIED_ERROR``.
Paths are parsed from the raw (still percent-encoded) request path, so keys containing ``/`` survive routing.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl, quote, unquote

from starlette.applications import Starlette
from starlette.convertors import Convertor, register_url_convertor
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from ml_connector.sim import wire
from ml_connector.sim.ifs.odata import (
    Bound,
    CompiledFilter,
    ExpandItem,
    ODataError,
    PropType,
    compile_filter,
    format_key_predicate,
    parse_expand,
    parse_key_predicate,
    parse_orderby,
    parse_select,
)
from ml_connector.sim.ifs.options import IfsSimOptions
from ml_connector.sim.ifs.schema import (
    BASE_PATH,
    KINDS,
    PROJECTIONS,
    EntityKind,
    EntitySet,
    Projection,
    metadata_xml,
    prop_types,
)
from ml_connector.sim.ifs.simulator import FaultDecision, IfsSimulator, SimError
from ml_connector.sim.ifs.store import KindStore, OrderSpec, Record, coerce, to_wire

JSON_TYPE = "application/json;odata.metadata=minimal"
_SYSTEM_OPTIONS = frozenset(
    {"$filter", "$select", "$orderby", "$top", "$skip", "$count", "$expand", "$skiptoken", "$format"}
)
_NOT_IMPLEMENTED_OPTIONS = frozenset({"$search", "$apply", "$compute", "$levels", "$deltatoken"})
_DEFAULT_CODES = {
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
_DEFAULT_MESSAGES = {
    503: "The metadata of the projection has been modified; please retry the request.",
    429: "Too many requests; retry later.",
}


# --------------------------------------------------------------------------------------------------------------
# Responses


def json_response(
    body: Any, status: int = 200, headers: Mapping[str, str] | None = None, media_type: str = JSON_TYPE
) -> Response:
    content = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    out = {"OData-Version": "4.0", **(headers or {})}
    return Response(content, status_code=status, headers=out, media_type=media_type)


def ifs_error(status: int, message: str, code: str | None = None, headers: Mapping[str, str] | None = None) -> Response:
    body = {"error": {"code": code or _DEFAULT_CODES.get(status, "ERROR"), "message": message, "details": []}}
    return json_response(body, status, headers, media_type="application/json")


def unauthorized(realm: str, why: str) -> Response:
    challenge = f'Bearer realm="{realm}"'
    if why in ("invalid", "expired"):
        text = "The access token expired" if why == "expired" else "The access token is invalid or revoked"
        challenge += f', error="invalid_token", error_description="{text}"'
    else:
        text = "Authentication required: send a bearer access token"
    return ifs_error(401, text, "UNAUTHORIZED", {"WWW-Authenticate": challenge})


def rate_limited(retry_after: float) -> Response:
    seconds = str(max(0, round(retry_after)))
    return ifs_error(429, _DEFAULT_MESSAGES[429], headers={"Retry-After": seconds})


# --------------------------------------------------------------------------------------------------------------
# Path helpers


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
            raise ODataError(
                f"Malformed Request: empty path segment in '{text}'", status=404, code="ODP_RESOURCE_NOTFOUND"
            )
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


# --------------------------------------------------------------------------------------------------------------
# Query handling


def _one(params: list[tuple[str, str]]) -> dict[str, str]:
    seen: dict[str, str] = {}
    for name, value in params:
        if not name.startswith("$"):
            continue
        if name in _NOT_IMPLEMENTED_OPTIONS:
            raise ODataError(f"The query option '{name}' is not supported", status=501, code="ODP_NOT_IMPLEMENTED")
        if name not in _SYSTEM_OPTIONS:
            raise ODataError(f"Malformed Request: unknown system query option '{name}'")
        if name in seen:
            raise ODataError(f"Malformed Request: the query option '{name}' is given twice")
        seen[name] = value
    return seen


def _int_option(options: Mapping[str, str], name: str) -> int | None:
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


def _encode_skiptoken(order: OrderSpec, record: Record) -> str:
    values = [to_wire(record.values.get(p)) for p, _ in order]
    payload = {"o": _order_text(order), "v": values, "k": list(record.key)}
    raw = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _decode_skiptoken(token: str, order: OrderSpec, kind: EntityKind) -> tuple[Any, ...]:
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


_QUERY_SAFE = "$',()=:*/@;!"


def _query_string(params: list[tuple[str, str]]) -> str:
    return "&".join(f"{quote(k, safe='$')}={quote(v, safe=_QUERY_SAFE)}" for k, v in params)


# --------------------------------------------------------------------------------------------------------------
# The projection handler


class _Target:
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


class ProjectionHandler:
    def __init__(self, sim: IfsSimulator) -> None:
        self.sim = sim
        self._props: dict[tuple[str, str], dict[str, PropType]] = {}

    def props(self, kind: EntityKind, projection: Projection) -> dict[str, PropType]:
        key = (kind.name, projection.name)
        cached = self._props.get(key)
        if cached is None:
            cached = self._props[key] = prop_types(kind, projection)
        return cached

    async def endpoint(self, request: Request) -> Response:
        try:
            return await self.handle(request)
        except ODataError as exc:
            return ifs_error(exc.status, exc.message, exc.code)
        except SimError as exc:
            return ifs_error(exc.status, exc.message, exc.code)
        except UnicodeDecodeError:
            return ifs_error(400, "Malformed Request: the URL is not valid percent-encoded UTF-8")

    async def handle(self, request: Request) -> Response:
        raw_path, path = decoded_raw_path(request.scope)
        rest = path[len(BASE_PATH) :].lstrip("/")
        proj_name, _, tail = rest.partition("/")
        projection = PROJECTIONS.get(proj_name[:-4]) if proj_name.endswith(".svc") else None
        if projection is None:
            return ifs_error(404, f"The projection '{proj_name or '(none)'}' does not exist")
        base = str(request.base_url).rstrip("/")
        svc_url = f"{base}{BASE_PATH}/{projection.name}.svc"
        if tail in ("", "$metadata"):
            if request.method != "GET":
                return ifs_error(405, f"{request.method} is not allowed here")
            if tail == "$metadata":
                return Response(
                    metadata_xml(projection), media_type="application/xml", headers={"OData-Version": "4.0"}
                )
            sets = [{"name": s.name, "kind": "EntitySet", "url": s.name} for s in projection.sets]
            return json_response({"@odata.context": f"{svc_url}/$metadata", "value": sets})
        target = self.resolve(projection, tail)
        params = parse_qsl(request.url.query, keep_blank_values=True)
        options = _one(params)
        method = request.method
        if target.action is not None:
            if method != "POST":
                return ifs_error(405, f"{method} is not allowed on a bound action")
            return await self.bound_action(request, target)
        if target.key is None or (target.child is not None and target.child_key is None):
            if method != "GET":
                return ifs_error(405, f"{method} is not allowed on an entity set in this simulator")
            return self.collection(request, target, options, params, raw_path, svc_url)
        if method == "GET":
            return self.single(target, options, svc_url)
        if method == "PATCH":
            return await self.patch(request, target, options, svc_url)
        return ifs_error(405, f"{method} is not allowed on this entity")

    def resolve(self, projection: Projection, tail: str) -> _Target:
        segments = split_resource_path(tail)
        set_name, key_text = segments[0]
        entity_set = projection.entity_set(set_name)
        if entity_set is None:
            raise ODataError(
                f"The entity set '{set_name}' does not exist in {projection.name}",
                status=404,
                code="ODP_RESOURCE_NOTFOUND",
            )
        target = _Target(projection, entity_set)
        kind = target.kind
        props = self.props(kind, projection)
        rest = segments[1:]
        if key_text is not None:
            target.key = tuple(parse_key_predicate(key_text, {k: props[k] for k in kind.keys}).values())
        if rest and rest[-1] == ("$count", None):
            target.count = True
            rest = rest[:-1]
        if not rest:
            if target.count and target.key is not None:
                raise ODataError("$count applies to collections", status=404, code="ODP_RESOURCE_NOTFOUND")
            return target
        if target.key is None or len(rest) > 1:
            raise ODataError(f"The resource '{tail}' does not exist", status=404, code="ODP_RESOURCE_NOTFOUND")
        name, sub_key = rest[0]
        nav = kind.nav(name)
        if nav is not None and nav.collection:
            target.child = KINDS[nav.target]
            target.child_nav = name
            cprops = self.props(target.child, projection)
            if sub_key is not None:
                target.child_key = tuple(
                    parse_key_predicate(sub_key, {k: cprops[k] for k in target.child.keys}).values()
                )
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
        raise ODataError(
            f"The resource '{name}' does not exist on {set_name}", status=404, code="ODP_RESOURCE_NOTFOUND"
        )

    # -- reads -----------------------------------------------------------------------------------------------------
    def _parent_or_404(self, target: _Target) -> Record:
        assert target.key is not None
        record = self.sim.get(target.kind.name, target.key)
        if record is None:
            raise ODataError(
                f"No {target.kind.type_name} with key {target.key!r} in {target.entity_set.name}",
                status=404,
                code="ODP_RESOURCE_NOTFOUND",
            )
        return record

    def _shape_plan(
        self,
        kind: EntityKind,
        projection: Projection,
        options: Mapping[str, str],
    ) -> tuple[list[str] | None, list[tuple[ExpandItem, EntityKind, list[str] | None]]]:
        props = self.props(kind, projection)
        select = parse_select(options["$select"], props) if "$select" in options else None
        expands: list[tuple[ExpandItem, EntityKind, list[str] | None]] = []
        if "$expand" in options:
            for item in parse_expand(options["$expand"]):
                nav = kind.nav(item.nav)
                if nav is None:
                    raise ODataError(
                        f"Malformed Request: '{item.nav}' is not a navigation property of {kind.type_name}"
                    )
                if nav.collection:
                    raise ODataError(
                        f"Expanding the collection '{item.nav}' is not supported; only one-to-one "
                        "associations can be expanded",
                        status=501,
                        code="ODP_NOT_IMPLEMENTED",
                    )
                target = KINDS[nav.target]
                sub = parse_select(item.select, self.props(target, projection)) if item.select else None
                expands.append((item, target, sub))
        return select, expands

    def _shape(
        self,
        record: Record,
        kind: EntityKind,
        select: list[str] | None,
        expands: list[tuple[ExpandItem, EntityKind, list[str] | None]],
    ) -> dict[str, Any]:
        if select is None and not expands:
            return record.wire
        wire = record.wire
        if select is None:
            out = dict(wire)
        else:
            out = {"@odata.etag": wire["@odata.etag"], "luname": wire["luname"], "keyref": wire["keyref"]}
            for name in select:
                out[name] = wire[name]
        for item, target, sub in expands:
            nav = kind.nav(item.nav)
            assert nav is not None
            fk = tuple(record.values.get(p) for p in nav.local)
            related = None if any(v is None for v in fk) else self.sim.get(target.name, fk)
            out[item.nav] = None if related is None else self._shape(related, target, sub, [])
        return out

    def collection(
        self,
        request: Request,
        target: _Target,
        options: Mapping[str, str],
        params: list[tuple[str, str]],
        raw_path: str,
        svc_url: str,
    ) -> Response:
        sim, opts = self.sim, self.sim.options
        kind = target.child or target.kind
        props = self.props(kind, target.projection)
        compiled: CompiledFilter | None = compile_filter(options["$filter"], props) if "$filter" in options else None
        predicate = compiled.predicate if compiled else None
        bounds = compiled.bounds if compiled else ()
        context = target.entity_set.name
        if target.child is not None:
            parent = self._parent_or_404(target)
            nav = target.kind.nav(target.child_nav or "")
            assert nav is not None
            parent_no = parent.values[nav.local[0]]
            outer = predicate
            predicate = (
                (lambda v: v.get("OrderNo") == parent_no and outer(v))
                if outer
                else (lambda v: v.get("OrderNo") == parent_no)
            )
            bounds = (Bound("OrderNo", "eq", parent_no), *bounds)
            key_text = format_key_predicate(dict(zip(target.kind.keys, target.key or (), strict=True)))
            context = f"{target.entity_set.name}({key_text})/{target.child_nav}"
        cache_key = f"{options.get('$filter', '')}|{context}"
        if target.count:
            n = sim.count(kind.name, predicate, cache_key)
            return Response(str(n), media_type="text/plain", headers={"OData-Version": "4.0"})
        order_items = parse_orderby(options["$orderby"], props) if "$orderby" in options else []
        named = {p for p, _ in order_items}
        order: OrderSpec = (*order_items, *((k, False) for k in kind.keys if k not in named))
        select, expands = self._shape_plan(kind, target.projection, options)
        top = _int_option(options, "$top")
        skip = _int_option(options, "$skip") or 0
        limit_cap = opts.page_size_limit
        if top is not None and top >= limit_cap:
            raise ODataError(
                f"$top={top} exceeds the maximum page size; ask for fewer than {limit_cap} rows "
                "and follow @odata.nextLink"
            )
        preferred = max_page_size(request.headers)
        if preferred is not None and preferred >= limit_cap:
            raise ODataError(
                f"odata.maxpagesize={preferred} exceeds the maximum page size; ask for fewer than {limit_cap} rows"
            )
        count_flag = options.get("$count", "false").lower()
        if count_flag not in ("true", "false"):
            raise ODataError(f"Malformed Request: $count must be true or false, got '{options['$count']}'")
        page = preferred or opts.max_page_size
        limit = page if top is None else min(page, top)
        after = _decode_skiptoken(options["$skiptoken"], order, kind) if "$skiptoken" in options else None
        rows, more = sim.query(
            kind.name, predicate=predicate, bounds=bounds, order=order, after=after, skip=skip, limit=limit
        )
        body: dict[str, Any] = {
            "@odata.context": f"{svc_url}/$metadata#{context}" + (f"({','.join(select)})" if select else "")
        }
        if count_flag == "true":
            body["@odata.count"] = sim.count(kind.name, predicate, cache_key)
        body["value"] = [self._shape(r, kind, select, expands) for r in rows]
        headers: dict[str, str] = {}
        if preferred is not None:
            headers["Preference-Applied"] = f"odata.maxpagesize={preferred}"
        remaining = None if top is None else top - len(rows)
        if more and rows and opts.next_links and (remaining is None or remaining > 0):
            kept = [(k, v) for k, v in params if k not in ("$skip", "$skiptoken", "$top")]
            if remaining is not None:
                kept.append(("$top", str(remaining)))
            kept.append(("$skiptoken", _encode_skiptoken(order, rows[-1])))
            body["@odata.nextLink"] = f"{str(request.base_url).rstrip('/')}{raw_path}?{_query_string(kept)}"
        response = json_response(body, headers=headers)
        sim.concurrent_edits(kind.name, [r.key for r in rows])  # ETags read from a collection go stale too
        return response

    def _entity(self, target: _Target) -> tuple[EntityKind, Record]:
        parent = self._parent_or_404(target)
        if target.child is None:
            return target.kind, parent
        assert target.child_key is not None
        record = self.sim.get(target.child.name, target.child_key)
        if record is None or record.values.get("OrderNo") != parent.values.get("OrderNo"):
            raise ODataError(
                f"No {target.child.type_name} with key {target.child_key!r} under this order",
                status=404,
                code="ODP_RESOURCE_NOTFOUND",
            )
        return target.child, record

    def single(self, target: _Target, options: Mapping[str, str], svc_url: str) -> Response:
        extra = set(options) - {"$select", "$expand", "$format"}
        if extra:
            raise ODataError(f"Malformed Request: {', '.join(sorted(extra))} cannot be used on a single entity")
        kind, record = self._entity(target)
        select, expands = self._shape_plan(kind, target.projection, options)
        context_set = target.entity_set.name if target.child is None else f"{target.entity_set.name}/{target.child_nav}"
        body = {
            "@odata.context": f"{svc_url}/$metadata#{context_set}/$entity",
            **self._shape(record, kind, select, expands),
        }
        response = json_response(body, headers={"ETag": record.etag})
        if target.child is None:
            self.sim.concurrent_edits(kind.name, [record.key])  # a user saves the record right after the read
        return response

    # -- writes ----------------------------------------------------------------------------------------------------
    def _precondition(self, request: Request, record: Record | None, *, action: bool) -> Response | None:
        if_match = request.headers.get("if-match")
        strict = self.sim.options.require_if_match_on_patch
        what = "a bound action" if action else "PATCH"
        if if_match is None:
            if action or strict:
                return ifs_error(
                    428,
                    f"The If-Match header is required for {what}: read the entity first and send its ETag",
                    "ODP_MISSING_PRECONDITION",
                )
            return None
        if if_match.strip() == "*":
            if strict:
                return ifs_error(
                    428, "If-Match: * is not accepted: send the ETag read from the entity", "ODP_MISSING_PRECONDITION"
                )
            return None
        if record is None:
            return ifs_error(404, "The entity does not exist", "ODP_RESOURCE_NOTFOUND")
        tags = [t.strip() for t in if_match.split(",")]
        if record.etag not in tags:
            return ifs_error(
                412,
                f"The {record.wire['luname']} has been modified by another user since it was "
                "read (the If-Match ETag is stale); read it again",
                "ODP_PRECONDITION_FAILED",
            )
        return None

    async def _json_body(self, request: Request) -> Any:
        raw = await request.body()
        if not raw.strip():
            return None
        if "json" not in request.headers.get("content-type", "").lower():
            raise ODataError(
                "Error while de-serializing contents: Content-Type must be application/json",
                code="ODP_DESERIALIZATION_ERROR",
            )
        try:
            return json.loads(raw)
        except ValueError:
            raise ODataError("Error while de-serializing contents.", code="ODP_DESERIALIZATION_ERROR") from None

    def _typed_patch(self, kind: EntityKind, key: tuple[Any, ...], body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise ODataError(
                "Error while de-serializing contents: the body must be a JSON object", code="ODP_DESERIALIZATION_ERROR"
            )
        changes: dict[str, Any] = {}
        for name, value in body.items():
            if name.startswith("@") or name in ("luname", "keyref", "Objgrants"):
                continue
            prop_kind = kind.props.get(name)
            if prop_kind is None:
                raise ODataError(
                    f"Error while de-serializing contents: '{name}' is not a property of {kind.type_name}",
                    code="ODP_DESERIALIZATION_ERROR",
                )
            if name in kind.keys:
                if value != key[kind.keys.index(name)]:
                    raise ODataError(f"The key attribute {name} cannot be changed", code="DATABASE_ERROR")
                continue
            if name not in kind.writable:
                raise ODataError(
                    f"ORA-20113: {kind.luname}.UPDATE: Field [{name}] is not updatable", code="DATABASE_ERROR"
                )
            try:
                typed = coerce(name, prop_kind, value)
            except ValueError:
                raise ODataError(
                    f"Error while de-serializing contents: invalid value for '{name}'", code="ODP_DESERIALIZATION_ERROR"
                ) from None
            limit = kind.max_length.get(name)
            if limit is not None and isinstance(typed, str) and len(typed) > limit:
                raise ODataError(
                    f"ORA-12899: value too large for {name} (actual: {len(typed)}, maximum: {limit})",
                    code="DATABASE_ERROR",
                )
            changes[name] = typed
        return changes

    async def patch(self, request: Request, target: _Target, options: Mapping[str, str], svc_url: str) -> Response:
        if options:
            raise ODataError("Malformed Request: query options cannot be used with PATCH")
        if target.child is not None or not target.entity_set.writable:
            return ifs_error(
                405, f"{target.entity_set.name} in {target.projection.name} is read-only", "ODP_METHOD_NOT_ALLOWED"
            )
        kind = target.kind
        assert target.key is not None
        body = await self._json_body(request)
        changes = self._typed_patch(kind, target.key, body if body is not None else {})
        sim = self.sim
        with sim.lock:
            record = sim.get(kind.name, target.key)
            refused = self._precondition(request, record, action=False)
            if refused is not None:
                return refused
            if record is None:  # PATCH without If-Match is an upsert in IFS: a typo'd key creates a record
                values: dict[str, Any] = dict(zip(kind.keys, target.key, strict=True))
                values.update(changes)
                values["Objstate"] = kind.initial_state
                record = sim.create_record(kind.name, values)
                status = 201
            else:
                record = sim.write(kind.name, target.key, changes)
                status = 200
        headers = {"ETag": record.etag}
        if prefers_minimal(request.headers):
            return Response(
                status_code=204, headers={**headers, "Preference-Applied": "return=minimal", "OData-Version": "4.0"}
            )
        body_out = {"@odata.context": f"{svc_url}/$metadata#{target.entity_set.name}/$entity", **record.wire}
        return json_response(body_out, status, headers)

    async def bound_action(self, request: Request, target: _Target) -> Response:
        kind = target.kind
        assert target.key is not None and target.action is not None
        body = await self._json_body(request)
        if body is not None and not isinstance(body, dict):
            raise ODataError(
                "Error while de-serializing contents: the body must be a JSON object", code="ODP_DESERIALIZATION_ERROR"
            )
        transition = next(t for t in kind.transitions if t.action == target.action)
        sim = self.sim
        with sim.lock:
            record = self._parent_or_404(target)
            refused = self._precondition(request, record, action=True)
            if refused is not None:
                return refused
            state = record.values.get("Objstate")
            if state not in transition.sources:
                return ifs_error(
                    400,
                    f"ORA-20127: {kind.luname}.NOSTATECHANGE: The event {target.action} is not "
                    f"allowed in state {state} (allowed from: {', '.join(transition.sources)})",
                    "DATABASE_ERROR",
                )
            sim.write(kind.name, target.key, {}, state=transition.target)
        return Response(status_code=204, headers={"OData-Version": "4.0"})


# --------------------------------------------------------------------------------------------------------------
# IAM


def _iam_routes(sim: IfsSimulator) -> list[Route]:
    options = sim.options

    def realm_or_404(request: Request) -> Response | None:
        if request.path_params["realm"] != options.realm:
            return json_response(
                {"error": "Realm does not exist", "error_description": "Realm does not exist"},
                404,
                media_type="application/json",
            )
        return None

    async def token(request: Request) -> Response:
        refused = realm_or_404(request)
        if refused is not None:
            return refused
        if "application/x-www-form-urlencoded" not in request.headers.get("content-type", ""):
            return _oauth_error(400, "invalid_request", "Content-Type must be application/x-www-form-urlencoded")
        form = dict(parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True))
        client_id, secret = form.get("client_id"), form.get("client_secret")
        basic = request.headers.get("authorization", "")
        if basic.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(basic[6:].strip()).decode("utf-8")
                client_id, _, secret = decoded.partition(":")
                client_id, secret = unquote(client_id), unquote(secret)
            except (ValueError, binascii.Error):
                return _oauth_error(401, "invalid_client", "Invalid client or Invalid client credentials")
        if form.get("grant_type") != "client_credentials":
            return _oauth_error(400, "unsupported_grant_type", "Unsupported grant_type")
        clients = {options.client_id: options.client_secret, **options.extra_clients}
        if not client_id or clients.get(client_id) != secret:
            return _oauth_error(401, "unauthorized_client", "Invalid client or Invalid client credentials")
        scope = form.get("scope") or "email profile"
        issuer = f"{str(request.base_url).rstrip('/')}/auth/realms/{options.realm}"
        access, lifetime = sim.issue_token(client_id, scope, issuer)
        body = {
            "access_token": access,
            "expires_in": lifetime,
            "refresh_expires_in": 0,
            "token_type": "Bearer",
            "not-before-policy": 0,
            "scope": scope,
        }
        return json_response(
            body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"}, media_type="application/json"
        )

    async def discovery(request: Request) -> Response:
        refused = realm_or_404(request)
        if refused is not None:
            return refused
        issuer = f"{str(request.base_url).rstrip('/')}/auth/realms/{options.realm}"
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

    prefix = "/auth/realms/{realm}"
    return [
        Route(f"{prefix}/protocol/openid-connect/token", token, methods=["POST"]),
        Route(f"{prefix}/.well-known/openid-configuration", discovery, methods=["GET"]),
    ]


def _oauth_error(status: int, error: str, description: str) -> Response:
    return json_response({"error": error, "error_description": description}, status, media_type="application/json")


# --------------------------------------------------------------------------------------------------------------
# The app and its gate


class IfsSimApp(Starlette):
    """Starlette with a gate in front of every non-``/_sim/`` request (log, faults, auth, rate budget)."""

    sim: IfsSimulator
    projections: ProjectionHandler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_sim/") or scope["path"] == "/_sim":
            await super().__call__(scope, receive, send)
            return
        await self._gate(scope, receive, send)

    async def _gate(self, scope: Scope, receive: Receive, send: Send) -> None:
        sim = self.sim
        headers = Headers(scope=scope)
        try:
            _, path = decoded_raw_path(scope)
        except UnicodeDecodeError:
            path = scope["path"]
        projection = path == BASE_PATH or path.startswith(BASE_PATH + "/")
        auth = headers.get("authorization", "")
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else None
        info, why = sim.check_token(token)
        entry = sim.log_request(
            method=scope["method"],
            path=path,
            query=scope.get("query_string", b"").decode("latin-1"),
            endpoint=endpoint_name(scope["method"], path),
            if_match=headers.get("if-match"),
            client_id=info.client_id if info else None,
        )

        async def send_logged(message: Message) -> None:
            if message["type"] == "http.response.start":  # logged before the client can see the response
                sim.finish_request(entry, message["status"])
            await send(message)

        decision = sim.decide(path, projection=projection, method=scope["method"])
        if decision.latency:
            await asyncio.sleep(decision.latency)
        kind = decision.kind
        if decision.drop or kind == "drop_before":
            await wire.drop(send)
            return
        if kind == "hang" and not await wire.hang(decision.hang_seconds, send):
            await wire.drop(send)  # the client gave up; nobody is left to answer
            return
        held = wire.HeldResponse() if kind in wire.HELD_KINDS else None
        reply: Send = held if held is not None else send_logged
        response: Response | None = None
        if kind == "html":
            response = wire.html_page()
        elif kind == "status":
            response = _injected(decision, sim.options.realm)
        elif projection:
            if why:
                response = unauthorized(sim.options.realm, why)
            else:
                assert info is not None
                retry_after = sim.admit(info.client_id)
                if retry_after is not None:
                    response = rate_limited(retry_after)
                elif sim.random_503():
                    response = ifs_error(503, _DEFAULT_MESSAGES[503], "MI_MODIFIED_ERROR")
        if response is None and projection:
            # dispatched here, not by the router: keys may hold any character, newlines included
            response = await self.projections.endpoint(Request(scope, receive))
        if response is not None:
            await response(scope, receive, reply)
        else:
            await super().__call__(scope, receive, reply)
        if held is not None and kind is not None:
            if held.start is not None:
                sim.finish_request(entry, held.start["status"])
            await wire.deliver(kind, held, send)


def _injected(decision: FaultDecision, realm: str) -> Response:
    status = int(decision.status or 500)
    if status == 401:
        return unauthorized(realm, "invalid")
    headers: dict[str, str] = {}
    if status == 429 or decision.retry_after is not None:
        retry = decision.retry_after if decision.retry_after is not None else 1
        headers["Retry-After"] = str(max(0, round(retry)))
    message = decision.message or _DEFAULT_MESSAGES.get(status, f"Injected failure ({status})")
    return ifs_error(status, message, decision.code, headers)


# --------------------------------------------------------------------------------------------------------------
# Control API


class _AnyKey(Convertor[str]):
    """Like Starlette's ``path`` convertor, but also across newlines (a key may contain any character)."""

    regex = r"[\s\S]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("sim_ifs_key", _AnyKey())


def _control_routes(sim: IfsSimulator) -> list[Route]:
    def guard(fn: Callable[[Request], Awaitable[Any]]) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                result = await fn(request)
            except SimError as exc:
                return ifs_error(exc.status, exc.message, exc.code)
            if isinstance(result, Response):
                return result
            return json_response(result, media_type="application/json")

        return endpoint

    async def body_of(request: Request) -> Any:
        raw = await request.body()
        if not raw.strip():
            return {}
        try:
            return json.loads(raw)
        except ValueError:
            raise SimError("the body must be JSON") from None

    async def obj_body(request: Request) -> dict[str, Any]:
        body = await body_of(request)
        if not isinstance(body, dict):
            raise SimError("the body must be a JSON object")
        return body

    async def root(request: Request) -> Any:
        return {
            "options": json.loads(sim.options.model_dump_json()),
            "sizes": sim.sizes(),
            "clock_offset_seconds": sim.clock_offset,
        }

    async def reset(request: Request) -> Any:
        return {"sizes": sim.reset(**await obj_body(request))}

    async def list_records(request: Request) -> Any:
        entity = request.path_params["entity"]
        if entity not in KINDS:
            raise SimError(f"unknown entity {entity!r}", status=404, code="SIM_NOT_FOUND")
        return {"entity": entity, "count": sim.sizes()[entity]}

    async def create(request: Request) -> Any:
        body = await obj_body(request)
        unknown = set(body) - {"count", "values", "lines"}
        if unknown:
            raise SimError(f"unknown fields: {', '.join(sorted(unknown))}")
        values = body.get("values")
        if values is not None and not isinstance(values, dict):
            raise SimError('"values" must be an object')
        records = sim.create(
            request.path_params["entity"], count=body.get("count"), values=values, lines=body.get("lines")
        )
        return json_response({"records": records}, 201, media_type="application/json")

    async def bulk_edit(request: Request) -> Any:
        body = await obj_body(request)
        keys, changes = body.get("keys"), body.get("changes")
        if not isinstance(keys, list) or not isinstance(changes, dict):
            raise SimError('the body must be {"keys": [...], "changes": {...}}')
        records = sim.bulk_edit(request.path_params["entity"], keys, changes)
        return {"records": records}

    async def record(request: Request) -> Any:
        entity, key = request.path_params["entity"], request.path_params["key"]
        if request.method == "GET":
            return sim.get_raw(entity, key)
        return sim.edit(entity, key, await obj_body(request))

    async def faults(request: Request) -> Any:
        if request.method == "PUT":
            sim.set_faults(**await obj_body(request))
        return json.loads(sim.faults.model_dump_json())

    async def revoke(request: Request) -> Any:
        return {"revoked": sim.revoke_tokens()}

    async def clock(request: Request) -> Any:
        if request.method == "PUT":
            body = await obj_body(request)
            offset = body.get("offset_seconds")
            if isinstance(offset, bool) or not isinstance(offset, int | float):
                raise SimError('the body must be {"offset_seconds": <number>}')
            sim.set_clock(offset)
        return {"offset_seconds": sim.clock_offset, "now": to_wire(sim.now())}

    async def requests(request: Request) -> Any:
        if request.method == "DELETE":
            sim.clear_requests()
            return Response(status_code=204)
        return {"requests": sim.requests(), "counts": sim.request_counts()}

    return [
        Route("/_sim/", guard(root), methods=["GET"]),
        Route("/_sim/reset", guard(reset), methods=["POST"]),
        Route("/_sim/records/{entity}", guard(list_records), methods=["GET"]),
        Route("/_sim/records/{entity}", guard(create), methods=["POST"]),
        Route("/_sim/records/{entity}/bulk-edit", guard(bulk_edit), methods=["POST"]),
        Route("/_sim/records/{entity}/{key:sim_ifs_key}", guard(record), methods=["GET", "PATCH"]),
        Route("/_sim/faults", guard(faults), methods=["GET", "PUT"]),
        Route("/_sim/tokens/revoke", guard(revoke), methods=["POST"]),
        Route("/_sim/clock", guard(clock), methods=["GET", "PUT"]),
        Route("/_sim/requests", guard(requests), methods=["GET", "DELETE"]),
    ]


def create_app(options: IfsSimOptions | None = None) -> IfsSimApp:
    """A fresh simulator behind a fresh ASGI app; the simulator is ``app.state.sim``."""
    sim = IfsSimulator(options)
    app = IfsSimApp(routes=[*_iam_routes(sim), *_control_routes(sim)])
    app.sim = sim
    app.projections = ProjectionHandler(sim)
    app.state.sim = sim
    return app
