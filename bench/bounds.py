"""Lower bounds: the least time any client could need for a scenario's work under the simulators' limits.

    lower_bound = max( IFS_fewest / IFS_rate,
                       max over Jira endpoints e of ( Σ lead[e] + max(0, Jira_fewest[e] - capacity) / rate + one call ),
                       max over Jira endpoints e of ( Σ lead[e] + max( Σ_calls(latency + server_time) / in_flight,
                                                                       busiest_slot[e] ) ),
                       Σ over chain calls of (latency + server_time) )
    efficiency  = lower_bound / measured wall time

* ``IFS_rate`` is the IFS budget (``rate_limit_per_minute`` / 60 requests per second, one budget per client id).
* Jira's burst limit is a token bucket per endpoint (method + path template) whose rate depends on the method
  (jira-api.md §9: GET and POST 100/s, PUT and DELETE 50/s; the simulator's ``burst_per_second: "documented"``), so
  each endpoint is its own budget and the slowest one bounds the run. The simulator's bucket holds one second's worth
  and starts full (``BUCKET_SECONDS``), so ``capacity`` calls can go at once and only the rest wait for the rate: the
  last call is let through no earlier than ``(n - capacity) / rate`` after the first, and its answer comes one call's
  duration (latency + server time) later. ``lead[e]`` are the calls that must be answered before the endpoint's first
  call can be made (the reads an edit's content comes from). The per-issue write limit never binds here: the
  fewest-calls plan writes each issue once.
* ``in_flight`` is the most Jira calls per endpoint the connector is allowed to keep in flight: with ``in_flight``
  calls overlapping, an endpoint's calls take at least their summed durations (latency plus modelled server time)
  divided by ``in_flight``, after its lead. Calls are whole, so ``busiest_slot`` is the tighter form of the same
  argument: of ``in_flight`` slots, one carries at least ``1 / in_flight`` of the items (issues of a bulk create,
  at most 50 a call) or of the calls, one call after another: 10,000 issues over 32 slots put 313 issues, so 7
  calls, on one slot.
* ``server_time`` is the simulators' modelled work per call (``ml_connector.sim.servertime.PROFILES``; 0 without a
  profile), sized by the rows a read returns or the issues a bulk create carries.
* ``chain`` are calls that cannot overlap because each needs the previous answer (a token before the first read;
  page *n + 1* needs page *n*'s nextLink; a write needs the ETag read). Everything else could in principle run
  concurrently, so only this chain's latency and server time are unavoidable. A whole collection read in key order
  is two chains, one from each end (``ml_connector.ifs.bothends``), each reading half of it.

Every fewest-calls count below is spelled out; where a count depends on a size that only the simulator knows (line
rows, distinct assignees) the caller passes the measured value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ml_connector.sim.jira.options import DOCUMENTED_BURST
from ml_connector.sim.jira.ratelimit import BUCKET_SECONDS, burst_rate
from ml_connector.sim.servertime import PROFILES, Operation, ServerTimeProfile, server_seconds

IFS_MAX_PAGE = 4999  # IFS refuses $top / maxpagesize of 5000 or more
JIRA_BULK = 50  # POST /issue/bulk takes at most 50 issues
JIRA_SEARCH_PAGE = 100  # /search/jql returns at most 100 issues per page when fields are requested
ETAGS_PER_READ = 200  # "OrderNo eq '…' or …" terms that fit one ~8 KB request line (≈ 35 encoded chars each)
# The simulators' modelled operation behind each Jira endpoint the bounds count (as the Jira simulator classifies them).
JIRA_OPERATIONS: dict[str, Operation] = {
    "POST /rest/api/3/issue/bulk": "jira.bulk_create",
    "PUT /rest/api/3/issue/{id}": "jira.edit",
    "POST /rest/api/3/search/jql": "jira.search",
}

BurstSetting = float | dict[str, float] | str | None


@dataclass
class Limits:
    latency_s: float
    ifs_per_minute: float | None
    jira_burst: BurstSetting  # as the Jira simulator's ``burst_per_second`` fault: "documented", a number, a mapping
    jira_per_issue_per_second: float | None
    jira_in_flight: int = 32
    server_time_profile: ServerTimeProfile | None = None

    def burst(self, method: str) -> float | None:
        return burst_rate(self.jira_burst, method)

    def burst_wait(self, method: str, calls: int) -> float:
        """The least time between the first and the last of ``calls`` calls through one endpoint's burst bucket."""
        rate = self.burst(method)
        return max(0.0, calls - rate * BUCKET_SECONDS) / rate if rate else 0.0

    def call_s(self, operation: Operation | None, items: int = 0) -> float:
        """One call's duration: the latency plus its modelled server time."""
        return self.latency_s + self.server(operation, items)

    def server(self, operation: Operation | None, items: int = 0) -> float:
        return server_seconds(self.server_time_profile, operation, items) if operation else 0.0

    def as_dict(self) -> dict[str, Any]:
        burst = DOCUMENTED_BURST if self.jira_burst == "documented" else self.jira_burst
        return {
            "latency_ms": self.latency_s * 1000,
            "ifs_rate_limit_per_minute": self.ifs_per_minute,
            "jira_burst_per_second_per_endpoint": burst,
            "jira_per_issue_writes_per_second": self.jira_per_issue_per_second,
            "jira_in_flight": self.jira_in_flight,
            "server_time_profile": self.server_time_profile,
            "server_time": {
                op: {"base_s": c.base, "per_item_s": c.per_item}
                for op, c in (PROFILES[self.server_time_profile].items() if self.server_time_profile else ())
            },
        }


@dataclass(frozen=True)
class Call:
    """One call of a chain: what it is, the modelled operation it pays server time for, and its size."""

    what: str
    operation: Operation | None = None
    items: int = 0


@dataclass
class LowerBound:
    ifs: dict[str, int] = field(default_factory=dict)  # what → fewest IFS calls
    jira: dict[str, int] = field(default_factory=dict)  # Jira endpoint → fewest calls
    jira_items: dict[str, int] = field(default_factory=dict)  # Jira endpoint → issues its calls carry (bulk create)
    chain: list[Call] = field(default_factory=list)  # the dependent calls, in order
    lead: dict[str, list[Call]] = field(default_factory=dict)  # Jira endpoint → calls answered before its first call

    def jira_work_s(self, endpoint: str, limits: Limits) -> float:
        """The summed durations (latency + server time) of an endpoint's fewest calls."""
        calls = self.jira[endpoint]
        op = JIRA_OPERATIONS.get(endpoint)
        if op is None or not calls:
            return calls * limits.latency_s
        items = self.jira_items.get(endpoint, 0)
        # the base cost per call and the per-item cost of every item: the same total however the items are split
        server = calls * limits.server(op, 0) + (limits.server(op, items) - limits.server(op, 0))
        return calls * limits.latency_s + server

    def jira_rate_s(self, endpoint: str, limits: Limits) -> float:
        """The endpoint's lead, its burst bucket's wait for its fewest calls, and the last call (of one item)."""
        calls = self.jira[endpoint]
        if not calls or limits.burst(endpoint.split(" ", 1)[0]) is None:
            return 0.0
        lead = sum(limits.call_s(c.operation, c.items) for c in self.lead.get(endpoint, ()))
        wait = limits.burst_wait(endpoint.split(" ", 1)[0], calls)
        return lead + wait + limits.call_s(JIRA_OPERATIONS.get(endpoint), 1)

    def jira_in_flight_s(self, endpoint: str, limits: Limits) -> float:
        """The endpoint's lead, then its summed call durations over the in-flight slots, or its busiest slot's."""
        calls = self.jira[endpoint]
        if not calls:
            return 0.0
        op = JIRA_OPERATIONS.get(endpoint)
        items = self.jira_items.get(endpoint, 0)
        slots = limits.jira_in_flight
        slot_items = math.ceil(items / slots)
        slot_calls = math.ceil(slot_items / JIRA_BULK) if items else math.ceil(calls / slots)
        busiest = slot_calls * limits.call_s(op, 0) + (limits.server(op, slot_items) - limits.server(op, 0))
        lead = sum(limits.call_s(c.operation, c.items) for c in self.lead.get(endpoint, ()))
        return lead + max(self.jira_work_s(endpoint, limits) / slots, busiest)

    def parts(self, limits: Limits) -> dict[str, float]:
        ifs_total = sum(self.ifs.values())
        ifs_s = ifs_total / (limits.ifs_per_minute / 60.0) if limits.ifs_per_minute else 0.0
        jira_s = max((self.jira_rate_s(e, limits) for e in self.jira), default=0.0)
        in_flight_s = max((self.jira_in_flight_s(e, limits) for e in self.jira), default=0.0)
        chain_s = sum(limits.call_s(c.operation, c.items) for c in self.chain)
        return {"ifs_rate_s": ifs_s, "jira_rate_s": jira_s, "jira_in_flight_s": in_flight_s, "chain_s": chain_s}

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
            "chain": [c.what for c in self.chain],
            "lead": {e: [c.what for c in calls] for e, calls in self.lead.items()},
        }


def pages(n: int, size: int) -> int:
    return math.ceil(n / size) if n > 0 else 0


def backfill(records: int, line_rows: int, assignees: int) -> LowerBound:
    """Scenario 1: every order is new. All orders and all their lines can be read as whole sets in maximal pages
    (every order is wanted, so no per-order line filter is needed); Jira needs one bulk create per 50 issues plus the
    metadata the mapping cannot do without (custom field ids, priorities, projects, createmeta for the select
    options) and one user search per distinct assignee email. The chain is the order pages of one end (each needs
    the previous page's nextLink; the other end's pages are read at the same time) and the last page's bulk create;
    line pages are off the chain (the lines of page n's key range can be read while page n + 1 is). The first bulk
    create needs at least the token and a first order page of one row."""
    po_pages = pages(records, IFS_MAX_PAGE)
    half = math.ceil(records / 2)  # the rows of the longer end's chain
    chain_pages = pages(half, IFS_MAX_PAGE)
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
        jira_items={"POST /rest/api/3/issue/bulk": records},
        lead={"POST /rest/api/3/issue/bulk": [Call("IFS token"), Call("IFS order page 1 (one row)", "ifs.read", 1)]},
        chain=[
            Call("IFS token"),
            *[Call(f"IFS order page {i + 1} of one end", "ifs.read", min(IFS_MAX_PAGE, half - i * IFS_MAX_PAGE))
              for i in range(chain_pages)],
            Call("Jira bulk create (last; at least the last order)", "jira.bulk_create", 1),
        ],
    )


def idle(*, warm: bool) -> LowerBound:
    """Scenario 2: nothing changed. One filtered read proves it (``Cf_Changed_At ge cursor``); a one-shot process also
    needs a token. No Jira call is needed at all."""
    ifs = {"changed-since read": 1} if warm else {"token": 1, "changed-since read": 1}
    token = [] if warm else [Call("IFS token")]
    return LowerBound(ifs=ifs, jira={}, chain=[*token, Call("IFS changed-since read", "ifs.read", 0)])


def incremental(changed: int, *, warm: bool) -> LowerBound:
    """Scenario 3: ``changed`` orders edited in IFS. One read returns them, one more returns their lines; each changed
    issue needs exactly one edit (Jira has no bulk edit of different field values). The line read's rows are not
    counted in its server time (at least none: the bound stays a bound). No edit can be sent before both reads are
    answered (they are its content): that is the edits' lead."""
    ifs = {"changed-since read": 1, "line read": 1} if warm else {"token": 1, "changed-since read": 1, "line read": 1}
    reads = [
        *([] if warm else [Call("IFS token")]),
        Call("IFS changed-since read", "ifs.read", changed),
        Call("IFS line read", "ifs.read", 0),
    ]
    edits = "PUT /rest/api/3/issue/{id}"
    return LowerBound(
        ifs=ifs,
        jira={edits: changed},
        chain=[*reads, Call("Jira edit", "jira.edit")],
        lead={edits: reads},
    )


def writeback(transitions: int) -> LowerBound:
    """Scenario 4: ``transitions`` issues moved in Jira. The changed issues come from JQL pages of 100; the ETags of
    ``ETAGS_PER_READ`` records come in one filtered collection read; then one PATCH (with If-Match) per record."""
    search = pages(transitions, JIRA_SEARCH_PAGE)
    etag_reads = pages(transitions, ETAGS_PER_READ)
    return LowerBound(
        ifs={"token": 1, "ETag reads": etag_reads, "PATCH": transitions},
        jira={"POST /rest/api/3/search/jql": search, "GET /rest/api/3/myself": 1},
        chain=[
            *[Call(f"Jira search page {i + 1}", "jira.search") for i in range(search)],
            Call("IFS ETag read (of the last record alone)", "ifs.read", 1),
            Call("IFS PATCH"),
        ],
    )


def webhook_latency() -> LowerBound:
    """Scenario 5, per event: the delivery arrives (loopback, no injected latency), the ETag read is one round trip,
    and the PATCH is logged when it arrives — so one latency is unavoidable between transition and IFS write."""
    return LowerBound(ifs={"ETag read": 1, "PATCH": 1}, jira={}, chain=[Call("IFS ETag read", "ifs.read", 1)])
