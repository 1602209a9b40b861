"""The request log tests read: every request with its endpoint template, and a count per endpoint.

With ``record_exchanges`` on (``PUT /_sim/requests {"record_exchanges": true}``, or ``sim jira --record-exchanges``)
each entry also keeps what a contract check needs to validate the exchange against the official document: the
headers that matter, the request body and the response. Off by default, so ordinary runs stay cheap. The switch
survives ``/_sim/reset``; the entries do not.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

# Headers a validator reads (content negotiation, Jira's XSRF switch, retry and redirect hints). Credentials are
# never kept: the entry's ``auth`` says which scheme was used.
REQUEST_HEADERS = ("content-type", "accept", "x-atlassian-token", "x-force-accept-language")
RESPONSE_HEADERS = ("content-type", "location", "retry-after", "ratelimit-reason")


@dataclass(frozen=True)
class Exchange:
    """The bodies and headers of one request and its answer, as sent on the wire."""

    request_headers: Mapping[str, str]
    request_body: bytes
    response_headers: Mapping[str, str]
    response_body: bytes

    def as_json(self) -> dict[str, Any]:
        return {
            "request_headers": _kept(self.request_headers, REQUEST_HEADERS),
            "request_body": self.request_body.decode("utf-8", errors="replace"),
            "response_headers": _kept(self.response_headers, RESPONSE_HEADERS),
            "response_body": self.response_body.decode("utf-8", errors="replace"),
        }


def _kept(headers: Mapping[str, str], names: tuple[str, ...]) -> dict[str, str]:
    lowered = {k.lower(): v for k, v in headers.items()}
    return {name: lowered[name] for name in names if name in lowered}


class RequestLog:
    """Not locked itself: the site calls it with its lock held."""

    def __init__(self, now: Callable[[], datetime]) -> None:
        self.now = now
        self.requests: deque[dict[str, Any]] = deque(maxlen=100_000)
        self.counts: dict[str, int] = {}
        self.seq = 0
        self.record_exchanges = False

    def add(
        self,
        method: str,
        path: str,
        template: str,
        query: str,
        status: int,
        auth: str,
        exchange: Exchange | None = None,
        received: datetime | None = None,
    ) -> None:
        """``time`` is when the answer left, ``received`` when the request arrived (before latency and work)."""
        self.seq += 1
        now = self.now()
        entry: dict[str, Any] = {
            "seq": self.seq,
            "time": now.isoformat(timespec="milliseconds"),
            "received": (received or now).isoformat(timespec="microseconds"),
            "method": method,
            "path": path,
            "endpoint": template,
            "query": query,
            "status": status,
            "auth": auth,
        }
        if exchange is not None and self.record_exchanges:
            entry.update(exchange.as_json())
        self.requests.append(entry)
        name = f"{method} {template}"
        self.counts[name] = self.counts.get(name, 0) + 1

    def snapshot(self) -> dict[str, Any]:
        return {
            "requests": list(self.requests),
            "counts": dict(self.counts),
            "record_exchanges": self.record_exchanges,
        }

    def clear(self) -> None:
        self.requests.clear()
        self.counts.clear()
