"""Progress of a run as phase events: what the engine is doing and how far it got, for a progress display.

The engine calls ``PhaseCounter.expect`` when it learns of more work in a phase (a page read, a chunk to create)
and ``done`` as that work finishes, so a display's counts move while Jira is written, not only per IFS page.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum


class Phase(StrEnum):
    READ = "reading IFS"
    MAP = "mapping"
    CREATE = "creating in Jira"
    EDIT = "editing in Jira"
    WRITE_BACK = "writing back"


@dataclass(frozen=True)
class PhaseEvent:
    """``done`` of ``total`` units of ``phase`` so far (``total`` None: not known, as for IFS rows read)."""

    phase: Phase
    done: int
    total: int | None


Progress = Callable[[PhaseEvent], None]


class PhaseCounter:
    """Running counts per phase for one run; each change is sent to ``progress`` (if any) as a ``PhaseEvent``."""

    def __init__(self, progress: Progress | None = None) -> None:
        self.progress = progress
        self._done: dict[Phase, int] = {}
        self._total: dict[Phase, int] = {}
        self._lock = threading.RLock()  # pipelined pages and concurrent calls count from several threads

    def expect(self, phase: Phase, count: int) -> None:
        """``count`` more units of ``phase`` are on their way."""
        if count and self.progress is not None:
            with self._lock:
                self._total[phase] = self._total.get(phase, 0) + count
                self._emit(phase)

    def done(self, phase: Phase, count: int = 1) -> None:
        """``count`` units of ``phase`` finished (whatever their outcome)."""
        if count and self.progress is not None:
            with self._lock:
                self._done[phase] = self._done.get(phase, 0) + count
                self._emit(phase)

    def settle(self, phase: Phase) -> None:
        """Every expected unit of ``phase`` is handled (some without their own ``done``, e.g. linked, not created)."""
        with self._lock:
            missing = self._total.get(phase, 0) - self._done.get(phase, 0)
            if missing > 0:
                self.done(phase, missing)

    def _emit(self, phase: Phase) -> None:
        assert self.progress is not None
        total = self._total.get(phase) if phase is not Phase.READ else None
        self.progress(PhaseEvent(phase, self._done.get(phase, 0), total))
