"""Simulators in their own processes (``ml-connector sim ifs|jira`` on free loopback ports) and the connector CLI
run as a subprocess, the way an operator meets them. State is reset between scenarios through the control APIs."""

from __future__ import annotations

import ctypes
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from conftest import wait_until

from e2e.harness import SimControl, example_config
from ml_connector.cli.records_output import record_json
from ml_connector.store import Store

CLI = [sys.executable, "-m", "ml_connector.cli"]
_PR_SET_PDEATHSIG = 1
try:
    _LIBC: ctypes.CDLL | None = ctypes.CDLL(None, use_errno=True)  # loaded here: the child only calls into it
except OSError:
    _LIBC = None


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM it when the thread that started it ends, so a crashed test run (a segfault,
    a SIGKILL) leaves no simulator behind (Linux prctl; elsewhere stop() is all there is)."""
    prctl = getattr(_LIBC, "prctl", None)
    if prctl is not None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


_LISTENING = re.compile(r"Uvicorn running on (http://127\.0\.0\.1:\d+)")


@dataclass
class SimProcess:
    """One simulator process; ``control`` speaks its ``/_sim/`` API."""

    kind: str
    proc: subprocess.Popen[bytes]
    url: str
    control: SimControl
    log: Path

    @classmethod
    def start(cls, kind: str, log: Path, *args: str, timeout: float = 60) -> SimProcess:
        """Start ``ml-connector sim KIND --port 0`` and wait until uvicorn reports the port it bound."""
        return start_all([(kind, log, args)], timeout=timeout)[0]

    def stop(self) -> None:
        self.control.close()
        _stop(self.proc)


def start_all(specs: list[tuple[str, Path, tuple[str, ...]]], *, timeout: float = 60) -> list[SimProcess]:
    """Start several simulators at once (kind, log file, extra options each), then wait for all of them. Start them
    from a thread that outlives them (the main one): each is tied to the life of the thread that started it."""
    started: list[tuple[str, Path, subprocess.Popen[bytes]]] = []
    try:
        for kind, log, args in specs:
            with log.open("wb") as out:
                proc = subprocess.Popen(
                    [*CLI, "sim", kind, "--port", "0", *args],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    preexec_fn=_die_with_parent,
                )
            started.append((kind, log, proc))
        return [_listening(kind, log, proc, timeout) for kind, log, proc in started]
    except BaseException:
        for _, _, proc in started:
            _stop(proc)
        raise


@contextmanager
def sim_pair(
    tmp_path: Path, ifs_args: tuple[str, ...], jira_args: tuple[str, ...] = ()
) -> Iterator[tuple[SimProcess, SimProcess]]:
    """An IFS and a Jira simulator in their own processes (logs in ``tmp_path``), stopped when the block ends."""
    ifs, jira = start_all([("ifs", tmp_path / "ifs.log", ifs_args), ("jira", tmp_path / "jira.log", jira_args)])
    try:
        yield ifs, jira
    finally:
        ifs.stop()
        jira.stop()


def _listening(kind: str, log: Path, proc: subprocess.Popen[bytes], timeout: float) -> SimProcess:
    found: list[str] = []

    def bound() -> bool:
        match = _LISTENING.search(log.read_text(errors="replace"))
        if match:
            found.append(match.group(1))
        elif proc.poll() is not None:
            raise RuntimeError(f"sim {kind} exited {proc.returncode}: {log.read_text(errors='replace')[-2000:]}")
        return bool(match)

    wait_until(bound, timeout=timeout, what=f"sim {kind} to listen")
    return SimProcess(kind, proc, found[0], SimControl(found[0]), log)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@dataclass
class CliResult:
    args: list[str]
    code: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def brief(self, limit: int = 1500) -> str:
        command = " ".join(a for a in self.args if not a.endswith(".yaml") and a != "-c")
        return f"`{command}` exited {self.code} in {self.seconds:.1f} s:\n{self.output[-limit:]}"


def _killed(timeout: float) -> str:
    return f"\n[killed: still running after {timeout:.0f} s]"


def _cli_env() -> dict[str, str]:
    return {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}


def run_cli(config: Path, *args: str, timeout: float = 120) -> CliResult:
    """Run ``ml-connector ARGS -c CONFIG`` to completion; a run that outlives ``timeout`` is killed and reported."""
    env = _cli_env()
    started = time.monotonic()
    argv = [*args, "-c", str(config)]
    try:
        done = subprocess.run([*CLI, *argv], capture_output=True, timeout=timeout, env=env, check=False)
    except subprocess.TimeoutExpired as exc:
        out = (exc.stdout or b"").decode(errors="replace") + (exc.stderr or b"").decode(errors="replace")
        return CliResult(argv, -9, out, _killed(timeout), time.monotonic() - started)
    return CliResult(
        argv,
        done.returncode,
        done.stdout.decode(errors="replace"),
        done.stderr.decode(errors="replace"),
        time.monotonic() - started,
    )


class CliZygote:
    """Runs ``ml-connector`` as a child forked from a process that imported it once (``e2e/cli_zygote.py``): its own
    process per run, as with ``run_cli``, without the ~0.8 CPU-s of imports per start. One run at a time."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.runs = 0
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("cli_zygote.py"))],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=_cli_env(),
            text=True,
            preexec_fn=_die_with_parent,
        )
        self.ready = False  # read at the first run, so that several zygotes warm up at once

    def _answer(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the CLI zygote exited {self.proc.wait()}")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def run(self, config: Path | None, *args: str, timeout: float = 120) -> CliResult:
        """As ``run_cli``: ``ml-connector ARGS -c CONFIG`` (no ``-c`` without a config) to completion, killed (-9)
        past ``timeout``."""
        assert self.proc.stdin is not None
        if not self.ready:
            assert "ready" in self._answer()
            self.ready = True
        self.runs += 1
        out, err = (self.workdir / f"run{self.runs}.{name}" for name in ("out", "err"))
        argv = [*args, "-c", str(config)] if config is not None else list(args)
        request = {"argv": argv, "env": _cli_env(), "stdout": str(out), "stderr": str(err), "timeout": timeout}
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        answer = self._answer()
        stderr = err.read_text(errors="replace")
        if answer["code"] == -9:
            stderr += _killed(timeout)
        return CliResult(argv, answer["code"], out.read_text(errors="replace"), stderr, answer["seconds"])

    def stop(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()  # the zygote ends at the end of its input; _stop makes sure it does
        _stop(self.proc)


# Alembic keeps its migration context in module globals: opening (migrating) stores from several threads at once
# crashes the interpreter, so lanes open them one at a time.
_OPENING = threading.Lock()


def open_store(store_url: str) -> Store:
    with _OPENING:
        return Store.open(store_url)


def stored_records(store_url: str) -> list[dict[str, Any]]:
    """The rows ``ml-connector records --json`` prints, read from the store in this process (saves a CLI start)."""
    store = open_store(store_url)
    try:
        rows = store.records.list(limit=100_000)
    finally:
        store.close()
    return [record_json(r) for r in rows]


def write_config(
    path: Path, *, ifs_url: str, jira_url: str, store_url: str, tweak: dict[str, Any] | None = None
) -> Path:
    """The example config pointed at the simulators, with short timeouts and retries so a fault costs seconds."""
    data = example_config()
    fast = {"read_timeout": 1, "backoff_initial": 0.05, "backoff_max": 0.2, "max_attempts": 3, "max_retry_seconds": 8}
    data["ifs"].update(url=ifs_url, http={**fast, "requests_per_minute": None})
    data["jira"].update(url=jira_url, http=fast)
    data["store"] = {"url": store_url}
    data["sync"] = {"reconcile_settle": 0.5, "retry_initial": 0, "retry_max": 0}
    data["log_level"] = "WARNING"
    for section, values in (tweak or {}).items():
        if isinstance(values, dict) and isinstance(data.get(section), dict):
            data[section].update(values)
        else:
            data[section] = values
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path
