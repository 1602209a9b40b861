"""The IFS client under concurrent use: the reads of one page's line ranges ask for ``$metadata`` at once."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx2
import pytest

from ml_connector.config.connections import HttpSettings
from ml_connector.errors import TransientError
from ml_connector.http import ApiSession, build_client
from ml_connector.ifs import IfsClient

from .test_metadata import CSDL

BASE = "http://ifs.test/main/ifsapplications/projection/v1/"
SETTINGS = HttpSettings(max_attempts=1)


def _client(fail_first: int = 0) -> tuple[IfsClient, list[str]]:
    sent: list[str] = []
    lock = threading.Lock()

    def handler(request: httpx2.Request) -> httpx2.Response:
        with lock:
            sent.append(request.url.path)
            failing = len(sent) <= fail_first
        time.sleep(0.1)  # long enough for every thread to ask before the first answer
        if failing:
            return httpx2.Response(503)
        return httpx2.Response(200, content=CSDL.encode(), headers={"Content-Type": "application/xml"})

    client = build_client(BASE, SETTINGS, transport=httpx2.MockTransport(handler))
    return IfsClient(ApiSession(client, system="ifs", settings=SETTINGS)), sent


def test_metadata_asked_for_by_many_threads_at_once_is_read_once() -> None:
    client, sent = _client()
    with ThreadPoolExecutor(max_workers=8) as pool:
        keys = list(pool.map(lambda _: client.key_fields("PurchaseOrderHandling.svc/PurchaseOrderSet"), range(8)))
    assert len(set(keys)) == 1 and keys[0]
    assert sent == ["/main/ifsapplications/projection/v1/PurchaseOrderHandling.svc/$metadata"]


def test_a_failed_metadata_read_is_not_kept_and_the_next_caller_reads_again() -> None:
    client, sent = _client(fail_first=1)
    with pytest.raises(TransientError):
        client.metadata("PurchaseOrderHandling")
    assert client.metadata("PurchaseOrderHandling").keys("PurchaseOrderSet")
    assert len(sent) == 2
