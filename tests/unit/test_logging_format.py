"""One log format everywhere: third-party INFO is quiet, their warnings render like ours, JSON lines parse and
carry no secret."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from ml_connector import logging as mlc_logging

SECRET = "s3cr3t-token-for-format-tests"


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    saved = structlog.get_config()
    mlc_logging.register_secret(SECRET)
    yield io.StringIO()
    structlog.configure(**saved)
    mlc_logging.quiet_third_party(logging.WARNING)


def _lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_third_party_info_is_suppressed_and_their_warning_shown(stream: io.StringIO) -> None:
    mlc_logging.configure(level="INFO", log_format="json", stream=stream)
    for name in ("httpx", "httpx2", "httpcore", "apscheduler.scheduler", "uvicorn.access", "sqlalchemy.engine"):
        logging.getLogger(name).info("HTTP Request: GET https://example.test/ 200")
    logging.getLogger("apscheduler.scheduler").warning("job missed by 2s")
    lines = _lines(stream)
    assert [line["event"] for line in lines] == ["job missed by 2s"]
    assert lines[0]["level"] == "warning"
    assert lines[0]["logger"] == "apscheduler.scheduler"
    assert "timestamp" in lines[0]


def test_third_party_warning_looks_like_ours_in_console(stream: io.StringIO) -> None:
    mlc_logging.configure(level="INFO", log_format="console", stream=stream)
    structlog.get_logger("ml_connector.test").warning("ours.warned", flow="po")
    logging.getLogger("httpx").warning("theirs warned")
    ours, theirs = stream.getvalue().splitlines()
    assert "[warning  ]" in ours and "ours.warned" in ours and "flow=po" in ours
    assert "[warning  ]" in theirs and "theirs warned" in theirs
    assert ours[:4] == theirs[:4]  # both start with the same ISO timestamp layout


def test_debug_lets_third_party_debug_through(stream: io.StringIO) -> None:
    mlc_logging.configure(level="DEBUG", log_format="json", stream=stream)
    logging.getLogger("httpx").info("HTTP Request: GET / 200")
    assert [line["event"] for line in _lines(stream)] == ["HTTP Request: GET / 200"]


def test_json_lines_parse_and_secrets_are_redacted(stream: io.StringIO) -> None:
    mlc_logging.configure(level="INFO", log_format="json", stream=stream)
    log = structlog.get_logger("ml_connector.test")
    log.info("token.used", detail=f"Bearer {SECRET}", password=SECRET)
    logging.getLogger("httpx").warning("retrying with %s", SECRET)
    try:
        raise RuntimeError(f"refused {SECRET}")
    except RuntimeError:
        log.exception("call.failed")
    text = stream.getvalue()
    assert SECRET not in text
    lines = _lines(stream)
    assert [line["event"] for line in lines][::2] == ["token.used", "call.failed"]
    assert str(lines[1]["event"]).startswith("retrying with ")
    assert lines[2]["error_class"] == "RuntimeError"


def test_default_format_is_json_off_a_terminal() -> None:
    assert mlc_logging.default_log_format(io.StringIO()) == "json"
