"""bench/throughput.py imports and formats: its pure parts only. No stack is
started here (too slow for unit tests) and no timing is asserted."""

from __future__ import annotations

import pytest

from bench import throughput
from bench.table import render


def test_percentile_interpolates_between_ranks():
    values = [40.0, 10.0, 30.0, 20.0]  # unsorted on purpose
    assert throughput.percentile(values, 0) == 10.0
    assert throughput.percentile(values, 100) == 40.0
    assert throughput.percentile(values, 50) == pytest.approx(25.0)
    assert throughput.percentile(list(range(1, 101)), 95) == pytest.approx(95.05)
    assert throughput.percentile([7.0], 95) == 7.0


def test_percentile_refuses_no_values_and_bad_q():
    with pytest.raises(ValueError):
        throughput.percentile([], 50)
    with pytest.raises(ValueError):
        throughput.percentile([1.0], 101)


def test_summarise_counts_every_non_200_and_no_answer_as_an_error():
    outcomes = [(200, 10.0), (200, 20.0), (503, 30.0), (None, 40.0)]
    level = throughput.summarise(8, outcomes, elapsed=2.0)
    assert level["requests"] == 4
    assert level["errors"] == 2
    assert level["statuses"] == ["503", "None"]
    assert level["rps"] == pytest.approx(2.0)
    assert level["p50_ms"] == pytest.approx(25.0)
    assert level["concurrency"] == 8


def test_rows_match_the_headers_and_render():
    result = {"levels": [throughput.summarise(c, [(200, 12.345)] * n, elapsed=n / 10) for c, n in throughput.LEVELS]}
    rows = throughput.rows(result)
    assert [row[0] for row in rows] == [c for c, _ in throughput.LEVELS]
    assert all(len(row) == len(throughput.HEADERS) for row in rows)
    assert rows[0][1:] == [throughput.LEVELS[0][1], 0, "4.0", "10.0", "12", "12"]
    table = render(throughput.HEADERS, rows)
    assert "req/s" in table and "p95 ms" in table


def test_levels_are_1_8_and_32_in_flight():
    assert [c for c, _ in throughput.LEVELS] == [1, 8, 32]
    assert all(n >= c for c, n in throughput.LEVELS)
