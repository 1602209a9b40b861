"""``SeenKeys`` answers as a set of the keys would, in a fraction of its memory."""

from __future__ import annotations

import sys
import tracemalloc

from hypothesis import given
from hypothesis import strategies as st

from ml_connector.ifs.seen import MIN_SLOTS, SeenKeys, fingerprint

keys = st.one_of(
    st.integers(min_value=-(2**40), max_value=2**40), st.text(max_size=8), st.tuples(st.text(), st.integers())
)


@given(st.lists(keys, max_size=3000))
def test_add_says_whether_the_key_is_new_as_a_set_would(drawn: list[object]) -> None:
    seen, expected = SeenKeys(), set()
    for key in drawn:
        assert seen.add(key) == (key not in expected)
        expected.add(key)
    assert len(seen) == len(expected)


def test_integer_keys_that_probe_past_the_end_are_kept_apart_and_zero_is_a_key() -> None:
    seen = SeenKeys()
    assert seen.add(0) and not seen.add(0) and seen.add(1) and not seen.add(1)
    last = MIN_SLOTS - 1  # the last slot, then the same slot by its fingerprint: probing wraps to the start
    assert seen.add(last) and seen.add(last + MIN_SLOTS) and seen.add(last + 2 * MIN_SLOTS)
    assert not seen.add(last + MIN_SLOTS)
    assert len(seen) == 5


def test_an_integer_and_a_text_of_its_digits_are_different_keys() -> None:
    seen = SeenKeys()
    assert seen.add(42) and seen.add("42") and seen.add(("42",)) and seen.add(-42) and seen.add(2**64)
    assert not seen.add("42") and not seen.add(2**64)
    assert fingerprint(42) == (1, 42) and fingerprint("42")[0] >= 2  # integers exact, digests apart from them
    high, low = fingerprint(("PO-1", 7))
    assert 2 <= high < 2**32 and 0 <= low < 2**64  # 95 bits of digest: the high word fits its 32-bit array


def test_a_pass_of_100000_text_keys_costs_at_most_35_bytes_a_key() -> None:
    seen = SeenKeys()
    new = [seen.add(f"PO-{n:07d}") for n in range(100_000)]
    assert all(new) and not seen.add("PO-0000042")
    held = sys.getsizeof(seen._high) + sys.getsizeof(seen._low)
    assert seen.nbytes <= held <= seen.nbytes + 1024
    assert held <= 35 * 100_000
    assert held < 100 * 100_000  # a set of the keys: its table plus the key objects


def test_growing_the_table_holds_no_more_than_the_old_and_the_new_table() -> None:
    # The peak of a large pass is the moment the table doubles: no zeroed copy may sit beside the two tables.
    seen = SeenKeys()
    n = 0
    while seen.nbytes < 64 * MIN_SLOTS * 12:  # fill up to the doubling before a table of 64 * MIN_SLOTS slots
        seen.add(n)
        n += 1
    old_bytes = seen.nbytes
    while seen.nbytes == old_bytes:  # the next add that doubles it
        tracemalloc.start()
        seen.add(n)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        n += 1
    assert peak <= 2 * old_bytes + 64 * 1024  # the new table (twice the old), and no copy of it
