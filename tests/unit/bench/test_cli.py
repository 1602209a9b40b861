"""The bench's options: scenario 6's repeats."""

from __future__ import annotations

import pytest

from bench.cli import parse


def test_scenario_6_runs_three_pairs_unless_told_and_quick_runs_one() -> None:
    assert parse([])[0].memory_repeats == 3
    assert parse(["--quick"])[0].memory_repeats == 1
    assert parse(["--quick", "--memory-repeats", "5"])[0].memory_repeats == 5


def test_no_pair_of_runs_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        parse(["--memory-repeats", "0"])
    assert exited.value.code == 2
    assert "--memory-repeats must be 1 or more" in capsys.readouterr().err
