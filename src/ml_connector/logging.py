"""Logging configuration: every event, ours (structlog) and the libraries' (stdlib records rendered by structlog's
``ProcessorFormatter``), passes through secret redaction and is rendered in one format, console or JSON lines.

Exceptions are logged as their type, message and a short stack ("file:line in function"), never with local
variables: a locals dump is one redaction miss away from a leaked secret and buries the one line that matters. The
full traceback (still without locals, still redacted) is logged only with the debug flag (``--debug`` or
``ML_CONNECTOR_DEBUG=1``).
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
from collections.abc import MutableMapping
from types import TracebackType
from typing import Any, TextIO

import structlog

from ml_connector.http.redact import redact

DEBUG_ENV = "ML_CONNECTOR_DEBUG"
SHORT_STACK_FRAMES = 6

_known_secrets: set[str] = set()
_state = {"debug": False}


def register_secret(value: str | None) -> None:
    """Remember a secret so it is removed verbatim from any log line, whatever key carries it."""
    if value and len(value) >= 4:
        _known_secrets.add(value)


def debug_enabled() -> bool:
    """The explicit debug flag: ``--debug`` or ``ML_CONNECTOR_DEBUG=1``."""
    return _state["debug"] or os.environ.get(DEBUG_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def _clean(text: str) -> str:
    return str(redact(text, secrets=tuple(_known_secrets)))


def short_stack(tb: TracebackType | None, *, frames: int = SHORT_STACK_FRAMES) -> list[str]:
    """The innermost ``frames`` frames as ``dir/file.py:line in function`` (no source, no locals)."""
    summary = traceback.extract_tb(tb)[-frames:]
    return [f"{'/'.join(f.filename.split(os.sep)[-2:])}:{f.lineno} in {f.name}" for f in summary]


def describe_exception(exc: BaseException, *, debug: bool | None = None) -> str:
    """One redacted text for an exception: type, message and a short stack; the whole traceback with ``debug``."""
    if debug if debug is not None else debug_enabled():
        return _clean("".join(traceback.format_exception(exc)).rstrip())
    lines = [f"{type(exc).__name__}: {exc}"]
    lines += [f"  at {frame}" for frame in short_stack(exc.__traceback__)]
    cause = exc.__cause__ or exc.__context__
    if cause is not None and not exc.__suppress_context__:
        lines.append(f"  caused by {type(cause).__name__}: {cause}")
    return _clean("\n".join(lines))


def _exception(exc_info: Any) -> BaseException | None:
    if isinstance(exc_info, BaseException):
        return exc_info
    if isinstance(exc_info, tuple) and len(exc_info) == 3 and isinstance(exc_info[1], BaseException):
        return exc_info[1]
    if exc_info is True:
        return sys.exc_info()[1]
    return None


def _exception_processor(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Replace ``exc_info`` with a text of type, message and short stack, so no renderer can dump locals."""
    exc_info = event.pop("exc_info", None)
    exc = _exception(exc_info) if exc_info else None
    if exc is not None:
        event.setdefault("error_class", type(exc).__name__)
        event["exception"] = describe_exception(exc)  # ConsoleRenderer prints it on its own lines; JSON: a field
    return event


def known_secrets() -> tuple[str, ...]:
    """The registered secrets, for redacting text that is stored rather than logged (audit, last_error)."""
    return tuple(_known_secrets)


def _redact_processor(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    cleaned: MutableMapping[str, Any] = redact(dict(event), secrets=tuple(_known_secrets))
    return cleaned


LOG_FORMATS = ("console", "json")
# Chatty libraries: their INFO lines (every HTTP request, every scheduler tick) drown ours; WARNING and up still show.
THIRD_PARTY_LOGGERS = (
    "httpx",
    "httpx2",
    "httpcore",
    "apscheduler",
    "uvicorn",
    "uvicorn.access",
    "uvicorn.error",
    "sqlalchemy",
    "alembic",
    "asyncio",
    "urllib3",
)


def _stamp_processors() -> list[Any]:
    """Level and time for every event, ours and the stdlib's alike (exceptions and redaction come after)."""
    return [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


def _renderer(log_format: str) -> Any:
    if log_format == "json":
        return structlog.processors.JSONRenderer()
    return structlog.dev.ConsoleRenderer(colors=False, exception_formatter=structlog.dev.plain_traceback)


def default_log_format(stream: TextIO | None = None) -> str:
    """JSON lines for services (a non-terminal stderr), a readable console format on a terminal."""
    out = stream or sys.stderr
    return "console" if out.isatty() else "json"


def configure(
    *,
    level: str = "INFO",
    log_format: str = "console",
    stream: TextIO | None = None,
    debug: bool | None = None,
) -> None:
    """One format everywhere: structlog events and stdlib records (httpx2, uvicorn, APScheduler...) are rendered
    by the same structlog chain, so a third-party warning looks like ours and is redacted like ours."""
    if debug is not None:
        _state["debug"] = debug
    numeric = getattr(logging, level.upper(), logging.INFO)
    render = _renderer(log_format)
    structlog.configure(
        processors=[*_stamp_processors(), structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[_foreign_exc_info, *_stamp_processors()],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            _exception_processor,
            _redact_processor,
            render,
        ],
    )
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric)
    quiet_third_party(logging.DEBUG if numeric <= logging.DEBUG else logging.WARNING)


def quiet_third_party(level: int = logging.WARNING) -> None:
    """Third-party loggers at ``level`` (WARNING unless we log at DEBUG ourselves)."""
    for name in THIRD_PARTY_LOGGERS:
        logging.getLogger(name).setLevel(level)


def _foreign_exc_info(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """A stdlib record's exception goes through our exception processor (short stack, no locals)."""
    record = event.get("_record")
    if isinstance(record, logging.LogRecord) and record.exc_info and record.exc_info[1] is not None:
        event["exc_info"] = record.exc_info[1]
        record.exc_info = None
        record.exc_text = None
    event.setdefault("logger", getattr(record, "name", None))
    return event


def adopt_uvicorn_loggers() -> None:
    """uvicorn installs its own handlers (full tracebacks, no redaction); send its records through ours instead."""
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
        logger.disabled = False
