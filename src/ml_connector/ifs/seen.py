"""What one IFS iteration remembers of the rows it returned, to drop repeats (see ``client``).

A set of the key values kept about 100 bytes a key (the text object and the set's slot), most of the growth of a
backfill's peak RSS from 10,000 to 100,000 records. This keeps a 128-bit fingerprint a key in one flat
open-addressing table at most 70% full: 23 to 46 bytes a key (linear probing still finds a key in 2 probes on
average there). An integer key below 2**64 is its own fingerprint, so
nothing can collide; any other key (text, a tuple) is digested with BLAKE2b to 126 bits. Two keys of a pass collide
with odds of about n² / 2**127 (1e-28 for 100,000 keys), far below a memory error's: a repeat is dropped, a new row
never is.
"""

from __future__ import annotations

from array import array
from collections.abc import Hashable
from hashlib import blake2b

MIN_SLOTS = 1024  # a power of two
_EXACT = 1  # the high word of an integer key's fingerprint; a digest's is >= 2, an empty slot's 0
_WORD = 2**64


def fingerprint(key: Hashable) -> tuple[int, int]:
    """(high, low) words, never (0, 0): an integer in [0, 2**64) as itself, anything else by its digest."""
    if type(key) is int and 0 <= key < _WORD:
        return _EXACT, key
    digest = blake2b(repr(key).encode("utf-8", "surrogatepass"), digest_size=16).digest()
    return int.from_bytes(digest[:8]) | 2, int.from_bytes(digest[8:])


class SeenKeys:
    def __init__(self) -> None:
        self._slots = _zeros(2 * MIN_SLOTS)  # slot i is words 2i (high) and 2i + 1 (low)
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def add(self, key: Hashable) -> bool:
        """Remember ``key``; False when it was added before."""
        if not _insert(self._slots, *fingerprint(key)):
            return False
        self._count += 1
        if 20 * self._count > 7 * len(self._slots):  # more than 70% of the slots (two words each) are taken
            self._grow()
        return True

    def _grow(self) -> None:
        old, self._slots = self._slots, _zeros(2 * len(self._slots))
        for i in range(0, len(old), 2):
            if old[i]:
                _insert(self._slots, old[i], old[i + 1])


def _zeros(words: int) -> array[int]:
    # Made in place: ``array("Q", bytes(8 * words))`` would hold a zeroed copy as large beside it while it grows,
    # 4 MB more at the peak of a 100,000-key pass.
    return array("Q", [0]) * words


def _insert(slots: array[int], high: int, low: int) -> bool:
    """Put the fingerprint in the first free slot from its own (linear probing); False when it is there already."""
    mask = len(slots) // 2 - 1
    i = low & mask
    while True:
        held = slots[2 * i]
        if held == 0:
            slots[2 * i], slots[2 * i + 1] = high, low
            return True
        if held == high and slots[2 * i + 1] == low:
            return False
        i = (i + 1) & mask
