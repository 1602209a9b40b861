"""What a run did, for the CLI summary, the runs table and metrics."""

from __future__ import annotations

import os
import re
import sys
import tempfile
import threading
import traceback
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ml_connector.http.redact import redact
from ml_connector.logging import known_secrets
from ml_connector.reasons import Reason

if TYPE_CHECKING:
    from ml_connector.engine.failures import FailureDecision

# Counters that mean "not every record in scope is synced": the run is ``partial`` (exit code 1).
UNFINISHED = ("failed", "parked", "deferred", "would_fail", "waiting")
_ID_SEGMENT = re.compile(r"(?<=/)[^/\s)]*\d{2,}[^/\s)]*")


@dataclass
class PlannedAction:
    """One record of a dry-run plan: what would be written to Jira, by field name."""

    key: str
    action: str  # create | update | skip | fail
    summary: str | None = None
    reason: str | None = None  # fail: why
    # create: every field the issue would get; update: {name: {"from": old, "to": new}} for the fields that change
    fields: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    error_class: str | None = None
    fix: str | None = None  # fail: the config key to change
    cause: Reason | None = None  # fail: the reason code (and value) the run's failures are grouped by

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "action": self.action,
            "summary": self.summary,
            "fields": self.fields,
            "warnings": self.warnings,
            "reason": self.reason,
            "reason_code": self.cause.code if self.cause else None,
            "error_class": self.error_class,
            "fix": self.fix,
        }


@dataclass
class RunReport:
    flow: str
    kind: str
    dry_run: bool = False
    run_id: int | None = None
    counts: Counter[str] = field(default_factory=Counter)
    plan: list[PlannedAction] = field(default_factory=list)
    plan_limit: int | None = None  # dry run: records kept in ``plan`` (None: all); counts always cover every record
    error: str | None = None
    interrupted: bool = False
    # This run's failures (a dry run's: the records that would fail) by reason, code and value.
    causes: Counter[Reason] = field(default_factory=Counter)
    notes: Counter[Reason] = field(default_factory=Counter)  # this run's warnings by reason
    examples: dict[str, str] = field(default_factory=dict)  # one message per failure reason code
    rate_limit_wait_s: float = 0.0  # seconds the run had calls waiting out 429s (concurrent waits count once)
    quota_points: int = 0  # Jira points-quota points the run's calls used, as the quota headers told (OAuth only)
    started: datetime = field(default_factory=lambda: datetime.now(UTC))  # metadata read before it may be stale
    # Pipelined pages and concurrent calls count from several threads.
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, what: str, n: int = 1) -> None:
        with self._lock:
            self.counts[what] += n

    def add_failure(self, decision: FailureDecision) -> None:
        """Count a record's failure (``failed``, ``deferred`` or ``parked``) and remember its reason."""
        self.add(decision.outcome)
        self.note_cause(decision.reason, decision.message)

    def note_cause(self, reason: Reason, message: str) -> None:
        """Count a failure by its reason; the first message per code is kept, without ids (".../issue/10042" →
        ".../issue/…"), as the example a value-less reason shows."""
        with self._lock:
            self.causes[reason] += 1
            self.examples.setdefault(reason.code, _ID_SEGMENT.sub("…", message))

    def merge(self, other: RunReport) -> None:
        """Add ``other``'s counts, reasons and waits (one batch of a run made of batches)."""
        with self._lock:
            self.counts.update(other.counts)
            self.causes.update(other.causes)
            self.notes.update(other.notes)
            for code, example in other.examples.items():
                self.examples.setdefault(code, example)
            self.interrupted = self.interrupted or other.interrupted
            self.rate_limit_wait_s += other.rate_limit_wait_s
            self.quota_points += other.quota_points

    def note_warnings(self, reasons: Iterable[Reason]) -> None:
        """Count warnings (the record synced, not quite as mapped) by reason."""
        with self._lock:
            self.notes.update(reasons)

    def keep_planned(self, action: PlannedAction) -> None:
        """Keep a dry run's record preview while under ``plan_limit``."""
        if self.plan_limit is None or len(self.plan) < self.plan_limit:
            self.plan.append(action)

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
