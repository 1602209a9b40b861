"""Handing items from a producer thread to a consumer that may go away: a bounded queue's ``put`` that gives up."""

from __future__ import annotations

import queue
import threading
from typing import TypeVar

T = TypeVar("T")

PUT_WAIT_S = 0.1  # how often a producer blocked on a full queue looks whether the consumer has gone


def put_unless_gone(into: queue.Queue[T], item: T, gone: threading.Event) -> bool:
    """Queue ``item``, waiting while the queue is full; False when ``gone`` is set meanwhile (nobody will take it)."""
    while not gone.is_set():
        try:
            into.put(item, timeout=PUT_WAIT_S)
            return True
        except queue.Full:
            continue
    return False
