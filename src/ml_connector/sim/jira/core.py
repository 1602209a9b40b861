"""One simulated Jira Cloud site, independent of HTTP: the ASGI layer (``app.py``) only translates.

``JiraSim`` holds the site's shared state (options, faults, clock, users) and is a thin facade over modules of one
job each: rendering (``render``), field validation (``fields``), workflow (``workflow``), issues (``issues``),
search and its index (``search``), rate limits (``ratelimit``), the request log (``requestlog``), OAuth (``oauth``)
and webhooks (``webhooks``). All state sits behind one lock: uvicorn serves requests in its thread while tests call
``app.state.sim`` from theirs. Search reads an index of frozen issue copies, fed through a delay queue when index lag
is on, so "recent updates might not be immediately visible" exactly as on Jira Cloud.
"""

from __future__ import annotations

import itertools
import random
import threading
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from ml_connector.sim.jira import fieldmeta, seed
from ml_connector.sim.jira.common import ApiError, Principal, basic_credentials, render_dt
from ml_connector.sim.jira.delivery import DeliveryWorker
from ml_connector.sim.jira.fields import FieldValidator, find_project
from ml_connector.sim.jira.issues import IssueStore
from ml_connector.sim.jira.jql import JqlEnv, UserRef
from ml_connector.sim.jira.model import Issue
from ml_connector.sim.jira.oauth import OAuth
from ml_connector.sim.jira.options import Faults, JiraSimOptions
from ml_connector.sim.jira.ratelimit import PointsQuota, RateLimits
from ml_connector.sim.jira.render import Renderer
from ml_connector.sim.jira.requestlog import Exchange, RequestLog
from ml_connector.sim.jira.search import SearchIndex, SearchRequest
from ml_connector.sim.jira.webhooks import AdminWebhook, Webhooks
from ml_connector.sim.jira.workflow import Workflow

__all__ = ["ApiError", "JiraSim", "Principal", "basic_credentials", "render_dt"]


class JiraSim:
    """One simulated Jira Cloud site. Public methods are the control operations (and what the HTTP layer calls)."""

    def __init__(self, options: JiraSimOptions | None = None) -> None:
        self.lock = threading.RLock()
        self.worker: DeliveryWorker | None = None
        self.log = RequestLog(self.now)  # kept across resets so its record_exchanges switch is too
        self.reset(options or JiraSimOptions())

    # ------------------------------------------------------------------------------------------------ lifecycle
    def reset(self, options: JiraSimOptions | None = None) -> None:
        with self.lock:
            if options is not None:
                self.options = options
            opts = self.options
            self.faults: Faults = opts.faults.model_copy(deep=True)
            self.tz = ZoneInfo(opts.time_zone)
            self.rng = random.Random(self.faults.seed)
            self.clock_offset = 0.0
            self.users = seed.build_users(opts.email, opts.time_zone)
            self.users_by_id = {u.account_id: u for u in self.users}
            self.me = self.users[0]
            self.changelog_seq = itertools.count(100000)
            self.base_url = "http://127.0.0.1"
            self.render = Renderer(self)
            self.fields = FieldValidator(self)
            self.workflow = Workflow(self)
            self.store = IssueStore(self)
            self.search_index = SearchIndex(self)
            self.limits = RateLimits(lambda: self.faults)
            self.quota = PointsQuota(lambda: self.faults, self.now)
            self.log.clear()
            self.oauth = OAuth(self)
            if self.worker is not None:
                self.worker.stop()
            self.hooks = Webhooks(self)
            self.worker = self.hooks.worker
            if opts.admin_webhook_url:
                self.register_admin_webhook(
                    {
                        "name": "ml-connector",
                        "url": opts.admin_webhook_url,
                        "events": ["jira:issue_created", "jira:issue_updated", "jira:issue_deleted"],
                        "secret": opts.webhook_secret,
                    }
                )

    def close(self) -> None:
        if self.worker is not None:
            self.worker.stop()

    def now(self) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=self.clock_offset)

    def set_clock(self, offset_seconds: float) -> None:
        with self.lock:
            self.clock_offset = float(offset_seconds)

    def advance_clock(self, seconds: float) -> None:
        with self.lock:
            self.clock_offset += seconds

    def set_faults(self, changes: dict[str, Any]) -> Faults:
        with self.lock:
            merged = self.faults.model_dump() | changes
            self.faults = Faults.model_validate(merged)
            if "seed" in changes:
                self.rng = random.Random(self.faults.seed)
            if "burst_per_second" in changes or "per_issue_writes_per_second" in changes:
                self.limits.buckets.clear()
            return self.faults

    # ------------------------------------------------------------------------------------------------ users
    def find_users(self, query: str | None, account_id: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            if query and account_id:
                raise ApiError(400, ["The query parameter and accountId cannot be used together."])
            q = (query or "").strip().lower()
            result = [self.user_json(u.account_id) for u in self.users if _user_matches(u, q, account_id)]
            return [r for r in result if r is not None]

    def jql_env(self, account_id: str) -> JqlEnv:
        return JqlEnv(
            users=[UserRef(u.account_id, u.display_name, u.email, u.email_hidden) for u in self.users],
            current_account=account_id,
            tz=self.tz,
            now=self.now(),
            key_to_id=lambda k: self.store.key_map.get(k),
        )

    # ------------------------------------------------------------------------------------------------ rendering
    def user_json(self, account_id: str | None, *, full: bool = False) -> dict[str, Any] | None:
        return self.render.user_json(account_id, full=full)

    def project_json(self, project: seed.Project, *, expand: bool = False) -> dict[str, Any]:
        return self.render.project_json(project, expand=expand)

    def issuetype_json(self, it: seed.IssueType) -> dict[str, Any]:
        return self.render.issuetype_json(it)

    def status_json(self, status_id: str) -> dict[str, Any]:
        return self.render.status_json(status_id)

    def priority_json(self, pid: str) -> dict[str, Any]:
        return self.render.priority_json(pid)

    def issue_json(self, issue: Issue, **options: Any) -> dict[str, Any]:
        """See ``Renderer.issue_json`` for the options (fields, expand, properties, for_search)."""
        return self.render.issue_json(issue, **options)

    def transitions_json(self, issue: Issue, *, with_fields: bool) -> list[dict[str, Any]]:
        return self.render.transitions_json(issue, with_fields=with_fields)

    def created_json(self, issue: Issue) -> dict[str, Any]:
        return self.render.created_json(issue)

    def raw_issue(self, issue: Issue) -> dict[str, Any]:
        return self.render.raw_issue(issue)

    def fields_json(self) -> list[dict[str, Any]]:
        return fieldmeta.fields_json()

    def createmeta_fields(self, project_key: str, issuetype_id: str) -> list[dict[str, Any]]:
        return self.render.createmeta_fields(self.project(project_key), issuetype_id)

    def project(self, key_or_id: str) -> seed.Project:
        return find_project(key_or_id)

    # ------------------------------------------------------------------------------------------------ issues
    def get_issue(self, id_or_key: str) -> Issue:
        return self.store.get(id_or_key)

    def create_issue(self, payload: Any, actor: str, *, notify: bool = True) -> Issue:
        return self.store.create(payload, actor, notify=notify)

    def bulk_create(self, payload: Any, actor: str) -> tuple[int, dict[str, Any]]:
        return self.store.bulk_create(payload, actor)

    def edit_issue(self, id_or_key: str, payload: Any, actor: str, *, check_rate: bool = True) -> Issue:
        return self.store.edit(id_or_key, payload, actor, check_rate=check_rate)

    def delete_issue(self, id_or_key: str, actor: str, *, check_rate: bool = True) -> None:
        self.store.delete(id_or_key, actor, check_rate=check_rate)

    def move_issue(self, id_or_key: str, target: str, issuetype: str | None, actor: str) -> Issue:
        return self.store.move(id_or_key, target, issuetype, actor)

    def set_property(self, id_or_key: str, key: str, value: Any) -> bool:
        return self.store.set_property(id_or_key, key, value)

    def delete_property(self, id_or_key: str, key: str) -> None:
        self.store.delete_property(id_or_key, key)

    def seed_issues(self, specs: list[dict[str, Any]], actor: str | None = None) -> list[Issue]:
        return self.store.seed(specs, actor)

    def list_raw(self, project: str | None = None) -> list[dict[str, Any]]:
        return self.store.list_raw(project)

    # ------------------------------------------------------------------------------------------------ workflow
    def do_transition(self, id_or_key: str, payload: Any, actor: str) -> None:
        self.workflow.do_transition(id_or_key, payload, actor)

    def transition_to_status(self, id_or_key: str, status_name: str, actor: str) -> Issue:
        return self.workflow.transition_to_status(id_or_key, status_name, actor)

    # ------------------------------------------------------------------------------------------------ search
    def search(
        self,
        *,
        jql: str,
        next_page_token: str | None,
        max_results: int,
        fields: list[str] | None,
        expand: str,
        properties: list[str],
        reconcile: list[int],
        principal: Principal,
    ) -> dict[str, Any]:
        request = SearchRequest(jql, next_page_token, max_results, fields, expand, properties, reconcile, principal)
        return self.search_index.search(request)

    def approximate_count(self, jql: str, principal: Principal) -> int:
        return self.search_index.approximate_count(jql, principal)

    def flush_index(self) -> None:
        self.search_index.flush()

    # ------------------------------------------------------------------------------------------------ limits, log
    def check_burst(self, endpoint: str) -> None:
        self.limits.check_burst(endpoint)

    def check_issue_write(self, issue: Issue) -> None:
        self.limits.check_issue_write(issue)

    def log_request(
        self,
        method: str,
        path: str,
        template: str,
        query: str,
        status: int,
        auth: str,
        exchange: Exchange | None,
        received: datetime | None = None,
    ) -> None:
        with self.lock:
            self.log.add(method, path, template, query, status, auth, exchange, received)

    def record_exchanges(self, on: bool) -> None:
        with self.lock:
            self.log.record_exchanges = on

    def request_log(self) -> dict[str, Any]:
        with self.lock:
            return self.log.snapshot()

    def clear_requests(self) -> None:
        with self.lock:
            self.log.clear()

    # ------------------------------------------------------------------------------------------------ OAuth
    def oauth_authorize(self, params: dict[str, str]) -> str:
        return self.oauth.authorize(params)

    def oauth_token(self, form: dict[str, Any]) -> dict[str, Any]:
        return self.oauth.token(form)

    def bearer_principal(self, token: str) -> Principal | None:
        return self.oauth.bearer_principal(token)

    def basic_principal(self, email: str, token: str) -> Principal | None:
        return self.oauth.basic_principal(email, token)

    def accessible_resources(self, site_url: str, token: str) -> list[dict[str, Any]]:
        return self.oauth.accessible_resources(site_url, token)

    # ------------------------------------------------------------------------------------------------ webhooks
    @property
    def admin_webhooks(self) -> dict[int, AdminWebhook]:
        return self.hooks.admin

    @property
    def deliveries(self) -> list[dict[str, Any]]:
        return self.hooks.deliveries

    def register_webhooks(self, payload: Any, principal: Principal) -> dict[str, Any]:
        return self.hooks.register(payload, principal)

    def list_webhooks(self, principal: Principal, start_at: int, max_results: int) -> dict[str, Any]:
        return self.hooks.listing(principal, start_at, max_results)

    def delete_webhooks(self, ids: Any, principal: Principal) -> None:
        self.hooks.delete(ids, principal)

    def refresh_webhooks(self, ids: Any, principal: Principal) -> dict[str, Any]:
        return self.hooks.refresh(ids, principal)

    def register_admin_webhook(self, payload: Any) -> AdminWebhook:
        return self.hooks.register_admin(payload)

    def admin_webhook_json(self, hook: AdminWebhook) -> dict[str, Any]:
        return self.hooks.admin_json(hook)

    def wait_deliveries(self, timeout: float = 10.0) -> bool:
        """Tests: block until the delivery worker is idle (all attempts and retries done)."""
        return self.hooks.wait(timeout)


def _user_matches(user: seed.User, q: str, account_id: str | None) -> bool:
    """User search: by account id, else by name or email prefix (hidden emails match only exactly)."""
    if account_id is not None:
        return user.account_id == account_id
    if not q:
        return False
    names = [user.display_name.lower(), *user.display_name.lower().split()]
    hit = any(n.startswith(q) for n in names)
    if user.email_hidden:
        return hit or user.email.lower() == q
    return hit or user.email.lower().startswith(q)
