"""bench/overhead.py keeps working: one round of every measurement through the
real handlers on moto's engine, and a table with full rows. No timing is
asserted here."""

from __future__ import annotations

import json


from bench import overhead
from bench.table import render
from tests.fakes import untouched


def test_one_round_gives_every_measurement_and_a_full_table():
    result = untouched(lambda: overhead.results(1))  # the bench leaves the process as it found it
    json.dumps(result)  # the raw results are JSON
    assert set(result["timings"]) == {"request", "direct", "floor", "engine", "own"}
    for t in result["timings"].values():
        assert len(t["samples_ms"]) == 1 and t["min_ms"] <= t["median_ms"] <= t["max_ms"]
    assert set(result["ratios"]) == {"request/direct", "request/floor", "own/floor"}
    assert {"GetItem", "PutItem", "UpdateItem"} <= set(result["floor_dynamodb_calls"])  # breaker, lease, quota
    rows = overhead.rows(result)
    assert len(rows) == 5 and all(len(row) == len(overhead.HEADERS) for row in rows)
    assert {rows[0][-1], rows[-1][-1]} <= {"met", "missed"}
    render(overhead.HEADERS, rows)
