"""Records as CSV: RFC 4180 quoting by the csv module, and no cell a spreadsheet would run as a formula."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest

from ml_connector.records_csv import COLUMNS, csv_lines, record_cells, safe_cell
from ml_connector.store import RecordRow


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+1+2", "'+1+2"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("PO-1", "PO-1"),
        ("a=b", "a=b"),
        (None, ""),
        (5, "5"),
        (-5, "-5"),  # a number is data, not a formula
        (1.5, "1.5"),
        (True, "true"),
        ("", ""),
    ],
)
def test_safe_cell(value: object, cell: str) -> None:
    assert safe_cell(value) == cell


def test_lines_round_trip_through_a_csv_reader() -> None:
    record = RecordRow(
        id=1,
        flow="purchase_orders",
        ifs_key='PO,"7"',
        state="parked",
        jira_key="PROC-7",
        attempts=5,
        last_error="line one\nline two, with comma",
        updated_at=datetime(2026, 12, 5, 4, 10, tzinfo=UTC),
    )
    text = "".join(csv_lines([record_cells(record, "https://acme.atlassian.net")]))
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == list(COLUMNS)
    got = dict(zip(COLUMNS, rows[1], strict=True))
    assert got["ifs_key"] == 'PO,"7"' and got["last_error"] == "line one\nline two, with comma"
    assert got["jira_url"] == "https://acme.atlassian.net/browse/PROC-7"
    assert got["updated_at"] == "2026-12-05T04:10:00+00:00" and got["attempts"] == "5"
    assert text.endswith("\r\n")


def test_only_a_header_when_there_are_no_records() -> None:
    assert "".join(csv_lines([])) == ",".join(COLUMNS) + "\r\n"
