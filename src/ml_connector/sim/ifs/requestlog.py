"""The request log the control API shows: one entry per gated request (status filled in when the answer starts),
and a count per endpoint name."""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable
from typing import Any


class RequestLog:
    """Keeps the last ``limit`` entries (0: all); counts stay exact. Not locked itself: the simulator holds its lock."""

    def __init__(self, limit: int, now: Callable[[], str]) -> None:
        self.now = now
        self.entries: deque[dict[str, Any]] = deque(maxlen=limit or None)
        self.counts: Counter[str] = Counter()
        self.seq = 0

    def add(
        self, *, method: str, path: str, query: str, endpoint: str, if_match: str | None, client_id: str | None
    ) -> dict[str, Any]:
        self.seq += 1
        entry: dict[str, Any] = {
            "seq": self.seq,
            "time": self.now(),
            "method": method,
            "path": path,
            "query": query,
            "status": None,
            "if_match": if_match,
            "client_id": client_id,
            "endpoint": endpoint,
        }
        self.entries.append(entry)
        self.counts[endpoint] += 1
        return entry

    def clear(self) -> None:
        self.entries.clear()
        self.counts.clear()
