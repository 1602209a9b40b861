"""What one IFS iteration remembers of the rows it returned, to drop repeats (see ``client``).

A set of the key values kept about 100 bytes a key (the text object and the set's slot), most of the growth of a
backfill's peak RSS from 10,000 to 100,000 records. This keeps a 64-bit fingerprint a key, ``hash(key)``, in one flat
open-addressing table at most half full: 16 to 32 bytes a key. For an integer key below 2**61 the fingerprint is the
value itself, so nothing can collide; text keys (SipHash, keyed per process) collide with odds of about n² / 2**65 a
pass (3e-10 for 100,000 keys), which would drop the later row for that pass only.
"""

from __future__ import annotations

from array import array
from collections.abc import Hashable

EMPTY = 0  # an unused slot; a key whose fingerprint is 0 is remembered apart
MIN_SLOTS = 1024  # a power of two


class SeenKeys:
    def __init__(self) -> None:
        self._slots = array("q", bytes(8 * MIN_SLOTS))
        self._count = 0
        self._zero = False  # a key with fingerprint 0 was added

    def __len__(self) -> int:
        return self._count

    def add(self, key: Hashable) -> bool:
        """Remember ``key``; False when it was added before."""
        fingerprint = hash(key)
        if fingerprint == EMPTY:
            new, self._zero = not self._zero, True
        else:
            new = _insert(self._slots, fingerprint)
        if new:
            self._count += 1
            if 2 * self._count > len(self._slots):
                self._grow()
        return new

    def _grow(self) -> None:
        slots = array("q", bytes(16 * len(self._slots)))
        for fingerprint in self._slots:
            if fingerprint != EMPTY:
                _insert(slots, fingerprint)
        self._slots = slots


def _insert(slots: array[int], fingerprint: int) -> bool:
    """Put ``fingerprint`` in the first free slot from its own (linear probing); False when it is there already."""
    mask = len(slots) - 1
    i = fingerprint & mask
    while True:
        held = slots[i]
        if held == EMPTY:
            slots[i] = fingerprint
            return True
        if held == fingerprint:
            return False
        i = (i + 1) & mask
