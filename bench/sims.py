"""The two simulators as separate processes on loopback, and a client for their ``/_sim/`` control APIs."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx2
import psutil

JIRA_AUTH = ("connector@example.com", "sim-api-token")
WEBHOOK_SECRET = "sim-webhook-secret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class SimProcess:
    """One ``ml-connector sim <kind>`` process and its control API."""

    kind: str  # "ifs" | "jira"
    args: list[str] = field(default_factory=list)
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    http: httpx2.Client | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> SimProcess:
        return self.launch().ready()

    def launch(self) -> SimProcess:
        """Start the process without waiting for it (several simulators start side by side, then ``ready``)."""
        self.port = self.port or free_port()
        cmd = [sys.executable, "-m", "ml_connector.cli", "sim", self.kind, "--host", "127.0.0.1",
               "--port", str(self.port), "--log-level", "warning", *self.args]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.http = httpx2.Client(base_url=self.url, timeout=600)
        return self

    def ready(self) -> SimProcess:
        """Wait until the control API answers."""
        assert self.proc is not None and self.http is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                raise RuntimeError(f"sim {self.kind} exited: {err[-2000:]}")
            try:
                self.http.get("/_sim/faults").raise_for_status()
                return self
            except httpx2.TransportError:
                time.sleep(0.1)
        raise RuntimeError(f"sim {self.kind} did not start on port {self.port}")

    def stop(self) -> None:
        if self.http is not None:
            self.http.close()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def cpu_seconds(self) -> float:
        """CPU time the simulator process has used so far (its share of every wall time on a shared host)."""
        if self.proc is None:
            return 0.0
        times = psutil.Process(self.proc.pid).cpu_times()
        return float(times.user + times.system)

    # -- control API ---------------------------------------------------------------------------------------------

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        assert self.http is not None
        response = self.http.request(method, f"/_sim/{path.lstrip('/')}", **kwargs)
        response.raise_for_status()
        return response.json() if response.content else None

    def reset(self, **options: Any) -> None:
        self.call("POST", "reset", json=options)

    def faults(self, **values: Any) -> dict[str, Any]:
        result: dict[str, Any] = self.call("PUT", "faults", json=values)
        return result

    def clear_requests(self) -> None:
        self.call("DELETE", "requests")

    def traffic(self) -> Traffic:
        """Calls per endpoint and 429s since the last clear (the ``counts`` are exact even if the log is capped)."""
        data = self.call("GET", "requests")
        statuses: Counter[int] = Counter()
        for entry in data.get("requests") or []:
            if entry.get("status") is not None:
                statuses[int(entry["status"])] += 1
        counts = {k: int(v) for k, v in (data.get("counts") or {}).items()}
        # IAM token calls are API calls too (they count against the same budget on a real tenant).
        return Traffic(counts=counts, statuses=dict(statuses), log=data.get("requests") or [])


@dataclass
class Traffic:
    counts: dict[str, int]
    statuses: dict[int, int]
    log: list[dict[str, Any]]

    @property
    def calls(self) -> int:
        return sum(self.counts.values())

    @property
    def throttled(self) -> int:
        return self.statuses.get(429, 0)

    def summary(self) -> dict[str, Any]:
        return {"calls": self.calls, "by_endpoint": dict(sorted(self.counts.items())), "429": self.throttled,
                "status": {str(k): v for k, v in sorted(self.statuses.items())}}


def combined(parts: list[Traffic]) -> Traffic:
    """The traffic of several simulators of one kind (one per connection) as one."""
    counts: Counter[str] = Counter()
    statuses: Counter[int] = Counter()
    for part in parts:
        counts.update(part.counts)
        statuses.update(part.statuses)
    return Traffic(counts=dict(counts), statuses=dict(statuses), log=[e for part in parts for e in part.log])
