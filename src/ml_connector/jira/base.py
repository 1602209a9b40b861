"""What every group of Jira operations stands on: one ``ApiSession`` and the REST v3 path prefix.

All I/O goes through ``ApiSession`` (pacing, classification, retries honouring ``Retry-After``). Writes to one issue
pass ``pace_keys=("burst:<class>", "issue:<id>")`` so a per-issue 429 slows only that issue and a burst 429 slows
only that endpoint class. Creates are not idempotent: ``ApiSession`` resends a POST only when Jira provably did not
act (a 429, or a connection never made).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any, Self
from urllib.parse import quote as urlquote

import httpx2
from typing_extensions import Unpack

from ml_connector.http import ApiSession
from ml_connector.http.session import RequestOptions
from ml_connector.jira.auth import OAuthTokenManager
from ml_connector.jira.paging import offset_pages

API = "rest/api/3"
SYSTEM = "jira"


def path_id(id_or_key: str | int) -> str:
    """One path segment (an issue key, a property key), percent-encoded so it cannot address another resource."""
    return urlquote(str(id_or_key), safe="")


def issue_write_keys(kind: str, id_or_key: str) -> tuple[str, ...]:
    """Pace keys of a write to one issue: the endpoint class's burst limit and the issue's own."""
    return (f"burst:{kind}", f"issue:{id_or_key}")


class JiraBase:
    """The session, its shutdown and the two request shapes the operation groups use."""

    def __init__(self, session: ApiSession, *, token_manager: OAuthTokenManager | None = None) -> None:
        self.session = session
        self.token_manager = token_manager
        self._lock = threading.Lock()

    def close(self) -> None:
        self.session.close()
        if self.token_manager is not None:
            self.token_manager.session.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, **options: Unpack[RequestOptions]) -> httpx2.Response:
        return self.session.request(method, f"{API}/{path}", **options)

    def _json(
        self,
        method: str,
        path: str,
        *,
        expect: type[dict[str, Any]] | type[list[Any]] = dict,
        require: tuple[str, ...] = (),
        **options: Unpack[RequestOptions],
    ) -> Any:
        """The JSON body of a call, checked to be an ``expect`` with the ``require``d keys (``MalformedResponse``)."""
        _, body = self.session.request_json(method, f"{API}/{path}", expect=expect, require=require, **options)
        return body

    def _listing(
        self,
        path: str,
        *,
        page_size: int,
        key: str = "values",
        params: Mapping[str, Any] | None = None,
        pace_keys: tuple[str, ...],
    ) -> list[Any]:
        """Every item of a ``startAt``-paged GET (see :func:`~ml_connector.jira.paging.offset_pages`)."""

        def page(start: int, size: int) -> Mapping[str, Any]:
            query = {"startAt": start, "maxResults": size, **(params or {})}
            data: Mapping[str, Any] = self._json("GET", path, params=query, pace_keys=pace_keys)
            return data

        return list(offset_pages(page, page_size=page_size, key=key, system=SYSTEM))
