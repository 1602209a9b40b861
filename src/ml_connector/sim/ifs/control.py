"""The ``/_sim/`` control API: reset, seed and edit records, faults, token revocation, clock, time zone, request log."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.convertors import Convertor, register_url_convertor
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ml_connector.sim.ifs.responses import ifs_error, json_response
from ml_connector.sim.ifs.schema import KINDS
from ml_connector.sim.ifs.simulator import IfsSimulator, SimError
from ml_connector.sim.ifs.store import to_wire

Handler = Callable[[Request], Awaitable[Any]]


class _AnyKey(Convertor[str]):
    """Like Starlette's ``path`` convertor, but also across newlines (a key may contain any character)."""

    regex = r"[\s\S]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("sim_ifs_key", _AnyKey())


def _guard(fn: Handler) -> Callable[[Request], Awaitable[Response]]:
    """A control handler's result as JSON, and its ``SimError`` as an IFS-shaped error."""

    async def endpoint(request: Request) -> Response:
        try:
            result = await fn(request)
        except SimError as exc:
            return ifs_error(exc.status, exc.message, exc.code)
        if isinstance(result, Response):
            return result
        return json_response(result, media_type="application/json")

    return endpoint


async def _body_of(request: Request) -> Any:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except ValueError:
        raise SimError("the body must be JSON") from None


async def _obj_body(request: Request) -> dict[str, Any]:
    body = await _body_of(request)
    if not isinstance(body, dict):
        raise SimError("the body must be a JSON object")
    return body


class ControlApi:
    def __init__(self, sim: IfsSimulator) -> None:
        self.sim = sim

    def routes(self) -> list[Route]:
        return [
            Route("/_sim/", _guard(self.root), methods=["GET"]),
            Route("/_sim/reset", _guard(self.reset), methods=["POST"]),
            Route("/_sim/records/{entity}", _guard(self.list_records), methods=["GET"]),
            Route("/_sim/records/{entity}", _guard(self.create), methods=["POST"]),
            Route("/_sim/records/{entity}/bulk-edit", _guard(self.bulk_edit), methods=["POST"]),
            Route("/_sim/records/{entity}/{key:sim_ifs_key}", _guard(self.record), methods=["GET", "PATCH"]),
            Route("/_sim/faults", _guard(self.faults), methods=["GET", "PUT"]),
            Route("/_sim/settings", _guard(self.settings), methods=["GET", "PUT"]),
            Route("/_sim/tokens/revoke", _guard(self.revoke), methods=["POST"]),
            Route("/_sim/clock", _guard(self.clock), methods=["GET", "PUT"]),
            Route("/_sim/time-zone", _guard(self.time_zone), methods=["GET", "PUT"]),
            Route("/_sim/requests", _guard(self.requests), methods=["GET", "DELETE"]),
        ]

    async def root(self, request: Request) -> Any:
        sim = self.sim
        return {
            "options": json.loads(sim.options.model_dump_json()),
            "sizes": sim.sizes(),
            "clock_offset_seconds": sim.clock_offset,
            "time_zone": sim.time_zone,
        }

    async def reset(self, request: Request) -> Any:
        return {"sizes": self.sim.reset(**await _obj_body(request))}

    async def list_records(self, request: Request) -> Any:
        entity = request.path_params["entity"]
        if entity not in KINDS:
            raise SimError(f"unknown entity {entity!r}", status=404, code="SIM_NOT_FOUND")
        return {"entity": entity, "count": self.sim.sizes()[entity]}

    async def create(self, request: Request) -> Any:
        body = await _obj_body(request)
        unknown = set(body) - {"count", "values", "lines"}
        if unknown:
            raise SimError(f"unknown fields: {', '.join(sorted(unknown))}")
        values = body.get("values")
        if values is not None and not isinstance(values, dict):
            raise SimError('"values" must be an object')
        records = self.sim.create(
            request.path_params["entity"], count=body.get("count"), values=values, lines=body.get("lines")
        )
        return json_response({"records": records}, 201, media_type="application/json")

    async def bulk_edit(self, request: Request) -> Any:
        body = await _obj_body(request)
        keys, changes = body.get("keys"), body.get("changes")
        if not isinstance(keys, list) or not isinstance(changes, dict):
            raise SimError('the body must be {"keys": [...], "changes": {...}}')
        return {"records": self.sim.bulk_edit(request.path_params["entity"], keys, changes)}

    async def record(self, request: Request) -> Any:
        entity, key = request.path_params["entity"], request.path_params["key"]
        if request.method == "GET":
            return self.sim.get_raw(entity, key)
        return self.sim.edit(entity, key, await _obj_body(request))

    async def faults(self, request: Request) -> Any:
        if request.method == "PUT":
            self.sim.set_faults(**await _obj_body(request))
        return json.loads(self.sim.faults.model_dump_json())

    async def settings(self, request: Request) -> Any:
        if request.method == "PUT":
            return self.sim.set_settings(await _obj_body(request))
        return self.sim.settings()

    async def revoke(self, request: Request) -> Any:
        return {"revoked": self.sim.revoke_tokens()}

    async def clock(self, request: Request) -> Any:
        if request.method == "PUT":
            body = await _obj_body(request)
            offset = body.get("offset_seconds")
            if isinstance(offset, bool) or not isinstance(offset, int | float):
                raise SimError('the body must be {"offset_seconds": <number>}')
            self.sim.set_clock(offset)
        return {"offset_seconds": self.sim.clock_offset, "now": to_wire(self.sim.now())}

    async def time_zone(self, request: Request) -> Any:
        """The server's zone; ``PUT {"time_zone": "America/Chicago"}`` moves it (naive values keep their digits)."""
        if request.method == "PUT":
            body = await _obj_body(request)
            name = body.get("time_zone")
            if set(body) != {"time_zone"} or not isinstance(name, str):
                raise SimError('the body must be {"time_zone": "<IANA zone name>"}')
            self.sim.set_time_zone(name)
        return {
            "time_zone": self.sim.time_zone,
            "custom_attributes_time_zone_aware": self.sim.custom_attributes_time_zone_aware,
        }

    async def requests(self, request: Request) -> Any:
        if request.method == "DELETE":
            self.sim.clear_requests()
            return Response(status_code=204)
        return {
            "requests": self.sim.requests(),
            "counts": self.sim.request_counts(),
            "preconditions": self.sim.preconditions(),
        }
