"""The "did you mean" helper: the closest name, case ignored, and nothing when nothing is close."""

from __future__ import annotations

from ml_connector.diagnostics.suggest import closest, did_you_mean, with_suggestion

FIELDS = ["Cost Center", "Cost Center", "GL Account", "Supplier", "IFS Reference", "Summary"]


def test_misspelt_names_find_the_field() -> None:
    assert did_you_mean("Cost Centre", FIELDS) == "did you mean 'Cost Center'?"
    assert did_you_mean("gl acount", FIELDS) == "did you mean 'GL Account'?"
    assert closest("SUPPLIER", FIELDS) == "Supplier"  # case alone: still the Jira spelling


def test_nothing_close_and_exact_names_suggest_nothing() -> None:
    assert did_you_mean("Warehouse", FIELDS) == ""
    assert did_you_mean("Supplier", FIELDS) == ""  # the name exists: no suggestion to make
    assert did_you_mean("anything", []) == ""


def test_with_suggestion_appends_only_a_real_suggestion() -> None:
    assert with_suggestion("Jira priority 'Hihg' does not exist", "Hihg", ["High", "Low"]) == (
        "Jira priority 'Hihg' does not exist; did you mean 'High'?"
    )
    assert with_suggestion("no such project", "ZZZ", ["CAPEX", "PROC"]) == "no such project"
