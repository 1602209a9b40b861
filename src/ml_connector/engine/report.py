"""What a run did, for the CLI summary, the runs table and metrics."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass
class PlannedAction:
    """One line of a dry-run plan."""

    key: str
    action: str  # create | update | skip | fail
    summary: str | None = None
    reason: str | None = None


@dataclass
class RunReport:
    flow: str
    kind: str
    dry_run: bool = False
    run_id: int | None = None
    counts: Counter[str] = field(default_factory=Counter)
    plan: list[PlannedAction] = field(default_factory=list)
    error: str | None = None
    interrupted: bool = False
    rate_limit_wait_s: float = 0.0  # seconds calls waited out 429s (summed over concurrent calls)

    def add(self, what: str, n: int = 1) -> None:
        self.counts[what] += n

    @property
    def failed(self) -> int:
        return self.counts["failed"] + self.counts["parked"] + self.counts["would_fail"]

    @property
    def status(self) -> str:
        if self.error:
            return "failed"
        if self.interrupted:
            return "interrupted"
        return "partial" if self.failed else "succeeded"

    def as_dict(self) -> dict[str, Any]:
        return {
            "flow": self.flow,
            "kind": self.kind,
            "dry_run": self.dry_run,
            "status": self.status,
            "counts": dict(self.counts),
            "error": self.error,
            "rate_limit_wait_s": round(self.rate_limit_wait_s, 3),
        }
