"""structlog configuration: every event passes through secret redaction before it is rendered."""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

from ml_connector.http.redact import redact

_known_secrets: set[str] = set()


def register_secret(value: str | None) -> None:
    """Remember a secret so it is removed verbatim from any log line, whatever key carries it."""
    if value and len(value) >= 4:
        _known_secrets.add(value)


def known_secrets() -> tuple[str, ...]:
    """The registered secrets, for redacting text that is stored rather than logged (audit, last_error)."""
    return tuple(_known_secrets)


def _redact_processor(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    cleaned: MutableMapping[str, Any] = redact(dict(event), secrets=tuple(_known_secrets))
    return cleaned


def configure(*, level: str = "INFO", json: bool = False, stream: TextIO | None = None) -> None:
    """Configure structlog and the stdlib root logger (httpx2 and uvicorn log through it)."""
    numeric = getattr(logging, level.upper(), logging.INFO)
    out = stream or sys.stderr
    renderer: Any = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _redact_processor,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(out)
    handler.addFilter(_StdlibRedactFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric)


class _StdlibRedactFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        record.msg = redact(message, secrets=tuple(_known_secrets))
        record.args = None
        return True
