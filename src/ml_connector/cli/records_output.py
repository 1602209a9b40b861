"""What ``records`` prints besides its table: one JSON object per line, or CSV for a spreadsheet."""

from __future__ import annotations

import json
from collections.abc import Sequence
from enum import StrEnum
from typing import Any

from ml_connector.errors import ConfigError
from ml_connector.jira.links import browse_url
from ml_connector.records_csv import csv_lines, record_cells
from ml_connector.store import RecordRow


class RecordsFormat(StrEnum):
    TABLE = "table"
    JSON = "json"
    CSV = "csv"


def record_json(r: RecordRow, jira_url: str | None = None) -> dict[str, Any]:
    """One line of ``records --format json``: a stable shape scripts can rely on."""
    return {
        "flow": r.flow,
        "key": r.ifs_key,
        "state": r.state,
        "jira_key": r.jira_key,
        "jira_url": browse_url(jira_url, r.jira_key) if jira_url else None,
        "jira_id": r.jira_id,
        "attempts": r.attempts,
        "error": r.last_error,
    }


def records_format(output: RecordsFormat | None, *, as_json: bool) -> RecordsFormat:
    """``--json`` is the old spelling of ``--format json``; both at once must agree."""
    if as_json and output not in (None, RecordsFormat.JSON):
        raise ConfigError(f"--json and --format {output} disagree; give one of them")
    return RecordsFormat.JSON if as_json else (output or RecordsFormat.TABLE)


def render_records(rows: Sequence[RecordRow], fmt: RecordsFormat, jira_url: str) -> str:
    """The rows as JSON lines or as CSV with a header row (also when there are no rows)."""
    if fmt == RecordsFormat.CSV:  # the dashboard's export, column for column
        return "".join(csv_lines(record_cells(r, jira_url) for r in rows))
    return "".join(json.dumps(record_json(r, jira_url)) + "\n" for r in rows)
