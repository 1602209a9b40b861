"""The progress display of ``sync``: one line per phase with counts that move, and log lines kept out of its way.

While the display shows, log records are printed through its console (above the bars) instead of being written to
stderr underneath them, so a warning never tears the display apart.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.progress import Progress as RichProgress
from rich.text import Text

from ml_connector.engine.progress import Phase, PhaseEvent, Progress


class _RateColumn(ProgressColumn):
    """Units per second of a phase ("120/s"), blank until something finished."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f}/s" if speed else "", style="progress.data.speed")


class _ConsoleStream:
    """A file-like target for a logging handler that prints through a Rich console (above a live display)."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def write(self, text: str) -> int:
        self.console.print(Text(text.rstrip("\n")), soft_wrap=True, highlight=False, markup=False)
        return len(text)

    def flush(self) -> None:
        """Nothing buffered here."""


@contextmanager
def logs_through(console: Console) -> Iterator[None]:
    """Route the root logger's stream handlers through ``console`` for the duration."""
    handlers = [h for h in logging.getLogger().handlers if isinstance(h, logging.StreamHandler)]
    saved = [h.stream for h in handlers]
    for handler in handlers:
        handler.setStream(_ConsoleStream(console))
    try:
        yield
    finally:
        for handler, stream in zip(handlers, saved, strict=True):
            handler.setStream(stream)


class PhaseDisplay:
    """One Rich task per phase, created when the phase first reports."""

    def __init__(self, bar: RichProgress, flow: str) -> None:
        self.bar = bar
        self.flow = flow
        self.tasks: dict[Phase, TaskID] = {}

    def __call__(self, event: PhaseEvent) -> None:
        task = self.tasks.get(event.phase)
        if task is None:
            task = self.bar.add_task(f"{self.flow}: {event.phase.value}", total=event.total)
            self.tasks[event.phase] = task
        self.bar.update(task, completed=event.done, total=event.total)
        self.bar.refresh()  # events come per page, chunk or edit: each one is worth showing, not only every 0.1 s


@contextmanager
def phase_progress(console: Console, flow: str) -> Iterator[Progress]:
    """A display of ``flow``'s phases on a terminal (nothing elsewhere); yields the engine's progress callback."""
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        _RateColumn(),
        TimeElapsedColumn(),
    )
    with RichProgress(*columns, console=console, transient=True, disable=not console.is_terminal) as bar:
        if not console.is_terminal:
            yield PhaseDisplay(bar, flow)
            return
        with logs_through(bar.console):
            yield PhaseDisplay(bar, flow)
