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


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The chaos matrix as a table (endpoint rows x fault columns, passed/total), whatever ``-s`` says."""
    from e2e.chaos import RESULTS, TIMING, failure_lines, table
    from e2e.harness import REPORT_LINES

    if REPORT_LINES:
        terminalreporter.write_sep("=", "e2e figures")
        for line in REPORT_LINES:
            terminalreporter.write_line(line)
    if not RESULTS:
        return
    terminalreporter.write_sep("=", "chaos matrix")
    for line in table(RESULTS):
        terminalreporter.write_line(line)
    terminalreporter.write_line(
        f"wall time {TIMING.get('wall_seconds', 0):.0f} s over {TIMING.get('lanes', 0):.0f} lanes; "
        f"slowest cell {max(r.seconds for r in RESULTS.values()):.1f} s"
    )
    failures = failure_lines(RESULTS)
    if failures:
        terminalreporter.write_sep("-", "failed cells: first problem of each")
        for line in failures:
            terminalreporter.write_line(line)
