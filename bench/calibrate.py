"""The host's speed right now, as the CPU time of a fixed piece of work like the connector's per record.

This host's speed moves by up to 40% within an hour (same code: 0.245-0.413 ms of connector CPU per record), so a
figure in milliseconds compares only with runs made minutes apart. Scenario 6 times this work just before each pair
of backfills and also reports the CPU per record in units of it, a figure that compares across hosts and hours.

The work is a record's kind of Python: a row of IFS fields built as a dict, encoded with sorted keys by the standard
library (what the hashes and the audit trail do) and by orjson (request bodies, JSON columns), hashed, decoded, and
its texts joined, lowered and searched.
"""

from __future__ import annotations

import hashlib
import json
import re
import time

import orjson

ROUNDS = 2_000  # about 25-40 ms a measure here
_PATTERN = re.compile(r"\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{6,}", re.IGNORECASE)
_ENCODER = json.JSONEncoder(sort_keys=True, ensure_ascii=False)


def unit_ms(measures: int = 5) -> float:
    """The CPU milliseconds of one round of the work: the fastest of ``measures`` measures of ``ROUNDS`` rounds (the
    fastest is the one least disturbed by what else ran)."""
    return min(_measure() for _ in range(measures)) / ROUNDS


def _measure() -> float:
    started = time.process_time()
    for n in range(ROUNDS):
        _round(n)
    return 1000 * (time.process_time() - started)


def _round(n: int) -> int:
    row = {
        "OrderNo": f"PO-{n:06d}",
        "Description": f"Spare parts for line {n % 7}",
        "Contract": f"S{n % 5}00",
        "CurrencyCode": "USD",
        "TotalAmount": n * 1.25,
        "VendorNo": f"SUP-{n % 40:04d}",
        "BuyerCode": "DEKWUEME",
        "Objstate": "Confirmed",
        "OrderDate": "2025-05-26",
        "Cf_Changed_At": f"2025-06-17T20:{n % 60:02d}:37Z",
        "keyref": f"ORDER_NO=PO-{n:06d}^",
        "Lines": [{"LineNo": str(i), "PartNo": f"P{(n + i) % 13}", "Qty": i * 2} for i in range(1, 4)],
    }
    text = _ENCODER.encode({"config": "fingerprint", "record": row})
    digest = hashlib.sha256(text.encode()).digest()
    back = orjson.loads(orjson.dumps(row))
    texts = "\x00".join(v for v in back.values() if type(v) is str)
    found = _PATTERN.search(texts.lower())
    return digest[0] + len(back) + (found is not None)
