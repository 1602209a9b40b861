"""One load process of the shared-budget e2e (test_shared_rate_budget.py): its own Store and Connector, THREADS
threads asking IFS for a count as fast as the connector's pacing lets them, until SECONDS have passed.

Run as ``python budget_load.py CONFIG SECONDS THREADS``; prints one JSON line: calls answered and calls failed."""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path

from ml_connector.config.models import load_config
from ml_connector.engine import Connector
from ml_connector.errors import ConnectorError
from ml_connector.store import Store

ENTITY_SET = "PurchaseOrderHandling.svc/PurchaseOrderSet"


def main(config_path: str, seconds: float, threads: int) -> None:
    config = load_config(Path(config_path))
    assert config.store.url is not None
    connector = Connector(config=config, store=Store.open(config.store.url))
    tally = {"answered": 0, "failed": 0}
    lock = threading.Lock()

    def ask() -> None:
        while not connector.stopping.is_set():
            try:
                connector.ifs.count(ENTITY_SET)
                outcome = "answered"
            except ConnectorError:
                outcome = "failed"  # a 429 whose wait the stop cut short, or a stop during pacing
            with lock:
                tally[outcome] += 1

    timer = threading.Timer(seconds, connector.stopping.set)
    timer.start()
    workers = [threading.Thread(target=ask) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    connector.close()
    connector.store.close()
    print(json.dumps(tally), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]), int(sys.argv[3]))
