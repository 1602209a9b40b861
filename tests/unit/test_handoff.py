"""A producer's put into a bounded queue gives up once the consumer has gone, instead of blocking forever."""

from __future__ import annotations

import queue
import threading

from ml_connector.handoff import put_unless_gone


def test_a_put_waits_for_room_then_succeeds() -> None:
    into: queue.Queue[int] = queue.Queue(maxsize=1)
    into.put(1)
    threading.Timer(0.15, into.get).start()
    assert put_unless_gone(into, 2, threading.Event())
    assert into.get_nowait() == 2


def test_a_put_into_a_full_queue_gives_up_when_the_consumer_goes() -> None:
    into: queue.Queue[int] = queue.Queue(maxsize=1)
    into.put(1)
    gone = threading.Event()
    threading.Timer(0.15, gone.set).start()
    assert not put_unless_gone(into, 2, gone)
    assert into.get_nowait() == 1 and into.empty()
