"""The Jira simulator's route table: ``@route`` registers a handler for a path template (API v2 and v3 alike),
``match`` finds it again; plus the request parsing and response rendering every handler shares.

One catch-all Starlette route dispatches through this table: the same table serves the site root and the
``/ex/jira/{cloudId}`` prefix, and the matched template doubles as the request-log endpoint name.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ml_connector.sim.jira.adf import adf_text
from ml_connector.sim.jira.common import ApiError, Principal

if TYPE_CHECKING:
    from ml_connector.sim.jira.core import JiraSim

OAUTH_PATHS = {"/authorize", "/oauth/token", "/oauth/token/accessible-resources"}


@dataclass
class Ctx:
    sim: JiraSim
    request: Request
    params: QueryParams
    path: dict[str, str]
    body: Any
    principal: Principal
    version: str  # "2" or "3"


Handler = Callable[[Ctx], Any]


@dataclass
class RouteDef:
    method: str
    template: str
    regex: re.Pattern[str]
    handler: Handler
    anonymous: bool = False


ROUTES: list[RouteDef] = []


def route(method: str, template: str, *, anonymous: bool = False) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        for version in ("3", "2") if "/rest/api/{v}" in template else ("",):
            concrete = template.replace("{v}", version)
            pattern = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", concrete)
            ROUTES.append(RouteDef(method, concrete, re.compile(f"^{pattern}$"), fn, anonymous))
        return fn

    return register


def json_body(ctx: Ctx) -> Any:
    return ctx.body


def int_param(params: QueryParams, name: str, default: int) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ApiError(400, [f"The value '{raw}' is not a valid integer for the '{name}' parameter."]) from exc


def list_param(values: list[str]) -> list[str]:
    return [part.strip() for v in values for part in v.split(",") if part.strip()]


def v2_in(ctx: Ctx, payload: Any) -> Any:
    """API v2 takes wiki-markup strings for description; store them as ADF like Jira's v2 → v3 conversion."""
    if ctx.version != "2" or not isinstance(payload, dict):
        return payload
    fields = payload.get("fields")
    if isinstance(fields, dict) and isinstance(fields.get("description"), str):
        text = fields["description"]
        fields = dict(fields)
        fields["description"] = (
            {
                "type": "doc",
                "version": 1,
                "content": [
                    {"type": "paragraph", "content": [{"type": "text", "text": t}]} for t in text.split("\n") if t
                ],
            }
            if text
            else None
        )
        payload = {**payload, "fields": fields}
    return payload


def v2_out(ctx: Ctx, issue_json: dict[str, Any]) -> dict[str, Any]:
    if ctx.version == "2" and isinstance(issue_json.get("fields"), dict) and "description" in issue_json["fields"]:
        desc = issue_json["fields"]["description"]
        issue_json["fields"]["description"] = adf_text(desc) if desc else None
    return issue_json


def match(method: str, path: str) -> tuple[RouteDef | None, dict[str, str], bool]:
    """The route for ``method`` and ``path``, its path parameters, and whether the path exists for any method."""
    path_exists = False
    for r in ROUTES:
        m = r.regex.match(path)
        if m:
            path_exists = True
            if r.method == method:
                return r, m.groupdict(), True
    return None, {}, path_exists


def error_response(exc: ApiError) -> Response:
    return JSONResponse(exc.body, status_code=exc.status, headers=exc.headers)


def unauthorized() -> Response:
    return JSONResponse(
        {
            "errorMessages": ["You are not authenticated. Authentication required to perform this operation."],
            "errors": {},
        },
        status_code=401,
        headers={"WWW-Authenticate": 'Basic realm="protected-area", OAuth realm="https://api.atlassian.com"'},
    )


def render(result: Any) -> Response:
    if isinstance(result, Response):
        return result
    status = 200
    if isinstance(result, tuple):
        status, result = result
    if result is None:
        return Response(status_code=status)
    return JSONResponse(result, status_code=status)


async def read_body(request: Request) -> Any:
    raw = await request.body()
    if not raw:
        return None
    ctype = request.headers.get("content-type", "")
    if "application/x-www-form-urlencoded" in ctype:
        return dict(parse_qsl(raw.decode()))
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ApiError(400, [f"Unexpected character in the request body: {exc.msg} at position {exc.pos}."]) from exc
    except UnicodeDecodeError as exc:
        raise ApiError(400, ["The request body is not valid UTF-8."]) from exc
