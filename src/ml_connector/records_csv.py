"""Records as CSV for spreadsheets: one header, one line per record, cells that a spreadsheet cannot run.

A cell starting with ``=``, ``+``, ``-``, ``@`` (or a tab or carriage return) is a formula to Excel and LibreOffice;
such cells get a leading ``'`` so they open as text (CSV injection). One format for the dashboard's ``/records.csv``
and ``records --format csv``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator

from ml_connector.jira.links import browse_url
from ml_connector.store import RecordRow

COLUMNS = (
    "flow",
    "ifs_key",
    "state",
    "jira_key",
    "jira_url",
    "jira_status",
    "written_status",
    "attempts",
    "error_class",
    "last_error",
    "updated_at",
)

# A cell starting with one of these is a formula in Excel, LibreOffice and Google Sheets (tab and carriage return
# too, as OWASP's CSV-injection advice lists them): such text is exported with a leading apostrophe.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> str:
    """The cell's text; None is empty, numbers stay numbers, text that would be a formula is quoted with '."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def record_cells(r: RecordRow, jira_url: str, error: str | None = None) -> list[str]:
    """One record's cells in ``COLUMNS`` order; ``error`` replaces ``last_error`` (the caller's redacted text)."""
    values = (
        r.flow,
        r.ifs_key,
        r.state,
        r.jira_key,
        browse_url(jira_url, r.jira_key),
        r.jira_status,
        r.written_status,
        r.attempts,
        r.error_class,
        error if error is not None else r.last_error,
        r.updated_at.isoformat() if r.updated_at else None,
    )
    return [safe_cell(v) for v in values]


def csv_lines(rows: Iterable[list[str]], *, header: bool = True) -> Iterator[str]:
    """CSV text line by line (RFC 4180 quoting, CRLF), for streaming."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    if header:
        writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow(row)
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    if buffer.getvalue():
        yield buffer.getvalue()
