"""CSV for spreadsheets: one header row, RFC 4180 quoting, and no cell a spreadsheet would run as a formula.

Shared by every CSV export (``records --format csv``, the dashboard's ``/records.csv``);
it depends on nothing else in the package.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence

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


def csv_text(columns: Sequence[str], rows: Iterable[Mapping[str, object]]) -> str:
    """The header row, then one line per row (the values of ``columns``, in that order)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([safe_cell(row.get(column)) for column in columns])
    return out.getvalue()
