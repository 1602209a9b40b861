"""Issue 9 "Done means": the chaos matrix. Every endpoint the connector calls x every fault kind, with the
simulators and the connector CLI in their own processes (see e2e/chaos.py for the cell and what it asserts).

All selected cells run once, in a few parallel lanes (``ML_CONNECTOR_CHAOS_LANES``, default 6), when the first cell
test asks for the results; each cell test then asserts its own result. The terminal summary prints the matrix.
"""

from __future__ import annotations

import os
import time

import pytest
from conftest import pg_dsn, require_pg, reset_postgres

from e2e.chaos import RESULTS, TIMING, Cell, CellResult, all_cells, run_matrix

CELLS = all_cells()
LANES = int(os.environ.get("ML_CONNECTOR_CHAOS_LANES", "6"))


def _selected(session: pytest.Session) -> list[Cell]:
    cells = []
    for item in session.items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and isinstance(callspec.params.get("cell"), Cell):
            cells.append(callspec.params["cell"])
    return cells


@pytest.fixture(scope="session")
def chaos(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, CellResult]:
    dsn = pg_dsn()
    cells = [c for c in _selected(request.session) if c.backend == "sqlite" or dsn is not None]

    def pg_store() -> str:
        assert dsn is not None
        reset_postgres(dsn)
        return dsn

    started = time.monotonic()
    results = run_matrix(cells, tmp_path_factory.mktemp("chaos"), lanes=LANES, pg_store=pg_store if dsn else None)
    TIMING["wall_seconds"] = time.monotonic() - started
    TIMING["lanes"] = LANES
    RESULTS.update(results)
    return results


def _param(cell: Cell) -> object:
    marks = [pytest.mark.postgres] if cell.backend == "postgresql" else []
    return pytest.param(cell, id=cell.id, marks=marks)


@pytest.mark.slow
@pytest.mark.timeout(1800)  # the first cell waits for the whole matrix
@pytest.mark.parametrize("cell", [_param(c) for c in CELLS])
def test_chaos_cell(cell: Cell, chaos: dict[str, CellResult]) -> None:
    if cell.backend == "postgresql":
        require_pg()
    result = chaos[cell.id]
    assert result.passed, f"{cell.id} (fault-run exit {result.fault_exit}):\n" + "\n".join(result.problems)
