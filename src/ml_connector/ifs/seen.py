"""What one IFS iteration remembers of the rows it returned, to drop repeats (see ``client``).

A set of the key values kept about 100 bytes a key (the text object and the set's slot), most of the growth of a
backfill's peak RSS from 10,000 to 100,000 records. This keeps a 96-bit fingerprint a key in a flat open-addressing
table at most 70% full, as two parallel arrays (a 64-bit and a 32-bit word a slot): 17 to 35 bytes a key (linear
probing still finds a key in 2 probes on average there). An integer key below 2**64 is its own fingerprint, so
nothing can collide; any other key (text, a tuple) is digested with BLAKE2b to 95 bits. Two keys of a pass collide
with odds of about n² / 2**96 (1e-19 for 100,000 keys), far below a memory error's: a repeat is dropped, a new row
never is. (128 bits cost a third more memory for odds no deployment can tell apart.)
"""

from __future__ import annotations

from array import array
from collections.abc import Hashable
from hashlib import blake2b

MIN_SLOTS = 1024  # a power of two
_EXACT = 1  # the high word of an integer key's fingerprint; a digest's is >= 2, an empty slot's 0
_WORD = 2**64


def fingerprint(key: Hashable) -> tuple[int, int]:
    """(high, low): a 32-bit word that is never 0 and a 64-bit one; an integer in [0, 2**64) as itself, anything
    else by its digest."""
    if type(key) is int and 0 <= key < _WORD:
        return _EXACT, key
    digest = blake2b(repr(key).encode("utf-8", "surrogatepass"), digest_size=12).digest()
    return int.from_bytes(digest[:4]) | 2, int.from_bytes(digest[4:])


class SeenKeys:
    def __init__(self) -> None:
        # slot i is high[i] (0: empty) and low[i]
        self._high, self._low = _zeros("I", MIN_SLOTS), _zeros("Q", MIN_SLOTS)
        self._count = 0

    def __len__(self) -> int:
        return self._count

    @property
    def nbytes(self) -> int:
        """The table's size in bytes."""
        return len(self._high) * self._high.itemsize + len(self._low) * self._low.itemsize

    def add(self, key: Hashable) -> bool:
        """Remember ``key``; False when it was added before."""
        if not _insert(self._high, self._low, *fingerprint(key)):
            return False
        self._count += 1
        if 10 * self._count > 7 * len(self._high):  # more than 70% of the slots are taken
            self._grow()
        return True

    def _grow(self) -> None:
        """Twice the slots: at the peak, the old table and the new one (36 bytes a slot of the old), no more."""
        high, low = self._high, self._low
        slots = 2 * len(high)
        self._high, self._low = _zeros("I", slots), _zeros("Q", slots)
        for i, held in enumerate(high):
            if held:
                _insert(self._high, self._low, held, low[i])


def _zeros(typecode: str, length: int) -> array[int]:
    # Made in place: ``array(typecode, bytes(n))`` would hold a zeroed copy as large beside it while it grows.
    return array(typecode, [0]) * length


def _insert(highs: array[int], lows: array[int], high: int, low: int) -> bool:
    """Put the fingerprint in the first free slot from its own (linear probing); False when it is there already."""
    mask = len(highs) - 1
    i = low & mask
    while True:
        held = highs[i]
        if held == 0:
            highs[i], lows[i] = high, low
            return True
        if held == high and lows[i] == low:
            return False
        i = (i + 1) & mask
