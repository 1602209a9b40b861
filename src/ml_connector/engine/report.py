"""What a run did, for the CLI summary, the runs table and metrics."""

from __future__ import annotations

import os
import re
import sys
import tempfile
import threading
import traceback
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ml_connector.http.redact import redact
from ml_connector.logging import known_secrets

if TYPE_CHECKING:
    from ml_connector.engine.failures import FailureDecision

# Counters that mean "not every record in scope is synced": the run is ``partial`` (exit code 1).
UNFINISHED = ("failed", "parked", "deferred", "would_fail", "waiting")
_ID_SEGMENT = re.compile(r"(?<=/)[^/\s)]*\d{2,}[^/\s)]*")


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
    reasons: Counter[tuple[str, str]] = field(default_factory=Counter)
    rate_limit_wait_s: float = 0.0  # seconds calls waited out 429s (summed over concurrent calls)
    quota_points: int = 0  # Jira points-quota points the run's calls used, as the quota headers told (OAuth only)
    # Pipelined pages and concurrent calls count from several threads.
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, what: str, n: int = 1) -> None:
        with self._lock:
            self.counts[what] += n

    def add_failure(self, decision: FailureDecision) -> None:
        """Count a record's failure (``failed``, ``deferred`` or ``parked``) and remember its reason."""
        self.add(decision.outcome)
        self.note_reason(decision.error_class, decision.message)

    def note_reason(self, error_class: str, message: str) -> None:
        # Grouped without ids (".../issue/10042" → ".../issue/…"), so one cause is one line however many records.
        with self._lock:
            self.reasons[(error_class, _ID_SEGMENT.sub("…", message))] += 1

    @property
    def failed(self) -> int:
        return self.counts["failed"] + self.counts["parked"] + self.counts["would_fail"]

    @property
    def status(self) -> str:
        if self.error:
            return "failed"
        if self.interrupted:
            return "interrupted"
        return "partial" if any(self.counts[k] for k in UNFINISHED) else "succeeded"

    def as_dict(self) -> dict[str, Any]:
        return {
            "flow": self.flow,
            "kind": self.kind,
            "dry_run": self.dry_run,
            "status": self.status,
            "counts": dict(self.counts),
            "error": self.error,
            "rate_limit_wait_s": round(self.rate_limit_wait_s, 3),
            "quota_points": self.quota_points,
        }


def crash_dir(store_url: str | None = None) -> Path:
    """Where crash reports go: beside a SQLite store, else ``<tmp>/ml-connector``."""
    if store_url and store_url.startswith("sqlite:///") and ":memory:" not in store_url:
        return Path(store_url.removeprefix("sqlite:///")).parent
    return Path(tempfile.gettempdir()) / "ml-connector"


def write_crash_report(error: BaseException, *, directory: Path | None = None, where: str = "") -> Path:
    """Write the full, redacted traceback of an unexpected error to a private file; return its path.

    Operators see one line naming this file; a traceback (which may quote data) never reaches their terminal."""
    from ml_connector import __version__

    folder = directory or crash_dir()
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC)
    path = folder / f"ml-connector-crash-{stamp:%Y%m%dT%H%M%S%fZ}-{os.getpid()}.txt"
    body = "\n".join(
        [
            f"ml-connector {__version__} crash report",
            f"time: {stamp.isoformat()}",
            f"command: {' '.join(sys.argv)}",
            f"where: {where or '-'}",
            "",
            "".join(traceback.format_exception(error)),
        ]
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(redact(body, secrets=known_secrets()))
    return path
