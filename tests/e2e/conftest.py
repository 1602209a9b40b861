"""E2E fixtures: each test gets its own pair of simulators; the store runs on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import backends, require_pg, reset_postgres


@pytest.fixture(params=backends())
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'state.sqlite'}"
        return
    dsn = require_pg()
    reset_postgres(dsn)
    yield dsn


def summary_sections() -> list[tuple[str, list[str]]]:
    """The e2e figures and the chaos matrix as a table (endpoint rows x fault columns, passed/total)."""
    from e2e.chaos import RESULTS, TIMING, failure_lines, table
    from e2e.harness import REPORT_LINES

    sections: list[tuple[str, list[str]]] = []
    if REPORT_LINES:
        sections.append(("e2e figures", list(REPORT_LINES)))
    if not RESULTS:
        return sections
    lines = table(RESULTS)
    lines.append(
        f"wall time {TIMING.get('wall_seconds', 0):.0f} s over {TIMING.get('lanes', 0):.0f} lanes; "
        f"slowest cell {max(r.seconds for r in RESULTS.values()):.1f} s"
    )
    sections.append(("chaos matrix", lines))
    failures = failure_lines(RESULTS)
    if failures:
        sections.append(("failed cells: first problem of each", failures))
    return sections


def pytest_sessionfinish(session: pytest.Session) -> None:
    """In a pytest-xdist worker: hand the sections to the main process, which prints them (tests/conftest.py)."""
    output = getattr(session.config, "workeroutput", None)
    if output is not None:
        output["summary"] = summary_sections()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The sections, whatever ``-s`` says (a run without workers; a worker prints nothing)."""
    if hasattr(terminalreporter.config, "workeroutput"):
        return
    for title, lines in summary_sections():
        terminalreporter.write_sep("=", title)
        for line in lines:
            terminalreporter.write_line(line)
