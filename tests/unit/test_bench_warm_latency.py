"""bench/warm_latency.py keeps working (it calls the step functions directly,
so it breaks when their signatures move). No timing is asserted here."""

from __future__ import annotations

from bench import warm_latency
from tests.fakes import untouched


def test_one_round_gives_a_row_per_model():
    rows = untouched(lambda: warm_latency.measure(1))
    assert len(rows) >= 2 and all(len(row) == len(rows[0]) for row in rows)
