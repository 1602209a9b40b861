"""The write-back run: find the changes, sort them by the order rule, plan, store what is accepted, write IFS."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from datetime import datetime

from ml_connector.config.models import FlowConfig
from ml_connector.engine.failures import is_systemic
from ml_connector.engine.progress import Phase, PhaseCounter, Progress
from ml_connector.engine.report import RunReport
from ml_connector.engine.runtime import Connector
from ml_connector.engine.timestamps import format_ts
from ml_connector.engine.writeback.changes import StatusChange
from ml_connector.engine.writeback.detect import ChangeDetector
from ml_connector.engine.writeback.ifs_write import CONFLICT_RETRIES, IfsStatusWriter
from ml_connector.engine.writeback.lease import one_applier
from ml_connector.engine.writeback.order import Live, sort_changes
from ml_connector.engine.writeback.outcomes import Outcomes
from ml_connector.engine.writeback.plan import REPORTED_SKIPS, PlannedWrite, Write, plan_write
from ml_connector.store import RecordRow, utcnow

WRITE_BATCH_SIZE = 200  # records whose ETags one batch reads together


class WritebackSync:
    def __init__(
        self,
        connector: Connector,
        flow: FlowConfig,
        *,
        stop: threading.Event | None = None,
        clock: Callable[[], datetime] = utcnow,
        progress: Progress | None = None,
    ) -> None:
        self.connector = connector
        self.counter = PhaseCounter(progress)
        self.flow = flow
        self.stop = stop or threading.Event()
        self.clock = clock  # decides when a backed-off write-back is due (tests move it instead of waiting)
        self.detector = ChangeDetector(connector, flow, self.stop)
        self.outcomes = Outcomes(connector.store, connector.config.sync, clock)
        self.writer = IfsStatusWriter(
            lambda: connector.ifs,
            flow,
            flow.writeback.entity_set or flow.entity_set,
            self.outcomes,
            CONFLICT_RETRIES,
            self.stop,
        )

    def run(self, *, dry_run: bool = False) -> RunReport:
        report = RunReport(self.flow.name, "writeback", dry_run=dry_run)
        if not self.flow.writeback.enabled:
            return report
        with self.connector.run_row(report, default_system="jira", stop=self.stop):
            changes, newest = self._detect(report)
            self.connector.note_contact("jira")
            self.apply(changes, report, dry_run=dry_run)
            if changes:
                self.connector.note_contact("ifs")
            if newest is not None and not dry_run and not report.interrupted:
                self.connector.store.cursors.set(self.detector.cursor_name, format_ts(newest))
        return report

    def _detect(self, report: RunReport) -> tuple[list[StatusChange], datetime | None]:
        """The polled changes, fresh reads of legacy records, then the pending write-backs the poll did not cover;
        and where the poll cursor may move to."""
        changes, newest = self.detector.poll(report)
        changes += self.detector.legacy(changes, report)
        changes += self.detector.pending(changes, self.clock())
        return changes, newest

    def apply(self, changes: Sequence[StatusChange], report: RunReport, *, dry_run: bool = False) -> list[StatusChange]:
        """Accept the changes newer than what the store holds, write the statuses IFS does not have yet; returns the
        stale changes (audited and dropped). Records not linked to this flow are ignored."""
        if not changes:
            return []
        if dry_run:
            return self._apply(changes, report, dry_run=True)
        with one_applier(self.connector.store, self.stop):
            return self._apply(changes, report, dry_run=False)

    def _apply(self, changes: Sequence[StatusChange], report: RunReport, *, dry_run: bool) -> list[StatusChange]:
        batch = sort_changes(changes, self._linked(changes))
        todo, broken = self._plan(batch.live, report, dry_run=dry_run)
        if batch.stale:
            report.add("stale", len(batch.stale))
        if dry_run:
            report.add("would_write_back", len(todo))
        else:
            accepted = [(live.record, live.change) for live in batch.live if live.accept]
            self.outcomes.accept(accepted, batch.stale, report)
            for record, error in broken:
                self.outcomes.failed(record, error, report)
            self._write(todo, report)
        return [change for _, change in batch.stale]

    def _linked(self, changes: Sequence[StatusChange]) -> dict[str, RecordRow]:
        """The records of this flow linked to the changed issues, by Jira issue id."""
        found = self.connector.store.records.by_jira_ids(c.jira_id for c in changes)
        return {jira_id: r for jira_id, r in found.items() if r.flow == self.flow.name}

    def _plan(
        self, live: Sequence[Live], report: RunReport, *, dry_run: bool
    ) -> tuple[list[PlannedWrite], list[tuple[RecordRow, Exception]]]:
        """The IFS writes the live changes need now, and the records whose mapping failed."""
        now = self.clock()
        todo: list[PlannedWrite] = []
        broken: list[tuple[RecordRow, Exception]] = []
        for record, change in ((item.record, item.change) for item in live):
            # The key only from a live change: a stale one may predate a move.
            if change.jira_key and change.jira_key != record.jira_key and not dry_run:
                self.outcomes.key_moved(record, change.jira_key, report)
            try:
                planned = plan_write(record, change, now, self.flow.writeback)
            except Exception as exc:  # a mapping error (or a bug) is this record's failure, not the run's
                if is_systemic(exc):
                    raise
                broken.append((record, exc))
                continue
            if isinstance(planned, Write):
                todo.append(PlannedWrite(record, change, planned.update))
            elif planned.reason in REPORTED_SKIPS:
                report.add(planned.reason)
        return todo, broken

    def _write(self, todo: Sequence[PlannedWrite], report: RunReport) -> None:
        self.counter.expect(Phase.WRITE_BACK, len(todo))
        for start in range(0, len(todo), WRITE_BATCH_SIZE):
            if self.stop.is_set():
                report.interrupted = True
                break
            batch = todo[start : start + WRITE_BATCH_SIZE]
            self.writer.write_batch(batch, report)
            self.counter.done(Phase.WRITE_BACK, len(batch))
