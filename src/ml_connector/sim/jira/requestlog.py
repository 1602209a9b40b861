"""The request log tests read: every request with its endpoint template, and a count per endpoint."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from datetime import datetime
from typing import Any


class RequestLog:
    """Not locked itself: the site calls it with its lock held."""

    def __init__(self, now: Callable[[], datetime]) -> None:
        self.now = now
        self.requests: deque[dict[str, Any]] = deque(maxlen=100_000)
        self.counts: dict[str, int] = {}
        self.seq = 0

    def add(self, method: str, path: str, template: str, query: str, status: int, auth: str) -> None:
        self.seq += 1
        self.requests.append(
            {
                "seq": self.seq,
                "time": self.now().isoformat(timespec="milliseconds"),
                "method": method,
                "path": path,
                "endpoint": template,
                "query": query,
                "status": status,
                "auth": auth,
            }
        )
        name = f"{method} {template}"
        self.counts[name] = self.counts.get(name, 0) + 1

    def snapshot(self) -> dict[str, Any]:
        return {"requests": list(self.requests), "counts": dict(self.counts)}

    def clear(self) -> None:
        self.requests.clear()
        self.counts.clear()
