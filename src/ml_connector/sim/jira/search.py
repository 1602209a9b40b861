"""Search and its index: frozen issue copies fed through a delay queue (index lag), JQL paging with cursors."""

from __future__ import annotations

import heapq
import itertools
import secrets
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from ml_connector.sim.jira.common import ApiError, Principal
from ml_connector.sim.jira.jql import Compiled, Index, JqlError, compile_query, sort_issues
from ml_connector.sim.jira.model import Issue

if TYPE_CHECKING:
    from ml_connector.sim.jira.core import JiraSim

MAX_RECONCILE = 50
MAX_CURSORS = 1000


@dataclass
class Cursor:
    ids: list[int]
    reconciled: set[int]
    pos: int
    expires: datetime
    jql: str


@dataclass
class SearchRequest:
    jql: str
    next_page_token: str | None
    max_results: int
    fields: list[str] | None
    expand: str
    properties: list[str]
    reconcile: list[int]
    principal: Principal


class SearchIndex:
    """What search sees. Every method expects the site's lock held or takes it."""

    def __init__(self, sim: JiraSim) -> None:
        self.sim = sim
        self.index = Index()
        self.pending: list[tuple[datetime, int, int, Issue | None]] = []
        self.pending_seq = itertools.count()
        self.cursors: OrderedDict[str, Cursor] = OrderedDict()

    def reindex(self, issue_id: int, issue: Issue | None) -> None:
        """Feed a change (None = deleted) to the index, now or after the configured lag."""
        snap = issue.snapshot() if issue is not None else None
        lag = self.sim.faults.index_lag_seconds
        if lag <= 0 and not self.pending:
            self._apply(issue_id, snap)
            return
        due = self.sim.now() + timedelta(seconds=lag)
        heapq.heappush(self.pending, (due, next(self.pending_seq), issue_id, snap))

    def _apply(self, issue_id: int, snap: Issue | None) -> None:
        if snap is None:
            self.index.remove(issue_id)
        else:
            self.index.add(snap)

    def _drain(self) -> None:
        now = self.sim.now()
        while self.pending and self.pending[0][0] <= now:
            _, _, issue_id, snap = heapq.heappop(self.pending)
            self._apply(issue_id, snap)

    def flush(self) -> None:
        """Control: make every pending change searchable now."""
        with self.sim.lock:
            while self.pending:
                _, _, issue_id, snap = heapq.heappop(self.pending)
                self._apply(issue_id, snap)

    def _compile(self, jql: str, principal: Principal) -> Compiled:
        try:
            compiled = compile_query(jql, self.sim.jql_env(principal.account_id))
        except JqlError as exc:
            raise ApiError(400, [str(exc)]) from exc
        if not compiled.bounded:
            raise ApiError(
                400, ["Unbounded JQL queries are not allowed here. Please add a search restriction to your query."]
            )
        return compiled

    def search(self, req: SearchRequest) -> dict[str, Any]:
        with self.sim.lock:
            self._drain()
            cursor = self._resume(req) if req.next_page_token else self._first_page(req)
            limit_cap = 5000 if req.fields is not None and set(req.fields) <= {"id", "key"} else 100
            size = max(0, min(req.max_results, limit_cap))
            page_ids = cursor.ids[cursor.pos : cursor.pos + size]
            cursor.pos += len(page_ids)
            out: dict[str, Any] = {"issues": self._page(cursor, page_ids, req)}
            if cursor.pos < len(cursor.ids):
                token = secrets.token_urlsafe(24)
                self.cursors[token] = cursor
                while len(self.cursors) > MAX_CURSORS:
                    self.cursors.popitem(last=False)
                out["nextPageToken"] = token
                out["isLast"] = False
            else:
                out["isLast"] = True
            return out

    def _resume(self, req: SearchRequest) -> Cursor:
        token = req.next_page_token or ""
        cursor = self.cursors.get(token)
        if cursor is None or cursor.expires < self.sim.now() or cursor.jql != req.jql:
            raise ApiError(400, ["The provided next page token is invalid or expired."])
        del self.cursors[token]
        return cursor

    def _first_page(self, req: SearchRequest) -> Cursor:
        """Match once, in order; later pages walk the frozen id list (reconciled ids read live issues)."""
        compiled = self._compile(req.jql, req.principal)
        if len(req.reconcile) > MAX_RECONCILE:
            raise ApiError(400, [f"The number of issues to reconcile must not exceed {MAX_RECONCILE}."])
        live = self.sim.store.issues
        candidates = compiled.cand(self.index)
        pool = (
            self.index.issues
            if candidates is None
            else {i: self.index.issues[i] for i in candidates if i in self.index.issues}
        )
        recon = {i for i in req.reconcile if i in live}
        matched = [iss for iid, iss in pool.items() if iid not in recon and compiled.pred(iss)]
        matched += [live[i] for i in recon if compiled.pred(live[i])]
        ordered = sort_issues(matched, compiled.order)
        return Cursor([i.id for i in ordered], recon, 0, self.sim.now() + timedelta(days=7), req.jql)

    def _page(self, cursor: Cursor, page_ids: list[int], req: SearchRequest) -> list[dict[str, Any]]:
        live = self.sim.store.issues
        issues = []
        for iid in page_ids:
            source = live.get(iid) if iid in cursor.reconciled else self.index.issues.get(iid)
            if source is None:
                source = live.get(iid)
            if source is None:
                continue  # deleted since the first page
            issues.append(
                self.sim.render.issue_json(
                    source, fields=req.fields, expand=req.expand, properties=req.properties, for_search=True
                )
            )
        return issues

    def approximate_count(self, jql: str, principal: Principal) -> int:
        with self.sim.lock:
            self._drain()
            compiled = self._compile(jql, principal)
            return sum(1 for iss in self.index.issues.values() if compiled.pred(iss))
