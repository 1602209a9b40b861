"""A process that has imported the connector CLI once and forks a child per ``ml-connector`` run (a "zygote").

Why: the chaos matrix starts the CLI about 630 times, and each start spent most of its CPU importing (about 0.8 CPU-s
of 1.2). Every run is still its own process with its own exit code, output and crash behaviour; only the imports are
shared, done once here before any thread, socket or store exists, so the fork copies nothing live.

Protocol (one request at a time, JSON lines): stdin ``{"argv", "env", "stdout", "stderr", "timeout"}``; stdout
``{"code", "seconds"}``, where a run still going after ``timeout`` is killed and reported as -9. Started by
``e2e.procs.CliZygote``; run as a script, so it imports nothing from the tests.
"""

from __future__ import annotations

import atexit
import ctypes
import importlib
import json
import os
import pkgutil
import signal
import sys
import time
import traceback
from typing import Any

# Servers (a sync never imports them), and the migrations, which Alembic loads itself when it runs them.
SKIP = ("ml_connector.sim", "ml_connector.web", "ml_connector.cli.sim", "ml_connector.store.migrations")
WARM = (
    "sqlalchemy.dialects.sqlite.pysqlite",
    "sqlalchemy.dialects.postgresql.psycopg",
    "alembic.runtime.migration",
    "alembic.script",
    "alembic.command",
)


def warm_up() -> None:
    """Import every connector module a CLI run can need, and the lazily loaded store drivers."""
    import ml_connector

    for info in pkgutil.walk_packages(ml_connector.__path__, "ml_connector."):
        if not info.name.startswith(SKIP) and not info.name.endswith(".__main__"):
            importlib.import_module(info.name)
    for name in WARM:
        importlib.import_module(name)


def run_child(request: dict[str, Any]) -> None:
    """In the forked child: become the CLI run the request describes, and never return."""
    code = 1
    try:
        libc = ctypes.CDLL(None)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: no run outlives its zygote
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        for fd, path in ((1, request["stdout"]), (2, request["stderr"])):
            out = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.dup2(out, fd)
            os.close(out)
        os.environ.clear()
        os.environ.update(request["env"])
        sys.argv = ["ml-connector", *request["argv"]]
        code = _main()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _main() -> int:
    from ml_connector.cli.app import main

    try:
        main()
        code: Any = 0
    except SystemExit as exc:
        code = exc.code
    except BaseException:
        traceback.print_exc()  # what the interpreter prints for an uncaught exception
        code = 1
    atexit._run_exitfuncs()  # what the interpreter runs at exit; os._exit below skips it
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def serve_one(request: dict[str, Any]) -> dict[str, Any]:
    started = time.monotonic()
    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:
        run_child(request)
    deadline = started + float(request["timeout"])
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return {"code": os.waitstatus_to_exitcode(status), "seconds": time.monotonic() - started}
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return {"code": -9, "seconds": time.monotonic() - started}
        time.sleep(0.01)


def main() -> None:
    warm_up()
    print(json.dumps({"ready": os.getpid()}), flush=True)
    for line in sys.stdin:
        print(json.dumps(serve_one(json.loads(line))), flush=True)


if __name__ == "__main__":
    main()
