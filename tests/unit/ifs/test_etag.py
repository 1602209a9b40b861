from __future__ import annotations

import pytest

from ml_connector.ifs.etag import EtagInfo, decode_etag, encode_etag


def test_decodes_real_shaped_etag() -> None:
    # W/"AAATH5AAGAABribAAe:20180319182735" base64-wrapped, the form documented in docs/ifs-api.md §3.2
    etag = 'W/"Vy8iQUFBVEg1QUFHQUFCcmliQUFlOjIwMTgwMzE5MTgyNzM1Ig=="'
    assert decode_etag(etag) == EtagInfo("AAATH5AAGAABribAAe", "20180319182735")


def test_roundtrip_and_counter_versions() -> None:
    assert decode_etag(encode_etag("AAAYiOAAMAAA0AWAAM", "3")) == EtagInfo("AAAYiOAAMAAA0AWAAM", "3")


@pytest.mark.parametrize("bad", [None, "", "*", '"abc"', 'W/"not base64!"', 'W/"' + "YWJj" + '"'])
def test_foreign_or_garbled_etags_are_none(bad: str | None) -> None:
    assert decode_etag(bad) is None
