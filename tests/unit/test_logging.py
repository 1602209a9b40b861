"""Logged errors carry type, message and a short stack, never local variables; full detail only with the debug flag,
and redacted either way."""

from __future__ import annotations

import io
import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from ml_connector import logging as mlc_logging

SECRET = "hunter2-very-secret-value"


@pytest.fixture
def stream(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    monkeypatch.delenv(mlc_logging.DEBUG_ENV, raising=False)
    mlc_logging.register_secret(SECRET)
    out = io.StringIO()
    yield out
    mlc_logging.configure(debug=False)


def _fail(depth: int) -> None:
    password = SECRET  # a local that must never be printed
    if depth:
        _fail(depth - 1)
    raise RuntimeError(f"refused with {password}")


@pytest.mark.parametrize("json", [False, True])
def test_structlog_exceptions_have_a_short_stack_and_no_locals(stream: io.StringIO, json: bool) -> None:
    mlc_logging.configure(log_format="json" if json else "console", stream=stream)
    try:
        _fail(30)
    except RuntimeError:
        structlog.get_logger("t").exception("job.crashed", job="x")
    text = stream.getvalue()
    assert "job.crashed" in text and "RuntimeError" in text
    assert SECRET not in text
    assert "password" not in text  # neither the local's name ...
    assert "depth" not in text  # ... nor any other local
    assert "Traceback" not in text
    assert text.count("in _fail") <= mlc_logging.SHORT_STACK_FRAMES


def test_stdlib_exceptions_too(stream: io.StringIO) -> None:
    mlc_logging.configure(stream=stream)
    uvicorn_logger = logging.getLogger("uvicorn.error")
    uvicorn_logger.propagate = False  # as uvicorn's own logging config leaves it
    mlc_logging.adopt_uvicorn_loggers()  # what the daemon does once its server runs
    try:
        _fail(30)
    except RuntimeError:
        uvicorn_logger.exception("Exception in ASGI application")
    text = stream.getvalue()
    assert "RuntimeError" in text and SECRET not in text and "password" not in text
    assert text.count("in _fail") <= mlc_logging.SHORT_STACK_FRAMES


def test_debug_gives_the_whole_stack_still_redacted_and_without_locals(stream: io.StringIO) -> None:
    mlc_logging.configure(stream=stream, debug=True)
    try:
        _fail(30)
    except RuntimeError:
        structlog.get_logger("t").exception("job.crashed")
    text = stream.getvalue()
    assert "Traceback" in text and "Previous line repeated" in text  # the whole stack (Python folds recursion)
    assert SECRET not in text and "password = " not in text


def test_an_unexpected_cli_error_prints_no_locals(tmp_path: object) -> None:
    # A bug escaping a command (here: a crash while reading the config) is one short message, not a traceback dump.
    code = (
        "import sys; from ml_connector.cli import app as a; from ml_connector import logging as l;"
        "l.register_secret('hunter2-very-secret-value');"
        "a.app = lambda: (_ for _ in ()).throw(KeyError('hunter2-very-secret-value'));"
        "a.main()"
    )
    for debug in ("", "1"):
        env = {"ML_CONNECTOR_DEBUG": debug, "PATH": "/usr/bin:/bin"}
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
        assert done.returncode == 7, done.stderr  # ExitCode.INTERNAL: a bug
        assert "KeyError" in done.stderr and SECRET not in done.stderr
        assert ("Traceback" in done.stderr) == bool(debug)
        # One line names the private crash report; it holds the stack, redacted, and no local variables.
        report = Path(done.stderr.split("the full report is in ", 1)[1].split()[0])
        text = report.read_text()
        assert "KeyError" in text and SECRET not in text and "locals" not in text.lower()
        assert report.stat().st_mode & 0o777 == 0o600
