"""Webhook delivery from a background thread, so an API request never waits for a receiver."""

from __future__ import annotations

import heapq
import itertools
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx2


@dataclass
class Delivery:
    url: str
    body: bytes
    identifier: str
    event: str
    webhook_ids: list[int]
    kind: str  # "admin" | "dynamic"
    headers_for: Callable[[int], dict[str, str]]  # attempt number -> headers (JWTs are signed per attempt)
    attempt: int = 0
    duplicate: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


class DeliveryWorker:
    """One daemon thread; retries after ``retry_delays`` (real seconds) on non-2xx answers and transport errors."""

    def __init__(self, *, retry_delays: list[float], timeout: float, record: Callable[[dict[str, Any]], None]) -> None:
        self._retry_delays = list(retry_delays)
        self._timeout = timeout
        self._record = record
        self._queue: queue.Queue[Delivery | None] = queue.Queue(maxsize=10_000)
        self._retries: list[tuple[float, int, Delivery]] = []
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._start_lock = threading.Lock()
        self._pending = 0
        self._pending_lock = threading.Lock()

    def submit(self, delivery: Delivery) -> bool:
        """Queue without blocking; a full queue drops the delivery (recorded), as an overloaded sender would."""
        self._ensure_started()
        with self._pending_lock:
            self._pending += 1
            self._idle.clear()
        try:
            self._queue.put_nowait(delivery)
        except queue.Full:
            self._done()
            self._record(_entry(delivery, None, "dropped: queue full"))
            return False
        return True

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """For tests: wait until every queued delivery (including retries) has finished."""
        return self._idle.wait(timeout)

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(5)

    def _ensure_started(self) -> None:
        with self._start_lock:
            if self._thread is None or not self._thread.is_alive():
                self._stopping.clear()
                self._thread = threading.Thread(target=self._run, name="jira-sim-webhooks", daemon=True)
                self._thread.start()

    def _done(self) -> None:
        with self._pending_lock:
            self._pending -= 1
            if self._pending <= 0:
                self._pending = 0
                self._idle.set()

    def _run(self) -> None:
        with httpx2.Client(timeout=self._timeout) as client:
            while not self._stopping.is_set():
                wait = 0.5
                if self._retries:
                    wait = max(0.0, min(wait, self._retries[0][0] - time.monotonic()))
                try:
                    item = self._queue.get(timeout=wait)
                except queue.Empty:
                    item = None
                if item is not None:
                    self._attempt(client, item)
                while self._retries and self._retries[0][0] <= time.monotonic():
                    _, _, due = heapq.heappop(self._retries)
                    self._attempt(client, due)

    def _attempt(self, client: httpx2.Client, delivery: Delivery) -> None:
        headers = {"Content-Type": "application/json", **delivery.headers_for(delivery.attempt)}
        status: int | None = None
        error: str | None = None
        try:
            response = client.post(delivery.url, content=delivery.body, headers=headers)
            status = response.status_code
        except httpx2.HTTPError as exc:
            error = type(exc).__name__
        self._record(_entry(delivery, status, error))
        ok = status is not None and 200 <= status < 300
        if not ok and delivery.attempt < len(self._retry_delays) and not self._stopping.is_set():
            due = time.monotonic() + self._retry_delays[delivery.attempt]
            delivery.attempt += 1
            heapq.heappush(self._retries, (due, next(self._seq), delivery))
            return
        self._done()


def _entry(delivery: Delivery, status: int | None, error: str | None) -> dict[str, Any]:
    return {
        "url": delivery.url,
        "identifier": delivery.identifier,
        "event": delivery.event,
        "kind": delivery.kind,
        "webhook_ids": delivery.webhook_ids,
        "attempt": delivery.attempt,
        "duplicate": delivery.duplicate,
        "status": status,
        "error": error,
        "time": time.time(),
    }
