"""Writing statuses into IFS: ETags for a batch in a few filtered reads, PATCH with ``If-Match`` (never ``*``), a
bound action where the mapping names one, and on 412 a fresh read and a re-apply, a bounded number of times."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import structlog

from ml_connector.config.models import FlowConfig
from ml_connector.engine.failures import is_systemic
from ml_connector.engine.report import RunReport
from ml_connector.engine.writeback.changes import StatusChange
from ml_connector.engine.writeback.plan import PlannedWrite, ifs_key, still_needed
from ml_connector.errors import ConcurrencyConflict, TransientError, Unavailable
from ml_connector.http.session import may_have_acted
from ml_connector.ifs.odata import Key, KeyValue
from ml_connector.mapping import IfsUpdate
from ml_connector.store import RecordRow

log = structlog.get_logger("ml_connector.engine")

Found = tuple[dict[str, Any], str]  # an IFS row and its ETag
Select = Sequence[str] | str | None


class IfsEntities(Protocol):
    """The IFS calls a write-back makes (``IfsClient`` is one); a test passes a fake."""

    def get(self, entity_set: str, key: Key, *, select: Select = None) -> Found: ...

    def get_many_by_keys(
        self, entity_set: str, keys: Sequence[Key], *, select: Select = None
    ) -> dict[tuple[KeyValue, ...], Found]: ...

    def patch(self, entity_set: str, key: Key, changes: Mapping[str, Any], etag: str) -> Found: ...

    def call_action(
        self, entity_set: str, key: Key, action: str, etag: str, params: Mapping[str, Any] | None = None
    ) -> Any: ...


class WriteOutcomes(Protocol):
    """Where the writer reports each record's outcome (``Outcomes`` stores them)."""

    def conflict(self, record: RecordRow, exc: ConcurrencyConflict, conflicts: int, report: RunReport) -> None: ...

    def action_taken(self, record: RecordRow, action: str, lost: BaseException, report: RunReport) -> None: ...

    def written(
        self, record: RecordRow, change: StatusChange, update: IfsUpdate, conflicts: int, report: RunReport
    ) -> None: ...

    def failed(self, record: RecordRow, error: BaseException, report: RunReport) -> None: ...


CONFLICT_RETRIES = 3  # re-reads of the IFS row after a 412 before the write-back counts as failed


@dataclass
class IfsStatusWriter:
    client: Callable[[], IfsEntities]  # built on first use: a run with nothing to write opens no IFS session
    flow: FlowConfig
    entity_set: str
    outcomes: WriteOutcomes
    conflict_retries: int
    stop: threading.Event

    @property
    def ifs(self) -> IfsEntities:
        return self.client()

    def write_batch(self, batch: Sequence[PlannedWrite], report: RunReport) -> None:
        """Write each planned update; a record's failure is stored for it and the batch goes on."""
        keys = [ifs_key(self.flow, planned.record) for planned in batch]
        current = self._read_batch(batch, keys, report)
        if current is None:
            return
        for planned, key in zip(batch, keys, strict=True):
            if self.stop.is_set():
                report.interrupted = True
                return
            self._write_one(planned, key, current.get(tuple(key.values())), report)

    def _read_batch(
        self, batch: Sequence[PlannedWrite], keys: list[Key], report: RunReport
    ) -> dict[tuple[KeyValue, ...], Found] | None:
        """ETags for the whole batch in a few filtered reads instead of one GET per record; None when IFS is down
        (every record's failure is then stored: each waits its backoff, one in-call budget spent)."""
        written = sorted({name for planned in batch for name in planned.update.changes})
        try:
            return self.ifs.get_many_by_keys(self.entity_set, keys, select=[self.flow.key, *written])
        except Exception as exc:
            if is_systemic(exc):
                raise
            if isinstance(exc, TransientError) or len(batch) == 1:
                for planned in batch:
                    self.outcomes.failed(planned.record, exc, report)
                return None
            log.warning("writeback.batch_read_refused", flow=self.flow.name, error_class=type(exc).__name__)
            return {}  # one record may spoil a batch read: each reads its own

    def _write_one(self, planned: PlannedWrite, key: Key, found: Found | None, report: RunReport) -> None:
        record = planned.record
        conflicts = 0
        while True:
            try:
                self._apply(record, planned.update, key, found, report)
                break
            except ConcurrencyConflict as exc:
                conflicts += 1
                self.outcomes.conflict(record, exc, conflicts, report)
                if conflicts > self.conflict_retries:
                    self.outcomes.failed(record, _kept_changing(conflicts), report)
                    return
                found = None  # read again and re-apply
            except Exception as exc:  # record isolation: anything but a systemic error is this record's failure
                if is_systemic(exc):
                    raise
                self.outcomes.failed(record, exc, report)
                return
        self.outcomes.written(record, planned.change, planned.update, conflicts, report)

    def _apply(self, record: RecordRow, update: IfsUpdate, key: Key, found: Found | None, report: RunReport) -> None:
        """PATCH what the row lacks with its ETag, then call the action; ``ConcurrencyConflict`` on a 412."""
        row, etag = found if found is not None else self.ifs.get(self.entity_set, key)
        needed = still_needed(row, update.changes)
        if needed:
            row, etag = self.ifs.patch(self.entity_set, key, needed, etag)
        if update.action:
            self._act(record, key, update.action, etag, report)

    def _act(self, record: RecordRow, key: Key, action: str, etag: str, report: RunReport) -> None:
        """Call a bound action. When its answer is lost (the call may have acted: a reset after sending, a cut or
        malformed body, a timeout), read the entity again: a new ETag means IFS changed it, so the action is taken as
        applied rather than called again (a second call would be refused for the state it is now in)."""
        try:
            self.ifs.call_action(self.entity_set, key, action, etag)
        except TransientError as exc:
            if not may_have_acted(exc):
                raise
            try:
                _row, now_etag = self.ifs.get(self.entity_set, key)
            except TransientError:
                raise exc from None
            if now_etag == etag:
                raise  # unchanged: it did not act; the retry calls it again
            self.outcomes.action_taken(record, action, exc, report)


def _kept_changing(conflicts: int) -> Unavailable:
    return Unavailable(
        f"IFS record kept changing between read and write ({conflicts} times 412)", system="ifs", status=412
    )
