"""CSV cells a spreadsheet would run as formulas are exported as text."""

from __future__ import annotations

import csv
import io

import pytest

from ml_connector.export import csv_text, safe_cell


@pytest.mark.parametrize("text", ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx", "=cmd|' /C calc'!A0"])
def test_formula_starts_get_an_apostrophe(text: str) -> None:
    assert safe_cell(text) == "'" + text


@pytest.mark.parametrize(
    ("value", "cell"),
    [(None, ""), (3, "3"), (-3, "-3"), (1.5, "1.5"), (True, "true"), ("PO-1", "PO-1"), ("a=b", "a=b"), ("", "")],
)
def test_other_values_are_kept(value: object, cell: str) -> None:
    assert safe_cell(value) == cell  # numbers stay numbers: only text can smuggle a formula


def test_csv_round_trips_quotes_commas_and_newlines() -> None:
    text = csv_text(["a", "b"], [{"a": 'say "hi", then\nleave', "b": None}, {"b": "=x"}])
    assert list(csv.reader(io.StringIO(text, newline=""))) == [
        ["a", "b"],
        ['say "hi", then\nleave', ""],
        ["", "'=x"],
    ]
