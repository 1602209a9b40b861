"""JQL search over ``POST /search/jql``, which pages by ``nextPageToken`` (it has no ``startAt`` and no ``total``)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

from ml_connector.jira import jql as jqlmod
from ml_connector.jira.base import SYSTEM
from ml_connector.jira.metadata import MetadataOps
from ml_connector.jira.paging import MAX_PAGES, PagingError

SEARCH_PAGE = 100  # issues per /search/jql page: the most Jira returns with only a few fields asked
MAX_PROPERTIES = 5  # issue properties Jira returns per search
MAX_RECONCILE = 50  # issue ids reconcileIssues takes


def _search_body(
    jql: str,
    *,
    page_size: int,
    fields: Sequence[str],
    properties: Sequence[str],
    expand: Sequence[str],
    reconcile: list[int],
) -> dict[str, Any]:
    body: dict[str, Any] = {"jql": jql, "maxResults": page_size, "fields": list(fields)}
    if properties:
        body["properties"] = list(properties)
    if expand:
        body["expand"] = ",".join(expand)
    if reconcile:
        body["reconcileIssues"] = reconcile
    return body


class SearchOps(MetadataOps):
    """Search needs the account's time zone to write datetime bounds Jira reads as meant."""

    def search(
        self,
        jql: str,
        *,
        fields: Sequence[str] = ("summary", "status", "updated", "labels"),
        properties: Sequence[str] = (),
        page_size: int = SEARCH_PAGE,
        max_pages: int = MAX_PAGES,
        reconcile_issues: Iterable[int | str] = (),
        expand: Sequence[str] = (),
    ) -> Iterator[dict[str, Any]]:
        """Every issue matching ``jql`` once, following ``nextPageToken``.

        Raises :class:`PagingError` when Jira repeats a page token or the search exceeds ``max_pages``, after the
        pages read so far were yielded. ``reconcile_issues`` (≤ 50 ids just written) gives read-after-write
        consistency despite index lag; it is sent unchanged on every page as Jira requires. A page whose answer was
        lost is resent with the same token: tokens stay valid until they expire (7 days), and give the same page.
        """
        if len(properties) > MAX_PROPERTIES:
            raise ValueError(f"Jira returns at most {MAX_PROPERTIES} issue properties per search")
        reconcile = [int(i) for i in reconcile_issues]
        if len(reconcile) > MAX_RECONCILE:
            raise ValueError(f"reconcileIssues takes at most {MAX_RECONCILE} issue ids")
        body = _search_body(
            jql, page_size=page_size, fields=fields, properties=properties, expand=expand, reconcile=reconcile
        )
        seen_tokens: set[str] = set()
        seen_ids: set[str] = set()
        for pages in range(1, max_pages + 1):
            data = self._json("POST", "search/jql", json=body, idempotent=True, pace_keys=("burst:search",))
            for issue in data.get("issues") or []:
                issue_id = str(issue.get("id"))
                if issue_id not in seen_ids:
                    seen_ids.add(issue_id)
                    yield issue
            token = data.get("nextPageToken")
            if data.get("isLast") or not token:
                return
            if token in seen_tokens:
                raise PagingError(f"search/jql repeated a page token after {pages} pages", system=SYSTEM)
            seen_tokens.add(token)
            body["nextPageToken"] = token  # omitted on the first page: the schema has no null
        raise PagingError(f"search/jql exceeded {max_pages} pages; narrow the JQL", system=SYSTEM)

    def first_page(
        self, jql: str, *, fields: Sequence[str], page_size: int = SEARCH_PAGE
    ) -> tuple[list[dict[str, Any]], bool]:
        """The first page of ``jql`` and whether more pages follow (one call, whatever the query matches)."""
        body = _search_body(jql, page_size=page_size, fields=fields, properties=(), expand=(), reconcile=[])
        data = self._json("POST", "search/jql", json=body, idempotent=True, pace_keys=("burst:search",))
        issues = list(data.get("issues") or [])
        return issues, not data.get("isLast") and bool(data.get("nextPageToken"))

    def status_changed_since_clause(self, instant: datetime) -> str:
        """``status CHANGED AFTER "..."`` rendered in this account's time zone (see :func:`jql.changed_since`)."""
        return jqlmod.changed_since("status", instant, self.time_zone())

    def updated_since_clause(self, instant: datetime) -> str:
        """``updated >= "..."`` rendered in this account's time zone (see :func:`jql.updated_bound`)."""
        return jqlmod.updated_since(instant, self.time_zone())
