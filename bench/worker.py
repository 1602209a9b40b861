"""The connector under test, one process per scenario: ``python -m bench.worker '<json spec>'``.

Runs the spec's phases in order. After each phase it prints one ``BENCH {json}`` line (wall time, run counts, the
process's own peak RSS, the calls its HTTP observer saw) and waits for a line on stdin before the next phase, so the
parent can read and clear the simulators' request logs, or change the world, between phases.
"""

from __future__ import annotations

import json
import resource
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench.memory import peak_rss_mb
from ml_connector.config.models import load_config
from ml_connector.engine import Connector, OutboundSync, WritebackSync
from ml_connector.engine.heap import settle_heap
from ml_connector.errors import ConnectorError, RateLimited
from ml_connector.logging import configure
from ml_connector.store import Store


class CountingObserver:
    """``CallObserver`` for the client's view: calls per system/endpoint/status and retries (429s included)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls: Counter[str] = Counter()
        self.retries: Counter[str] = Counter()

    def on_response(self, system: str, method: str, endpoint: str, status: int, seconds: float) -> None:
        with self.lock:
            self.calls[f"{system} {status}"] += 1

    def on_retry(self, system: str, error: ConnectorError, delay: float) -> None:
        with self.lock:
            self.retries[f"{system} {'429' if isinstance(error, RateLimited) else type(error).__name__}"] += 1

    def on_quota_points(self, system: str, points: int) -> None:
        return None  # the bench runs on Basic auth, which Jira's points quota does not charge

    def take(self) -> dict[str, Any]:
        with self.lock:
            out = {"calls": dict(self.calls), "retries": dict(self.retries)}
            self.calls.clear()
            self.retries.clear()
        return out


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def emit(result: dict[str, Any]) -> None:
    sys.stdout.write("BENCH " + json.dumps(result, default=str) + "\n")
    sys.stdout.flush()


def wait_parent() -> str:
    return sys.stdin.readline().strip()


def main(argv: list[str]) -> None:
    spec = json.loads(argv[0])
    configure(level="WARNING", stream=sys.stderr)
    config = load_config(Path(spec["config"]))
    assert config.store.url is not None
    observer = CountingObserver()
    connector = Connector(config=config, store=Store.open(config.store.url), observer=observer)
    settle_heap()  # as runner.daemon.build_connector does
    flow = config.flow("purchase_orders")
    try:
        for index, phase in enumerate(spec["phases"]):
            if index and wait_parent() == "stop":
                return
            kind = phase["kind"]
            started, cpu = time.perf_counter(), cpu_seconds()
            result: dict[str, Any] = {"phase": phase.get("name", kind), "kind": kind}
            if kind == "outbound":
                report = OutboundSync(connector, flow).run()
                result.update(counts=dict(report.counts), status=report.status)
            elif kind == "writeback":
                report = WritebackSync(connector, flow).run()
                result.update(counts=dict(report.counts), status=report.status)
            elif kind == "serve":
                result.update(serve(connector))
            else:
                raise SystemExit(f"unknown phase {kind}")
            result["seconds"] = time.perf_counter() - started
            result["cpu_s"] = cpu_seconds() - cpu  # the connector's own CPU (all threads) during the phase
            result["peak_rss_mb"] = peak_rss_mb()
            result["client"] = observer.take()
            emit(result)
    finally:
        connector.close()
        connector.store.close()


def serve(connector: Connector) -> dict[str, Any]:
    """The web app under uvicorn in this process; tells the parent its URL, then runs until told to stop."""
    from ml_connector.serve import serve_in_thread
    from ml_connector.web import create_app

    app = create_app(connector)
    handle = serve_in_thread(app)
    emit({"phase": "serving", "url": handle.url})
    wait_parent()  # the parent drives the transitions and waits for the IFS writes
    app.state.work.stop()
    handle.stop()
    return {"inbox_processed": connector.store.inbox.count("processed")}


if __name__ == "__main__":
    main(sys.argv[1:])
