"""``settle_heap``: garbage is collected first, then what is alive is frozen out of the collector's way."""

from __future__ import annotations

import gc
import weakref

from ml_connector.engine.heap import GC_THRESHOLDS, settle_heap


class _Node:
    def __init__(self) -> None:
        self.me = self  # a cycle: only the collector frees it


def test_garbage_is_collected_and_the_living_are_frozen() -> None:
    dead = _Node()
    gone = weakref.ref(dead)
    del dead
    alive = _Node()
    thresholds = gc.get_threshold()
    gc.disable()  # no automatic collection may free the cycle before settle_heap does
    try:
        settle_heap()
        assert gone() is None  # collected before the freeze, not kept forever
        assert gc.get_freeze_count() > 0
        assert not any(obj is alive for obj in gc.get_objects())  # frozen objects are out of every generation
        assert gc.get_threshold() == GC_THRESHOLDS  # a page's short-lived containers are scanned less often
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()
        gc.enable()
