"""Reusable access to the official Jira Cloud OpenAPI document for contract tests (simulator and client).

* ``spec_path()``: ``$ML_CONNECTOR_JIRA_SPEC`` or ``<repo>/../shared/specs/jira-cloud-platform.openapi.json``.
* ``jira_openapi`` fixture (session scope; the 2.4 MB document is parsed once per process): with ``CI=true`` a
  missing document fails the run, elsewhere the test is skipped with the reason.
* ``validate(openapi, exchange)``: validate one recorded request/response pair. The spec's ``servers`` is
  ``https://your-domain.atlassian.net``; instead of rewriting URLs we hand openapi-core a request object whose
  ``host_url`` *is* that server and whose ``path`` is the API path (``/ex/jira/{cloudId}`` stripped), so any
  loopback port validates cleanly.
* ``Recorder``: an httpx2 event hook that records every exchange of a client for later validation.
* ``logged_exchanges``: the same exchanges read back from the Jira simulator's request log (``record_exchanges``),
  for traffic a test cannot hook, such as a connector run in another process.
* Paths: ``/ex/jira/{cloudId}`` is stripped, ``/rest/api/2`` maps onto ``/rest/api/3`` (see ``api_path``), a short
  allow-list (``ALLOWED_PREFIXES``) is skipped, and any other path the document lacks is a violation.
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from conftest import unavailable

SPEC_ENV = "ML_CONNECTOR_JIRA_SPEC"
DEFAULT_SPEC = Path(__file__).resolve().parents[3] / "shared" / "specs" / "jira-cloud-platform.openapi.json"
SPEC_SERVER = "https://your-domain.atlassian.net"
MISSING = f"official Jira OpenAPI document not found (set {SPEC_ENV} or provide ../shared/specs/)"


# The team's shared folder sits beside the checkout; a clone made elsewhere still finds it at its usual place.
FALLBACK_SPECS = (DEFAULT_SPEC, Path("/work/shared/specs/jira-cloud-platform.openapi.json"))


def spec_path() -> Path | None:
    configured = os.environ.get(SPEC_ENV)
    if configured:
        return Path(configured) if Path(configured).is_file() else None
    return next((p for p in FALLBACK_SPECS if p.is_file()), None)


@functools.cache
def load_openapi() -> Any:
    """The parsed document (openapi-core ``OpenAPI``), or None when it is not available. Cached per process."""
    path = spec_path()
    if path is None:
        return None
    from openapi_core import Config, OpenAPI

    # The official document fails strict meta-validation (an enum default of ""), so skip that step only.
    return OpenAPI.from_file_path(str(path), config=Config(spec_validator_cls=None))


def require_openapi() -> Any:
    openapi = load_openapi()
    if openapi is None:
        unavailable(MISSING)
    return openapi


@pytest.fixture(scope="session")
def jira_openapi() -> Any:
    return require_openapi()


@dataclass
class Exchange:
    method: str
    url: str
    request_headers: dict[str, str]
    request_body: bytes
    status: int
    response_headers: dict[str, str]
    response_body: bytes


# Paths outside the platform document that a run may call, and why each is allowed unchecked.
ALLOWED_PREFIXES = (
    "/authorize",  # OAuth 3LO consent (auth.atlassian.com): the test's consent step, not the platform API
    "/oauth/token",  # OAuth token endpoint and accessible-resources (auth/api.atlassian.com), separate documents
    "/rest/webhooks/1.0/webhook",  # admin (legacy) webhooks: a Jira REST resource the platform document omits
    "/_sim/",  # the simulator's own control API
)


@functools.cache
def _spec_paths() -> tuple[re.Pattern[str], ...]:
    """A matcher per path template of the document (``{param}`` matches one segment)."""
    path = spec_path()
    if path is None:
        return ()
    templates = json.loads(path.read_text(encoding="utf-8"))["paths"]
    return tuple(re.compile("^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(t)) + "$") for t in templates)


def _strip_cloud(path: str) -> str:
    """``/ex/jira/{cloudId}/rest/...`` (the OAuth gateway form) -> ``/rest/...``."""
    if path.startswith("/ex/jira/"):
        return "/" + path.split("/", 4)[4] if path.count("/") >= 4 else "/"
    return path


def api_path(url: str) -> str | None:
    """The document path a platform REST URL validates against, None for an allow-listed one; a path the document
    does not have is returned as is (``validate`` reports it).

    ``/rest/api/2/...`` is validated against the ``/rest/api/3/...`` operation of the same path: the v2 document is
    not in shared/specs, and v2 differs from v3 only in rich-text fields (wiki markup strings instead of ADF), which
    the connector sends and reads as ADF on v3 alone.
    """
    path = _strip_cloud(urlsplit(url).path)
    if any(path.startswith(prefix) for prefix in ALLOWED_PREFIXES):
        return None
    if path.startswith("/rest/api/2/"):
        path = "/rest/api/3/" + path[len("/rest/api/2/") :]
    return path


def documented(path: str) -> bool:
    return any(pattern.match(path) for pattern in _spec_paths())


class _Request:
    def __init__(self, ex: Exchange, path: str) -> None:
        from openapi_core.datatypes import RequestParameters
        from werkzeug.datastructures import Headers, ImmutableMultiDict

        query = parse_qs(urlsplit(ex.url).query, keep_blank_values=True)
        self.host_url = SPEC_SERVER
        self.path = path
        self.full_url_pattern = SPEC_SERVER + path
        self.method = ex.method.lower()
        self.parameters = RequestParameters(
            query=ImmutableMultiDict([(k, v) for k, vs in query.items() for v in vs]),
            header=Headers(ex.request_headers),
            cookie=ImmutableMultiDict({}),
        )
        self.body = ex.request_body or None
        self.content_type = ex.request_headers.get("content-type", "application/json").split(";")[0].strip()


class _Response:
    def __init__(self, ex: Exchange) -> None:
        from werkzeug.datastructures import Headers

        self.data = ex.response_body
        self.status_code = ex.status
        self.headers = Headers(ex.response_headers)
        self.content_type = ex.response_headers.get("content-type", "application/json").split(";")[0].strip()


def _describe(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    cause = exc.__cause__
    if cause is not None:
        text += f" ({cause})"
        errors = getattr(cause, "schema_errors", None)
        if errors:
            text += " " + "; ".join(str(getattr(e, "message", e))[:300] for e in errors)
    return text[:1200]


def validate(openapi: Any, ex: Exchange, *, check_request: bool = True) -> list[str]:
    """Problems found validating one exchange (empty list = valid); allow-listed URLs are skipped, an
    undocumented path is a problem.

    A 202/204 with an empty body passes even where the document declares ``application/json`` with an empty
    schema (editIssue, doTransition): HTTP forbids a 204 body and real Jira sends none.
    """
    path = api_path(ex.url)
    if path is None:
        return []
    if not documented(path):
        return [f"request {ex.method} {path} -> {ex.status}: no such path in the official document"]
    from openapi_core.templating.responses.exceptions import ResponseNotFound

    problems: list[str] = []
    where = f"{ex.method} {path} -> {ex.status}"
    request = _Request(ex, path)
    if check_request:
        try:
            openapi.validate_request(request)
        except Exception as exc:  # openapi-core raises a family of errors
            problems.append(f"request {where}: {_describe(exc)}")
    if ex.status in (202, 204) and not ex.response_body:
        return problems
    try:
        openapi.validate_response(request, _Response(ex))
    except ResponseNotFound:
        problems.append(f"response {where}: status not documented")
    except Exception as exc:
        problems.append(f"response {where}: {_describe(exc)} body={ex.response_body[:300]!r}")
    return problems


def validate_all(openapi: Any, exchanges: Iterable[Exchange], *, check_request: bool = True) -> list[str]:
    return [p for ex in exchanges for p in validate(openapi, ex, check_request=check_request)]


class Recorder:
    """``httpx2.Client(event_hooks={"response": [recorder]})`` records each exchange (the body is read here)."""

    def __init__(self) -> None:
        self.exchanges: list[Exchange] = []

    def __call__(self, response: Any) -> None:
        response.read()
        request = response.request
        self.exchanges.append(
            Exchange(
                method=request.method,
                url=str(request.url),
                request_headers={k.lower(): v for k, v in request.headers.items()},
                request_body=bytes(request.content or b""),
                status=response.status_code,
                response_headers={k.lower(): v for k, v in response.headers.items()},
                response_body=bytes(response.content),
            )
        )

    def statuses(self) -> list[tuple[str, str, int]]:
        return [(e.method, urlsplit(e.url).path, e.status) for e in self.exchanges]


# The simulator's log keeps the auth scheme, never the credentials; the document's security check wants a header.
_PLACEHOLDER_AUTH = {"basic": "Basic cmVkYWN0ZWQ6cmVkYWN0ZWQ=", "bearer": "Bearer redacted"}


def logged_exchanges(entries: Iterable[dict[str, Any]]) -> list[Exchange]:
    """The exchanges of a Jira simulator request log (``GET /_sim/requests``) kept with ``record_exchanges`` on."""
    exchanges = []
    for entry in entries:
        assert "response_body" in entry, f"logged without record_exchanges: {entry}"
        headers = dict(entry["request_headers"])
        if entry["auth"] in _PLACEHOLDER_AUTH:
            headers["authorization"] = _PLACEHOLDER_AUTH[entry["auth"]]
        query = f"?{entry['query']}" if entry["query"] else ""
        exchanges.append(
            Exchange(
                method=entry["method"],
                url=f"{SPEC_SERVER}{entry['path']}{query}",
                request_headers=headers,
                request_body=entry["request_body"].encode(),
                status=entry["status"],
                response_headers=dict(entry["response_headers"]),
                response_body=entry["response_body"].encode(),
            )
        )
    return exchanges


def dumps(value: Any) -> str:
    return json.dumps(value, indent=1)[:2000]
