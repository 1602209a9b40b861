"""The projection handler: OData reads (collections, entities, $count, $expand, paging) and writes (PATCH, actions)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response

from ml_connector.sim import servertime
from ml_connector.sim.ifs.odata import (
    Bound,
    CompiledFilter,
    ExpandItem,
    ODataError,
    Predicate,
    PropType,
    compile_filter,
    format_key_predicate,
    parse_expand,
    parse_orderby,
    parse_select,
)
from ml_connector.sim.ifs.responses import (
    IEEE754_JSON_TYPE,
    JSON_TYPE,
    ieee754_compatible,
    ifs_error,
    json_response,
)
from ml_connector.sim.ifs.schema import BASE_PATH, KINDS, PROJECTIONS, EntityKind, Projection, metadata_xml, prop_types
from ml_connector.sim.ifs.simulator import IfsSimulator, SimError
from ml_connector.sim.ifs.store import OrderSpec, Record, as_ieee754, coerce
from ml_connector.sim.ifs.urls import (
    Target,
    decode_skiptoken,
    decoded_raw_path,
    encode_skiptoken,
    int_option,
    max_page_size,
    not_found,
    prefers_minimal,
    query_string,
    resolve,
    system_options,
)
from ml_connector.sim.ifs.zones import aware_request

_ROWS_READ = "mlc.sim.rows_read"  # scope key: rows a successful read returned (the size of its server time)
Scoped = tuple[Predicate, tuple[Bound, ...], str]  # a child collection's predicate, bounds and context


class ProjectionHandler:
    """Serves every URL under the projections' base path (the gate has already admitted the request)."""

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
            response = await self.handle(request)
        except ODataError as exc:
            return ifs_error(exc.status, exc.message, exc.code)
        except SimError as exc:
            return ifs_error(exc.status, exc.message, exc.code)
        except UnicodeDecodeError:
            return ifs_error(400, "Malformed Request: the URL is not valid percent-encoded UTF-8")
        rows = request.scope.get(_ROWS_READ)
        if rows is not None:
            # The answer is built; it leaves after the modelled server time (a sleep: other requests go on).
            await servertime.work(self.sim.server_time_profile, "ifs.read", rows)
        return response

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
        target = resolve(projection, tail, self.props)
        params = parse_qsl(request.url.query, keep_blank_values=True)
        options = system_options(params)
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
            response = self.single(
                target,
                options,
                svc_url,
                aware=aware_request(request.headers),
                ieee754=ieee754_compatible(request.headers.get("accept")),
            )
            request.scope[_ROWS_READ] = 1
            return response
        if method == "PATCH":
            return await self.patch(request, target, options, svc_url)
        return ifs_error(405, f"{method} is not allowed on this entity")

    # -- reads -----------------------------------------------------------------------------------------------------
    def _parent_or_404(self, target: Target) -> Record:
        assert target.key is not None
        record = self.sim.get(target.kind.name, target.key)
        if record is None:
            raise not_found(f"No {target.kind.type_name} with key {target.key!r} in {target.entity_set.name}")
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
        aware: bool,
        ieee754: bool = False,
    ) -> dict[str, Any]:
        """The row as served; ``aware``: the request sent ``X-Ifs-Time-Zone-Aware-Request: true``; ``ieee754``: its
        Accept asked for ``IEEE754Compatible=true`` (decimals as strings)."""
        view = self.sim.zone_view(kind, aware_request=aware)
        wire = as_ieee754(record.wire, kind) if ieee754 else record.wire
        if select is None and not expands:
            return view.row(wire, kind.props)
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
            out[item.nav] = None if related is None else self._shape(related, target, sub, [], aware, ieee754)
        return view.row(out, kind.props)

    def _under_parent(self, target: Target, predicate: Predicate | None, bounds: tuple[Bound, ...]) -> Scoped:
        """Narrow a child collection (an order's lines) to its parent: predicate, index bounds, context path."""
        parent = self._parent_or_404(target)
        nav = target.kind.nav(target.child_nav or "")
        assert nav is not None
        parent_no = parent.values[nav.local[0]]
        outer = predicate
        scoped: Predicate = (
            (lambda v: v.get("OrderNo") == parent_no and outer(v))
            if outer
            else (lambda v: v.get("OrderNo") == parent_no)
        )
        key_text = format_key_predicate(dict(zip(target.kind.keys, target.key or (), strict=True)))
        context = f"{target.entity_set.name}({key_text})/{target.child_nav}"
        return scoped, (Bound("OrderNo", "eq", parent_no), *bounds), context

    def collection(
        self,
        request: Request,
        target: Target,
        options: Mapping[str, str],
        params: list[tuple[str, str]],
        raw_path: str,
        svc_url: str,
    ) -> Response:
        sim, opts = self.sim, self.sim.options
        kind = target.child or target.kind
        props = self.props(kind, target.projection)
        aware = aware_request(request.headers)
        view = sim.zone_view(kind, aware_request=aware)
        compiled: CompiledFilter | None = (
            compile_filter(options["$filter"], props, view.literal) if "$filter" in options else None
        )
        predicate = compiled.predicate if compiled else None
        bounds = compiled.bounds if compiled else ()
        context = target.entity_set.name
        if target.child is not None:
            predicate, bounds, context = self._under_parent(target, predicate, bounds)
        cache_key = f"{options.get('$filter', '')}|{context}|{view.zone.key}|{aware}"
        if target.count:
            n = sim.count(kind.name, predicate, cache_key)
            return Response(str(n), media_type="text/plain", headers={"OData-Version": "4.0"})
        order_items = parse_orderby(options["$orderby"], props) if "$orderby" in options else []
        named = {p for p, _ in order_items}
        order: OrderSpec = (*order_items, *((k, False) for k in kind.keys if k not in named))
        select, expands = self._shape_plan(kind, target.projection, options)
        top = int_option(options, "$top")
        skip = int_option(options, "$skip") or 0
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
        after = decode_skiptoken(options["$skiptoken"], order, kind) if "$skiptoken" in options else None
        rows, more = sim.query(
            kind.name, predicate=predicate, bounds=bounds, order=order, after=after, skip=skip, limit=limit
        )
        body: dict[str, Any] = {
            "@odata.context": f"{svc_url}/$metadata#{context}" + (f"({','.join(select)})" if select else "")
        }
        ieee754 = ieee754_compatible(request.headers.get("accept"))
        if count_flag == "true":
            n = sim.count(kind.name, predicate, cache_key)
            body["@odata.count"] = str(n) if ieee754 else n  # OData: the count is an Int64
        body["value"] = [self._shape(r, kind, select, expands, aware, ieee754) for r in rows]
        headers: dict[str, str] = {}
        if preferred is not None:
            headers["Preference-Applied"] = f"odata.maxpagesize={preferred}"
        remaining = None if top is None else top - len(rows)
        if more and rows and opts.next_links and (remaining is None or remaining > 0):
            kept = [(k, v) for k, v in params if k not in ("$skip", "$skiptoken", "$top")]
            if remaining is not None:
                kept.append(("$top", str(remaining)))
            kept.append(("$skiptoken", encode_skiptoken(order, rows[-1])))
            body["@odata.nextLink"] = f"{str(request.base_url).rstrip('/')}{raw_path}?{query_string(kept)}"
        response = json_response(body, headers=headers, media_type=_json_type(ieee754))
        sim.concurrent_edits(kind.name, [r.key for r in rows])  # ETags read from a collection go stale too
        request.scope[_ROWS_READ] = len(rows)
        return response

    def _entity(self, target: Target) -> tuple[EntityKind, Record]:
        parent = self._parent_or_404(target)
        if target.child is None:
            return target.kind, parent
        assert target.child_key is not None
        record = self.sim.get(target.child.name, target.child_key)
        if record is None or record.values.get("OrderNo") != parent.values.get("OrderNo"):
            raise not_found(f"No {target.child.type_name} with key {target.child_key!r} under this order")
        return target.child, record

    def single(
        self, target: Target, options: Mapping[str, str], svc_url: str, *, aware: bool, ieee754: bool
    ) -> Response:
        extra = set(options) - {"$select", "$expand", "$format"}
        if extra:
            raise ODataError(f"Malformed Request: {', '.join(sorted(extra))} cannot be used on a single entity")
        kind, record = self._entity(target)
        select, expands = self._shape_plan(kind, target.projection, options)
        context_set = target.entity_set.name if target.child is None else f"{target.entity_set.name}/{target.child_nav}"
        body = {
            "@odata.context": f"{svc_url}/$metadata#{context_set}/$entity",
            **self._shape(record, kind, select, expands, aware, ieee754),
        }
        response = json_response(body, headers={"ETag": record.etag}, media_type=_json_type(ieee754))
        if target.child is None:
            self.sim.concurrent_edits(kind.name, [record.key])  # a user saves the record right after the read
        return response

    # -- writes ----------------------------------------------------------------------------------------------------
    def _precondition(self, if_match: str | None, record: Record | None, *, action: bool) -> Response | None:
        """IFS's If-Match rules: required on bound actions, optional on PATCH (absent: an upsert), ``*`` matches any
        current version. ``strict_if_match`` also refuses PATCH without it and ``*`` anywhere, unlike IFS."""
        self.sim.note_precondition("action" if action else "PATCH", if_match)
        strict = self.sim.strict_if_match
        what = "a bound action" if action else "PATCH"
        if if_match is None:
            if action or strict:
                return ifs_error(
                    428,
                    f"The If-Match header is required for {what}: read the entity first and send its ETag",
                    "ODP_MISSING_PRECONDITION",
                )
            return None
        if if_match.strip() == "*" and strict:
            return ifs_error(
                428, "If-Match: * is not accepted: send the ETag read from the entity", "ODP_MISSING_PRECONDITION"
            )
        if record is None:
            return ifs_error(404, "The entity does not exist", "ODP_RESOURCE_NOTFOUND")
        tags = [t.strip() for t in if_match.split(",")]
        if "*" not in tags and record.etag not in tags:
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

    def _typed_body(self, kind: EntityKind, key: tuple[Any, ...], body: Any, *, ieee754: bool) -> dict[str, Any]:
        """Every property of a PATCH body, typed (keys must equal the URL's and are left out)."""
        if not isinstance(body, dict):
            raise ODataError(
                "Error while de-serializing contents: the body must be a JSON object", code="ODP_DESERIALIZATION_ERROR"
            )
        typed: dict[str, Any] = {}
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
            try:
                typed[name] = coerce(name, prop_kind, value, ieee754=ieee754)
            except ValueError:
                raise ODataError(
                    f"Error while de-serializing contents: invalid value for '{name}'", code="ODP_DESERIALIZATION_ERROR"
                ) from None
            limit = kind.max_length.get(name)
            if limit is not None and isinstance(typed[name], str) and len(typed[name]) > limit:
                raise ODataError(
                    f"ORA-12899: value too large for {name} (actual: {len(typed[name])}, maximum: {limit})",
                    code="DATABASE_ERROR",
                )
        return typed

    @staticmethod
    def _updatable(kind: EntityKind, typed: Mapping[str, Any], *, upsert: bool) -> dict[str, Any]:
        """The changes an update applies: an upsert ignores non-updatable attributes, a plain update refuses them."""
        refused = [name for name in typed if name not in kind.writable]
        if refused and not upsert:
            raise ODataError(
                f"ORA-20113: {kind.luname}.UPDATE: Field [{refused[0]}] is not updatable", code="DATABASE_ERROR"
            )
        return {name: value for name, value in typed.items() if name in kind.writable}

    async def patch(self, request: Request, target: Target, options: Mapping[str, str], svc_url: str) -> Response:
        if options:
            raise ODataError("Malformed Request: query options cannot be used with PATCH")
        if target.child is not None or not target.entity_set.writable:
            return ifs_error(
                405, f"{target.entity_set.name} in {target.projection.name} is read-only", "ODP_METHOD_NOT_ALLOWED"
            )
        kind = target.kind
        assert target.key is not None
        body = await self._json_body(request)
        ieee754_in = ieee754_compatible(request.headers.get("content-type"))
        typed = self._typed_body(kind, target.key, body if body is not None else {}, ieee754=ieee754_in)
        if_match = request.headers.get("if-match")
        sim = self.sim
        with sim.lock:
            record = sim.get(kind.name, target.key)
            refused = self._precondition(if_match, record, action=False)
            if refused is not None:
                return refused
            changes = self._updatable(kind, typed, upsert=if_match is None)
            if record is None:  # PATCH without If-Match is an upsert in IFS: a typo'd key creates a record
                values: dict[str, Any] = dict(zip(kind.keys, target.key, strict=True))
                values.update({k: v for k, v in typed.items() if k != "Objstate"})
                values["Objstate"] = kind.initial_state
                record = sim.create_record(kind.name, values)
                status = 201
            else:
                record = sim.write(kind.name, target.key, changes)
                status = 200
        return self._written(request, record, status, f"{svc_url}/$metadata#{target.entity_set.name}/$entity")

    def _written(self, request: Request, record: Record, status: int, context: str) -> Response:
        headers = {"ETag": record.etag}
        if prefers_minimal(request.headers):
            return Response(
                status_code=204, headers={**headers, "Preference-Applied": "return=minimal", "OData-Version": "4.0"}
            )
        ieee754 = ieee754_compatible(request.headers.get("accept"))
        wire = as_ieee754(record.wire, record.kind) if ieee754 else record.wire
        return json_response({"@odata.context": context, **wire}, status, headers, _json_type(ieee754))

    async def bound_action(self, request: Request, target: Target) -> Response:
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
            refused = self._precondition(request.headers.get("if-match"), record, action=True)
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


def _json_type(ieee754: bool) -> str:
    return IEEE754_JSON_TYPE if ieee754 else JSON_TYPE
