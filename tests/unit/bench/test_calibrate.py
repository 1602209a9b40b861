"""The host-speed unit of scenario 6: the fastest of a few measures of a fixed piece of work, per round."""

from __future__ import annotations

import pytest

from bench import calibrate


def test_the_unit_is_the_fastest_measure_per_round(monkeypatch: pytest.MonkeyPatch) -> None:
    measures = iter([30.0, 20.0, 25.0])
    monkeypatch.setattr(calibrate, "_measure", lambda: next(measures))
    assert calibrate.unit_ms(3) == 20.0 / calibrate.ROUNDS


def test_the_work_is_the_same_every_time_and_takes_time() -> None:
    assert [calibrate._round(n) for n in range(50)] == [calibrate._round(n) for n in range(50)]
    assert calibrate.unit_ms(1) > 0
