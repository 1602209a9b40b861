"""Lower bounds: the least time any client could need for a scenario's work under the simulators' limits.

    lower_bound = max( IFS_fewest / IFS_rate,
                       max over Jira endpoints e of Jira_fewest[e] / Jira_burst,
                       chain_calls * latency )
    efficiency  = lower_bound / measured wall time

* ``IFS_rate`` is the IFS budget (``rate_limit_per_minute`` / 60 requests per second, one budget per client id).
* Jira's burst limit is a token bucket per endpoint (method + path template), so each endpoint is its own budget and
  the slowest one bounds the run. The per-issue write limit never binds here: the fewest-calls plan writes each issue
  once.
* ``chain_calls`` are calls that cannot overlap because each needs the previous answer (a token before the first
  read; page *n + 1* needs page *n*'s nextLink; a write needs the ETag read). Everything else could in principle run
  concurrently, so only this chain's latency is unavoidable.

Every fewest-calls count below is spelled out; where a count depends on a size that only the simulator knows (line
rows, distinct assignees) the caller passes the measured value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

IFS_MAX_PAGE = 4999  # IFS refuses $top / maxpagesize of 5000 or more
JIRA_BULK = 50  # POST /issue/bulk takes at most 50 issues
JIRA_SEARCH_PAGE = 100  # /search/jql returns at most 100 issues per page when fields are requested
ETAGS_PER_READ = 200  # "OrderNo eq '…' or …" terms that fit one ~8 KB request line (≈ 35 encoded chars each)


@dataclass
class Limits:
    latency_s: float
    ifs_per_minute: float | None
    jira_burst_per_second: float | None
    jira_per_issue_per_second: float | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "latency_ms": self.latency_s * 1000,
            "ifs_rate_limit_per_minute": self.ifs_per_minute,
            "jira_burst_per_second_per_endpoint": self.jira_burst_per_second,
            "jira_per_issue_writes_per_second": self.jira_per_issue_per_second,
        }


@dataclass
class LowerBound:
    ifs: dict[str, int] = field(default_factory=dict)  # what → fewest IFS calls
    jira: dict[str, int] = field(default_factory=dict)  # Jira endpoint → fewest calls
    chain: list[str] = field(default_factory=list)  # the dependent calls, in order

    def parts(self, limits: Limits) -> dict[str, float]:
        ifs_total = sum(self.ifs.values())
        ifs_s = ifs_total / (limits.ifs_per_minute / 60.0) if limits.ifs_per_minute else 0.0
        jira_s = 0.0
        if limits.jira_burst_per_second:
            jira_s = max((n / limits.jira_burst_per_second for n in self.jira.values()), default=0.0)
        chain_s = len(self.chain) * limits.latency_s
        return {"ifs_rate_s": ifs_s, "jira_rate_s": jira_s, "latency_chain_s": chain_s}

    def seconds(self, limits: Limits) -> tuple[float, str]:
        parts = self.parts(limits)
        name = max(parts, key=lambda k: parts[k])
        return parts[name], name

    def as_dict(self, limits: Limits) -> dict[str, Any]:
        value, binding = self.seconds(limits)
        return {
            "seconds": value,
            "binding": binding,
            "parts": self.parts(limits),
            "fewest_calls": {"ifs": dict(self.ifs), "ifs_total": sum(self.ifs.values()), "jira": dict(self.jira),
                             "jira_total": sum(self.jira.values())},
            "chain": list(self.chain),
        }


def pages(n: int, size: int) -> int:
    return math.ceil(n / size) if n > 0 else 0


def backfill(records: int, line_rows: int, assignees: int) -> LowerBound:
    """Scenario 1: every order is new. All orders and all their lines can be read as whole sets in maximal pages
    (every order is wanted, so no per-order line filter is needed); Jira needs one bulk create per 50 issues plus the
    metadata the mapping cannot do without (custom field ids, priorities, projects, createmeta for the select
    options) and one user search per distinct assignee email."""
    po_pages = pages(records, IFS_MAX_PAGE)
    return LowerBound(
        ifs={
            "token": 1,
            "supplier lookup page": 1,
            "person lookup page": 1,
            "order pages": po_pages,
            "line pages": pages(line_rows, IFS_MAX_PAGE),
        },
        jira={
            "POST /rest/api/3/issue/bulk": pages(records, JIRA_BULK),
            "GET /rest/api/3/field": 1,
            "GET /rest/api/3/priority": 1,
            "GET /rest/api/3/project/search": 1,
            "GET /rest/api/3/issue/createmeta/{id}/issuetypes": 1,
            "GET /rest/api/3/issue/createmeta/{id}/issuetypes/{id}": 1,
            "GET /rest/api/3/user/search": assignees,
        },
        chain=["IFS token", *[f"IFS order page {i + 1}" for i in range(po_pages)], "Jira bulk create (last)"],
    )


def idle(*, warm: bool) -> LowerBound:
    """Scenario 2: nothing changed. One filtered read proves it (``Cf_Changed_At ge cursor``); a one-shot process also
    needs a token. No Jira call is needed at all."""
    ifs = {"changed-since read": 1} if warm else {"token": 1, "changed-since read": 1}
    return LowerBound(ifs=ifs, jira={}, chain=[*([] if warm else ["IFS token"]), "IFS changed-since read"])


def incremental(changed: int, *, warm: bool) -> LowerBound:
    """Scenario 3: ``changed`` orders edited in IFS. One read returns them, one more returns their lines; each changed
    issue needs exactly one edit (Jira has no bulk edit of different field values)."""
    ifs = {"changed-since read": 1, "line read": 1} if warm else {"token": 1, "changed-since read": 1, "line read": 1}
    return LowerBound(
        ifs=ifs,
        jira={"PUT /rest/api/3/issue/{id}": changed},
        chain=[*([] if warm else ["IFS token"]), "IFS changed-since read", "IFS line read", "Jira edit"],
    )


def writeback(transitions: int) -> LowerBound:
    """Scenario 4: ``transitions`` issues moved in Jira. The changed issues come from JQL pages of 100; the ETags of
    ``ETAGS_PER_READ`` records come in one filtered collection read; then one PATCH (with If-Match) per record."""
    search = pages(transitions, JIRA_SEARCH_PAGE)
    etag_reads = pages(transitions, ETAGS_PER_READ)
    return LowerBound(
        ifs={"token": 1, "ETag reads": etag_reads, "PATCH": transitions},
        jira={"POST /rest/api/3/search/jql": search, "GET /rest/api/3/myself": 1},
        chain=[*[f"Jira search page {i + 1}" for i in range(search)], "IFS ETag read", "IFS PATCH"],
    )


def webhook_latency() -> LowerBound:
    """Scenario 5, per event: the delivery arrives (loopback, no injected latency), the ETag read is one round trip,
    and the PATCH is logged when it arrives — so one latency is unavoidable between transition and IFS write."""
    return LowerBound(ifs={"ETag read": 1, "PATCH": 1}, jira={}, chain=["IFS ETag read"])
