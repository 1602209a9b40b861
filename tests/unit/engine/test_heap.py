"""``settle_heap``: garbage is collected first, then what is alive is frozen out of the collector's way;
``trim_heap``: the free pages inside the heap go back to the system."""

from __future__ import annotations

import gc
import platform
import sys
import weakref
from pathlib import Path

import pytest

from ml_connector.engine.heap import GC_THRESHOLDS, settle_heap, trim_heap


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


def _resident_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS in /proc/self/status")


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc", reason="glibc's malloc_trim"
)
def test_trim_heap_gives_the_free_pages_inside_the_heap_back() -> None:
    # 64 KB blocks come from the heap (below any mmap threshold). Keeping every sixteenth, the last one included,
    # pins the heap's top, so free() alone keeps the other 60 MB resident as free chunks between the kept ones.
    blocks = [b"x" * (64 * 1024) for _ in range(1024)]
    kept = blocks[15::16]
    del blocks
    before = _resident_kib()
    trim_heap()
    after = _resident_kib()
    assert len(kept) == 64
    assert before - after > 30 * 1024, (before, after)
