"""Search and its index: frozen issue copies fed through a delay queue (index lag, optionally jittered so changes
show up out of order), JQL paging with reusable page tokens."""

from __future__ import annotations

import heapq
import itertools
import secrets
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from ml_connector.sim.jira.common import ApiError, Principal
from ml_connector.sim.jira.jql import Compiled, Index, JqlError, compile_query, sort_issues
from ml_connector.sim.jira.model import Issue

if TYPE_CHECKING:
    from ml_connector.sim.jira.core import JiraSim

MAX_RECONCILE = 50
MAX_TOKENS = 20000
TOKEN_TTL = timedelta(days=7)  # jira-api.md §2: a nextPageToken "will expire in 7 days"
BAD_TOKEN = "The provided next page token is invalid or expired."


@dataclass
class Cursor:
    """One search's frozen, ordered result; each page start has one token, so a page fetched again is the same."""

    ids: list[int]
    reconciled: set[int]
    jql: str
    tokens: dict[int, str] = field(default_factory=dict)  # page start -> its token


@dataclass
class PageToken:
    cursor: Cursor
    pos: int
    expires: datetime


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
        self.indexed_seq: dict[int, int] = {}  # issue id -> the newest change the index holds
        self.tokens: OrderedDict[str, PageToken] = OrderedDict()

    def reindex(self, issue_id: int, issue: Issue | None) -> None:
        """Feed a change (None = deleted) to the index, now or after the configured lag plus a random jitter (with a
        jitter, changes of different issues become searchable out of order)."""
        snap = issue.snapshot() if issue is not None else None
        seq = next(self.pending_seq)
        faults = self.sim.faults
        delay = faults.index_lag_seconds
        if faults.index_lag_jitter_seconds > 0:
            delay += self.sim.rng.uniform(0, faults.index_lag_jitter_seconds)
        if delay <= 0 and not self.pending:
            self._apply(seq, issue_id, snap)
            return
        heapq.heappush(self.pending, (self.sim.now() + timedelta(seconds=delay), seq, issue_id, snap))

    def _apply(self, seq: int, issue_id: int, snap: Issue | None) -> None:
        if seq < self.indexed_seq.get(issue_id, -1):
            return  # an older change of the issue arriving late never hides a newer one
        self.indexed_seq[issue_id] = seq
        if snap is None:
            self.index.remove(issue_id)
        else:
            self.index.add(snap)

    def _drain(self) -> None:
        now = self.sim.now()
        while self.pending and self.pending[0][0] <= now:
            _, seq, issue_id, snap = heapq.heappop(self.pending)
            self._apply(seq, issue_id, snap)

    def flush(self) -> None:
        """Control: make every pending change searchable now."""
        with self.sim.lock:
            while self.pending:
                _, seq, issue_id, snap = heapq.heappop(self.pending)
                self._apply(seq, issue_id, snap)

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
            cursor, pos = self._resume(req) if req.next_page_token else (self._first_page(req), 0)
            limit_cap = 5000 if req.fields is not None and set(req.fields) <= {"id", "key"} else 100
            size = max(0, min(req.max_results, limit_cap))
            page_ids = cursor.ids[pos : pos + size]
            end = pos + len(page_ids)
            out: dict[str, Any] = {"issues": self._page(cursor, page_ids, req)}
            if end < len(cursor.ids):
                out["nextPageToken"] = self._token(cursor, end)
                out["isLast"] = False
            else:
                out["isLast"] = True
            return out

    def _token(self, cursor: Cursor, pos: int) -> str:
        """The token of the page starting at ``pos``: the same one each time that page is reached again."""
        token = cursor.tokens.get(pos)
        if token is None or token not in self.tokens:
            token = secrets.token_urlsafe(24)
            cursor.tokens[pos] = token
            self.tokens[token] = PageToken(cursor, pos, self.sim.now() + TOKEN_TTL)
            while len(self.tokens) > MAX_TOKENS:
                self.tokens.popitem(last=False)
        return token

    def _resume(self, req: SearchRequest) -> tuple[Cursor, int]:
        """A token is reusable until it expires; an unknown or expired one, or one of another JQL, is a 400."""
        held = self.tokens.get(req.next_page_token or "")
        if held is None or held.expires < self.sim.now() or held.cursor.jql != req.jql:
            raise ApiError(400, [BAD_TOKEN])
        return held.cursor, held.pos

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
        return Cursor([i.id for i in ordered], recon, req.jql)

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
