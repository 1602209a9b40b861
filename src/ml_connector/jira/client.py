"""``JiraClient``: the Jira Cloud REST v3 operations the connector needs, over one ``ApiSession``.

All I/O goes through ``ApiSession`` (pacing, classification, retries honouring ``Retry-After``). Writes to one issue
pass ``pace_keys=("burst:<class>", "issue:<id>")`` so a per-issue 429 slows only that issue and a burst 429 slows
only that endpoint class. Creates are not idempotent: ``ApiSession`` resends a POST only when Jira provably did not
act (a 429, or a connection never made).
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any
from urllib.parse import quote as urlquote

import httpx2

from ml_connector.config.connections import JiraBasicAuth, JiraConnection, JiraOAuth
from ml_connector.errors import (
    ConnectorError,
    MappingError,
    NotFound,
    PermanentError,
    Rejected,
    TransientError,
    Unavailable,
)
from ml_connector.http import ApiSession, CallObserver, Pacer, build_client
from ml_connector.http.session import may_have_acted
from ml_connector.jira import jql as jqlmod
from ml_connector.jira.auth import OAuthBearerAuth, OAuthTokenManager, discover_cloud_id
from ml_connector.jira.fields import FieldRegistry
from ml_connector.jira.models import CreatedIssue, CreateOutcome, DraftIssue, JiraFailure, Transition, Webhook
from ml_connector.jira.tokens import MemoryTokenStore, TokenStore
from ml_connector.jira.users import UserResolver
from ml_connector.logging import register_secret

API = "rest/api/3"
BULK_LIMIT = 50
# Page sizes: the largest Jira serves for each listing; fewer pages mean fewer calls against the rate limit.
LIST_PAGE_SIZE = 50  # projects, user search
WEBHOOK_PAGE_SIZE = 100
SEARCH_PAGE_SIZE = 100
SEARCH_MAX_PAGES = 1000  # a search longer than this is a paging loop, not data
RECONCILE_LIMIT = 50  # reconcileIssues ids per search
SYSTEM = "jira"


class PagingError(TransientError):
    """A search did not terminate sanely (a repeated page token, or more pages than the bound).

    Transient, so a caller's cursor never advances past a search that may have missed issues.
    """


def _path_id(id_or_key: str | int) -> str:
    return urlquote(str(id_or_key), safe="")


def _failure_from_error(exc: ConnectorError, *, uncertain: bool = False) -> JiraFailure:
    status = getattr(exc, "status", None)
    details = getattr(exc, "details", {}) or {}
    errors = {str(k): str(v) for k, v in (details.get("errors") or {}).items()}
    return JiraFailure(
        status=status,
        error_messages=(exc.message,),
        errors=errors,
        transient=isinstance(exc, TransientError),
        uncertain=uncertain,
    )


def _failure_from_element(element: Mapping[str, Any]) -> JiraFailure:
    status = element.get("status")
    body = element.get("elementErrors")
    body = body if isinstance(body, dict) else {}
    status_int = int(status) if isinstance(status, int | str) and str(status).isdigit() else None
    return JiraFailure(
        status=status_int,
        error_messages=tuple(str(m) for m in body.get("errorMessages") or ()),
        errors={str(k): str(v) for k, v in (body.get("errors") or {}).items()},
        transient=status_int is not None and (status_int == 429 or status_int >= 500),
    )


class JiraClient:
    """Facade over the Jira Cloud REST API v3 for one site."""

    def __init__(
        self,
        session: ApiSession,
        *,
        token_manager: OAuthTokenManager | None = None,
        user_cache_ttl: float = 3600.0,
    ) -> None:
        self.session = session
        self.token_manager = token_manager
        self._fields: FieldRegistry | None = None
        self._myself: dict[str, Any] | None = None
        self._lock = threading.Lock()
        self.users = UserResolver(self.search_users, ttl=user_cache_ttl)

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_connection(
        cls,
        connection: JiraConnection,
        *,
        token_store: TokenStore | None = None,
        pacer: Pacer | None = None,
        observer: CallObserver | None = None,
        transport: httpx2.BaseTransport | None = None,
    ) -> JiraClient:
        """Build the client: Basic against the site URL; OAuth against ``{api_url}/ex/jira/{cloudId}``."""
        settings = connection.http
        auth = connection.auth
        if isinstance(auth, JiraBasicAuth):
            register_secret(auth.api_token.get_secret_value())
            client = build_client(
                connection.site_url,
                settings,
                auth=httpx2.BasicAuth(auth.email, auth.api_token.get_secret_value()),
                transport=transport,
            )
            return cls(ApiSession(client, system=SYSTEM, settings=settings, pacer=pacer, observer=observer))
        assert isinstance(auth, JiraOAuth)
        store = token_store or MemoryTokenStore()
        token_http = build_client(str(auth.auth_url).rstrip("/"), settings, transport=transport)
        token_session = ApiSession(token_http, system=SYSTEM, settings=settings, observer=observer)
        manager = OAuthTokenManager(
            session=token_session,
            client_id=auth.client_id,
            client_secret=auth.client_secret.get_secret_value(),
            store=store,
            initial_refresh_token=auth.refresh_token.get_secret_value() if auth.refresh_token else None,
        )
        bearer = OAuthBearerAuth(manager)
        api_url = str(auth.api_url).rstrip("/")
        cloud_id = auth.cloud_id or (manager.current.cloud_id if manager.current else None)
        if not cloud_id:
            discovery = ApiSession(
                build_client(api_url, settings, auth=bearer, transport=transport),
                system=SYSTEM,
                settings=settings,
                observer=observer,
            )
            try:
                cloud_id = discover_cloud_id(discovery, connection.site_url)
            finally:
                discovery.close()
            manager.set_cloud_id(cloud_id)
        client = build_client(f"{api_url}/ex/jira/{cloud_id}", settings, auth=bearer, transport=transport)
        session = ApiSession(client, system=SYSTEM, settings=settings, pacer=pacer, observer=observer)
        return cls(session, token_manager=manager)

    def close(self) -> None:
        self.session.close()
        if self.token_manager is not None:
            self.token_manager.session.close()

    def __enter__(self) -> JiraClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        idempotent: bool | None = None,
        pace_keys: tuple[str, ...] = (),
        allow_status: tuple[int, ...] = (),
    ) -> httpx2.Response:
        return self.session.request(
            method,
            f"{API}/{path}",
            params=params,
            json=json,
            idempotent=idempotent,
            pace_keys=pace_keys,
            allow_status=allow_status,
        )

    def _json(
        self,
        method: str,
        path: str,
        *,
        expect: type[dict[str, Any]] | type[list[Any]] = dict,
        require: tuple[str, ...] = (),
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        idempotent: bool | None = None,
        pace_keys: tuple[str, ...] = (),
    ) -> Any:
        """The JSON body of a call, checked to be an ``expect`` with the ``require``d keys (``MalformedResponse``)."""
        _, body = self.session.request_json(
            method,
            f"{API}/{path}",
            expect=expect,
            require=require,
            params=params,
            json=json,
            idempotent=idempotent,
            pace_keys=pace_keys,
        )
        return body

    # ------------------------------------------------------------------ account and metadata

    def myself(self, *, refresh: bool = False) -> dict[str, Any]:
        """The connector's own account (cached): ``accountId``, ``timeZone``..."""
        if self._myself is None or refresh:
            data = self._json("GET", "myself", pace_keys=("burst:read",))
            self._myself = data
        return self._myself

    def time_zone(self) -> str:
        """The zone JQL datetimes are read in for this account."""
        return str(self.myself().get("timeZone") or "UTC")

    def server_info(self) -> dict[str, Any]:
        data: dict[str, Any] = self._json("GET", "serverInfo", pace_keys=("burst:read",))
        return data

    def fields(self, *, refresh: bool = False) -> FieldRegistry:
        """The field registry (one ``GET /field`` per client unless refreshed)."""
        with self._lock:
            if self._fields is None or refresh:
                self._fields = FieldRegistry(self._json("GET", "field", expect=list, pace_keys=("burst:read",)))
            return self._fields

    def projects(self, keys: Sequence[str] = ()) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        start = 0
        while True:
            params: dict[str, Any] = {"startAt": start, "maxResults": LIST_PAGE_SIZE}
            if keys:
                params["keys"] = list(keys)
            page = self._json("GET", "project/search", params=params, pace_keys=("burst:read",))
            values = page.get("values") or []
            out.extend(values)
            if page.get("isLast", True) or not values:
                return out
            start += len(values)

    def priorities(self) -> list[dict[str, Any]]:
        data: list[dict[str, Any]] = self._json("GET", "priority", expect=list, pace_keys=("burst:read",))
        return data

    def create_issue_types(self, project: str) -> list[dict[str, Any]]:
        """Issue types creatable in ``project`` (createmeta, paged)."""
        return self._paged_values(f"issue/createmeta/{_path_id(project)}/issuetypes", key="issueTypes")

    def create_fields(self, project: str, issue_type_id: str) -> list[dict[str, Any]]:
        """Fields (with ``required`` and ``allowedValues``) of the create screen for one project and issue type."""
        return self._paged_values(
            f"issue/createmeta/{_path_id(project)}/issuetypes/{_path_id(issue_type_id)}", key="fields"
        )

    def _paged_values(self, path: str, *, key: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        start = 0
        while True:
            page = self._json("GET", path, params={"startAt": start, "maxResults": 200}, pace_keys=("burst:read",))
            values = page.get(key) or page.get("values") or []
            out.extend(values)
            total = page.get("total")
            if not values or (total is not None and start + len(values) >= int(total)) or page.get("isLast"):
                return out
            if total is None and len(values) < int(page.get("maxResults") or 200):
                return out
            start += len(values)

    # ------------------------------------------------------------------ users

    def search_users(self, query: str) -> list[dict[str, Any]]:
        data: list[dict[str, Any]] = self._json(
            "GET",
            "user/search",
            expect=list,
            params={"query": query, "maxResults": LIST_PAGE_SIZE},
            pace_keys=("burst:user-search",),
        )
        return data

    # ------------------------------------------------------------------ issues

    def create_issue(self, draft: DraftIssue) -> CreatedIssue:
        data = self._json(
            "POST", "issue", require=("id", "key"), json=draft.to_payload(), pace_keys=("burst:issue-create",)
        )
        return CreatedIssue(id=str(data["id"]), key=str(data["key"]), self_url=data.get("self"))

    def bulk_create(
        self,
        drafts: Sequence[DraftIssue],
        *,
        element_retries: int = 2,
        concurrency: int = 1,
        sleep: Callable[[float], None] | None = None,
    ) -> list[CreateOutcome]:
        """Create in chunks of 50; one outcome per draft, in input order.

        ``concurrency`` chunks are in flight at once (latency, not points, is what bulk create waits on; pacing and
        429 handling stay per endpoint in the shared session).

        Failed elements are retried (in a later chunk) only when Jira's per-element status is transient (429, 5xx),
        at most ``element_retries`` times. A whole call that fails after the body was sent, in a way ``ApiSession``
        will not resend, marks its drafts ``uncertain``: some may exist, so the caller reconciles before recreating.
        """
        outcomes: dict[int, CreateOutcome] = {}
        pending = list(range(len(drafts)))
        for round_no in range(element_retries + 1):
            if not pending:
                break
            if round_no:
                delay = self.session.backoff(round_no)
                if sleep is not None:
                    sleep(delay)
                elif self.session.stop.wait(delay):
                    break  # shutting down: the failed elements keep their (transient) outcome
            retry_next: list[int] = []
            chunks = [pending[start : start + BULK_LIMIT] for start in range(0, len(pending), BULK_LIMIT)]
            if concurrency > 1 and len(chunks) > 1:
                with ThreadPoolExecutor(max_workers=min(concurrency, len(chunks))) as pool:
                    # Each worker runs in a copy of this context, so the run's rate-limit budget applies there too.
                    futures = [
                        pool.submit(contextvars.copy_context().run, self._bulk_chunk, drafts, chunk) for chunk in chunks
                    ]
                    results = [future.result() for future in futures]
            else:
                results = [self._bulk_chunk(drafts, chunk) for chunk in chunks]
            for result in results:
                for index, outcome in result.items():
                    outcomes[index] = outcome
                    failure = outcome.failure
                    if failure is not None and failure.transient and not failure.uncertain:
                        retry_next.append(index)
            pending = sorted(retry_next)
        return [outcomes[i] for i in range(len(drafts))]

    def _bulk_chunk(self, drafts: Sequence[DraftIssue], chunk: list[int]) -> dict[int, CreateOutcome]:
        if self.session.stop.is_set():  # shutting down: this chunk is not sent (Jira provably made nothing)
            stopped = Unavailable("not sent: the process is stopping", system="jira", not_sent=True)
            failure = _failure_from_error(stopped, uncertain=False)
            return {i: CreateOutcome(index=i, draft=drafts[i], failure=failure) for i in chunk}
        body = {"issueUpdates": [drafts[i].to_payload() for i in chunk]}
        try:
            response, data = self.session.request_json(
                "POST", f"{API}/issue/bulk", json=body, pace_keys=("burst:issue-bulk",), allow_status=(400,)
            )
        except (TransientError, PermanentError) as exc:
            # A transient error ApiSession did not resend (a 500, a reset or a malformed answer after the body was
            # sent) means Jira may have acted: the caller reconciles before creating again.
            uncertain = isinstance(exc, TransientError) and may_have_acted(exc)
            failure = _failure_from_error(exc, uncertain=uncertain)
            return {i: CreateOutcome(index=i, draft=drafts[i], failure=failure) for i in chunk}
        errors, issues = data.get("errors"), data.get("issues")
        if response.status_code == 400 and not isinstance(errors, list):
            failure = JiraFailure(
                status=400,
                error_messages=tuple(str(m) for m in data.get("errorMessages") or ()),
                errors={str(k): str(v) for k, v in errors.items()} if isinstance(errors, dict) else {},
            )
            return {i: CreateOutcome(index=i, draft=drafts[i], failure=failure) for i in chunk}
        failed: dict[int, JiraFailure] = {}
        for element in errors if isinstance(errors, list) else []:
            position = element.get("failedElementNumber") if isinstance(element, dict) else None
            if isinstance(position, int) and 0 <= position < len(chunk):
                failed[position] = _failure_from_element(element)
        created = iter(issues if isinstance(issues, list) else [])
        result: dict[int, CreateOutcome] = {}
        # Jira lists created issues in request order, skipping failed elements.
        for position, index in enumerate(chunk):
            if position in failed:
                result[index] = CreateOutcome(index=index, draft=drafts[index], failure=failed[position])
                continue
            issue = next(created, None)
            if not isinstance(issue, dict) or "id" not in issue or "key" not in issue:
                problem = "lists fewer issues than sent" if issue is None else "lists an issue without id and key"
                result[index] = CreateOutcome(
                    index=index,
                    draft=drafts[index],
                    failure=JiraFailure(
                        status=None,
                        error_messages=(f"bulk response {problem}",),
                        transient=True,
                        uncertain=True,
                    ),
                )
                continue
            result[index] = CreateOutcome(
                index=index,
                draft=drafts[index],
                issue=CreatedIssue(id=str(issue["id"]), key=str(issue["key"]), self_url=issue.get("self")),
            )
        return result

    def edit_issue(
        self,
        id_or_key: str,
        fields: Mapping[str, Any] | None = None,
        *,
        update: Mapping[str, Any] | None = None,
        properties: Mapping[str, Any] | None = None,
        notify_users: bool = True,
    ) -> None:
        """``PUT /issue/{id}``; status changes are ignored by Jira here (use :meth:`transition_to`)."""
        body: dict[str, Any] = {}
        if fields:
            body["fields"] = dict(fields)
        if update:
            body["update"] = dict(update)
        if properties:
            body["properties"] = [{"key": k, "value": v} for k, v in properties.items()]
        params = None if notify_users else {"notifyUsers": "false"}
        self._call(
            "PUT",
            f"issue/{_path_id(id_or_key)}",
            params=params,
            json=body,
            pace_keys=("burst:issue-write", f"issue:{id_or_key}"),
        )

    def get_issue(
        self,
        id_or_key: str,
        *,
        fields: Sequence[str] | None = None,
        properties: Sequence[str] = (),
        expand: Sequence[str] = (),
    ) -> dict[str, Any]:
        params: dict[str, Any] = {}
        if fields is not None:
            params["fields"] = ",".join(fields)
        if properties:
            params["properties"] = ",".join(properties)
        if expand:
            params["expand"] = ",".join(expand)
        data: dict[str, Any] = self._json(
            "GET", f"issue/{_path_id(id_or_key)}", params=params or None, pace_keys=("burst:issue-read",)
        )
        return data

    def delete_issue(self, id_or_key: str) -> None:
        self._call("DELETE", f"issue/{_path_id(id_or_key)}", pace_keys=("burst:issue-write", f"issue:{id_or_key}"))

    # ------------------------------------------------------------------ issue properties

    def set_property(self, id_or_key: str, key: str, value: Any) -> None:
        self._call(
            "PUT",
            f"issue/{_path_id(id_or_key)}/properties/{_path_id(key)}",
            json=value,
            pace_keys=("burst:issue-write", f"issue:{id_or_key}"),
        )

    def get_property(self, id_or_key: str, key: str) -> Any:
        """The property value, or None when the issue has no such property."""
        response, body = self.session.request_json(
            "GET",
            f"{API}/issue/{_path_id(id_or_key)}/properties/{_path_id(key)}",
            pace_keys=("burst:issue-read",),
            allow_status=(404,),
        )
        if response.status_code == 404:
            raw = body.get("errorMessages")
            messages = " ".join(str(m) for m in raw) if isinstance(raw, list) else ""
            if "issue" in messages.lower() and "property" not in messages.lower():
                raise NotFound(f"issue {id_or_key} not found: {messages}", system=SYSTEM, status=404)
            return None
        return body.get("value")

    def property_keys(self, id_or_key: str) -> list[str]:
        data = self._json("GET", f"issue/{_path_id(id_or_key)}/properties", pace_keys=("burst:issue-read",))
        return [str(k["key"]) for k in data.get("keys") or []]

    def delete_property(self, id_or_key: str, key: str) -> None:
        self._call(
            "DELETE",
            f"issue/{_path_id(id_or_key)}/properties/{_path_id(key)}",
            pace_keys=("burst:issue-write", f"issue:{id_or_key}"),
            allow_status=(404,),
        )

    # ------------------------------------------------------------------ search

    def search(
        self,
        jql: str,
        *,
        fields: Sequence[str] = ("summary", "status", "updated", "labels"),
        properties: Sequence[str] = (),
        page_size: int = SEARCH_PAGE_SIZE,
        max_pages: int = SEARCH_MAX_PAGES,
        reconcile_issues: Iterable[int | str] = (),
        expand: Sequence[str] = (),
    ) -> Iterator[dict[str, Any]]:
        """Every issue matching ``jql`` once, following ``nextPageToken``.

        Raises :class:`PagingError` when Jira repeats a page token or the search exceeds ``max_pages``, after the
        pages read so far were yielded. ``reconcile_issues`` (≤ 50 ids just written) gives read-after-write
        consistency despite index lag; it is sent unchanged on every page as Jira requires.
        """
        if len(properties) > 5:
            raise ValueError("Jira returns at most 5 issue properties per search")
        reconcile = [int(i) for i in reconcile_issues]
        if len(reconcile) > RECONCILE_LIMIT:
            raise ValueError("reconcileIssues takes at most 50 issue ids")
        seen_tokens: set[str] = set()
        seen_ids: set[str] = set()
        token: str | None = None
        pages = 0
        while True:
            body: dict[str, Any] = {"jql": jql, "maxResults": page_size, "fields": list(fields)}
            if properties:
                body["properties"] = list(properties)
            if expand:
                body["expand"] = ",".join(expand)
            if reconcile:
                body["reconcileIssues"] = reconcile
            if token is not None:
                body["nextPageToken"] = token  # omitted on the first page: the schema has no null
            data = self._json("POST", "search/jql", json=body, idempotent=True, pace_keys=("burst:search",))
            pages += 1
            for issue in data.get("issues") or []:
                issue_id = str(issue.get("id"))
                if issue_id in seen_ids:
                    continue
                seen_ids.add(issue_id)
                yield issue
            token = data.get("nextPageToken")
            if data.get("isLast") or not token:
                return
            if token in seen_tokens:
                raise PagingError(f"search/jql repeated a page token after {pages} pages", system=SYSTEM)
            if pages >= max_pages:
                raise PagingError(f"search/jql exceeded {max_pages} pages; narrow the JQL", system=SYSTEM)
            seen_tokens.add(token)

    def updated_since_clause(self, instant: datetime) -> str:
        """``updated >= "..."`` rendered in this account's time zone (see :func:`jql.updated_bound`)."""
        return jqlmod.updated_since(instant, self.time_zone())

    # ------------------------------------------------------------------ transitions

    def transitions(self, id_or_key: str) -> list[Transition]:
        data = self._json(
            "GET",
            f"issue/{_path_id(id_or_key)}/transitions",
            params={"expand": "transitions.fields"},
            pace_keys=("burst:issue-read",),
        )
        out = []
        for item in data.get("transitions") or []:
            to = item.get("to") or {}
            out.append(
                Transition(
                    id=str(item["id"]),
                    name=str(item.get("name") or ""),
                    to_status=str(to.get("name") or ""),
                    to_status_id=str(to["id"]) if to.get("id") is not None else None,
                    to_category=(to.get("statusCategory") or {}).get("key"),
                    fields=dict(item.get("fields") or {}),
                )
            )
        return out

    def transition_to(
        self,
        id_or_key: str,
        status: str,
        *,
        fields: Mapping[str, Any] | None = None,
        update: Mapping[str, Any] | None = None,
    ) -> Transition | None:
        """Move the issue to the status named ``status``; None when it is already there.

        Transition ids differ per workflow, so the target is found by status name among the transitions available
        now. Fields the transition screen requires must be given in ``fields``; missing ones raise
        ``MappingError`` before any write.
        """
        wanted = status.casefold()
        available = self.transitions(id_or_key)
        match = [t for t in available if t.to_status.casefold() == wanted]
        if not match:
            current = self.get_issue(id_or_key, fields=["status"]).get("fields", {}).get("status") or {}
            if str(current.get("name", "")).casefold() == wanted:
                return None
            names = ", ".join(sorted({t.to_status for t in available})) or "none"
            raise Rejected(
                f"issue {id_or_key} in status {current.get('name')!r} has no transition to {status!r} "
                f"(reachable: {names})",
                system=SYSTEM,
                status=400,
            )
        transition = match[0]
        given = set(fields or {}) | set(update or {})
        missing = [f for f in transition.required_fields() if f not in given]
        if missing:
            raise MappingError(
                f"transition {transition.name!r} to {transition.to_status!r} requires fields: {', '.join(missing)}",
                field=missing[0],
            )
        body: dict[str, Any] = {"transition": {"id": transition.id}}
        if fields:
            body["fields"] = dict(fields)
        if update:
            body["update"] = dict(update)
        self._call(
            "POST",
            f"issue/{_path_id(id_or_key)}/transitions",
            json=body,
            pace_keys=("burst:issue-transition", f"issue:{id_or_key}"),
        )
        return transition

    # ------------------------------------------------------------------ webhooks

    def register_webhooks(self, url: str, webhooks: Sequence[Mapping[str, Any]]) -> list[int | JiraFailure]:
        """Register dynamic webhooks; one entry per input: the new id, or Jira's reason for refusing it."""
        data = self._json(
            "POST",
            "webhook",
            json={"url": url, "webhooks": [dict(w) for w in webhooks]},
            pace_keys=("burst:webhook",),
        )
        out: list[int | JiraFailure] = []
        for result in data.get("webhookRegistrationResult") or []:
            if result.get("createdWebhookId") is not None:
                out.append(int(result["createdWebhookId"]))
            else:
                out.append(JiraFailure(status=400, error_messages=tuple(str(e) for e in result.get("errors") or ())))
        return out

    def refresh_webhooks(self, ids: Sequence[int]) -> str | int | None:
        """Extend the 30-day life of ``ids``; returns Jira's new expiration (ISO string or epoch ms)."""
        data = self._json(
            "PUT", "webhook/refresh", json={"webhookIds": [int(i) for i in ids]}, pace_keys=("burst:webhook",)
        )
        value: str | int | None = data.get("expirationDate")
        return value

    def list_webhooks(self) -> list[Webhook]:
        out: list[Webhook] = []
        start = 0
        while True:
            page = self._json(
                "GET",
                "webhook",
                params={"startAt": start, "maxResults": WEBHOOK_PAGE_SIZE},
                pace_keys=("burst:webhook",),
            )
            values = page.get("values") or []
            for item in values:
                out.append(
                    Webhook(
                        id=int(item["id"]),
                        jql_filter=item.get("jqlFilter"),
                        events=tuple(item.get("events") or ()),
                        expiration=item.get("expirationDate"),
                        raw=dict(item),
                    )
                )
            if page.get("isLast", True) or not values:
                return out
            start += len(values)

    def delete_webhooks(self, ids: Sequence[int]) -> None:
        self._call("DELETE", "webhook", json={"webhookIds": [int(i) for i in ids]}, pace_keys=("burst:webhook",))
