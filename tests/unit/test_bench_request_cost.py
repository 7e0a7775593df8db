"""bench/request_cost.py keeps working: two requests per warm-reuse setting
through the real handlers on moto's engine, and counts that add up. No timing
or price is asserted here."""

from __future__ import annotations

import json

import pytest

from bench import request_cost
from bench.table import render
from tests.fakes import untouched

FIELDS = ("reads", "writes", "transactions", "condition_checks", "failed", "wcu", "index_wcu")


@pytest.fixture(scope="module")
def result():
    return untouched(lambda: request_cost.results(2))  # the bench leaves the process as it found it


def test_every_scenario_ran_its_requests(result):
    json.dumps(result)  # the raw results are JSON
    scenarios = result["scenarios"]
    assert set(scenarios) == set(request_cost.SCENARIOS)
    assert [scenarios[name]["requests"] for name in ("off", "miss", "hit")] == [2, 1, 1]
    for s in scenarios.values():
        assert s["release"] == (["released"] if s is scenarios["off"] else ["kept_warm"])


def test_dynamodb_counts_are_integers_and_add_up(result):
    for s in result["scenarios"].values():
        total, by_function = s["dynamodb"]["total"], s["dynamodb"]["by_function"]
        for field in FIELDS:
            assert isinstance(total[field], int) and total[field] >= 0, (s["label"], field)
            assert total[field] == sum(f[field] for f in by_function.values()), (s["label"], field)
        assert total["rcu"] == pytest.approx(sum(f["rcu"] for f in by_function.values()))
        assert total["writes"] > 0 and total["wcu"] >= total["writes"]  # at least 1 WCU per item written
        assert total["condition_checks"] <= total["writes"] and total["transactions"] <= total["writes"]
        assert (total["reads"] == 0) == (total["rcu"] == 0)
        breakdown = s["dynamodb"]["breakdown"]
        assert sum(e["count"] for e in breakdown) == total["reads"] + total["writes"]
        assert sum(e["wcu"] for e in breakdown) == total["wcu"]
        assert sum(e["index_wcu"] for e in breakdown) == total["index_wcu"]
        assert 0 <= s["dynamodb"]["breaker_reads"] <= total["reads"]
    lookup, hit = result["authorizer"]
    assert lookup["dynamodb"]["reads"] >= 1 and lookup["dynamodb"]["writes"] == 0
    assert hit["dynamodb"]["reads"] <= lookup["dynamodb"]["reads"]


def test_workflow_and_lambda_counts_are_consistent(result):
    for s in result["scenarios"].values():
        count = s["requests"]
        assert isinstance(s["transitions"], int) and s["transitions"] > 0
        assert s["transitions"] == len(s["states"]) * count  # the happy path's states, every time
        assert s["execution_ms"] > 0
        lam = s["lambda"]
        assert lam["ApiFunction"]["invocations"] == count
        assert sum(f["invocations"] for f in lam.values()) > count  # the API plus the steps
        for f in lam.values():
            assert isinstance(f["invocations"], int) and f["invocations"] >= 0
            assert f["billed_ms"] >= f["invocations"]  # at least 1 ms each
            assert f["gb_s"] == pytest.approx(f["billed_ms"] / 1000 * f["memory_mb"] / 1024)


def test_costs_are_the_sum_of_their_parts(result):
    parts = ("api_gateway", "lambda_requests", "lambda_gb_s", "step_functions", "dynamodb")
    for s in result["scenarios"].values():
        costs = s["cost_per_million"]
        assert set(costs) == {"EXPRESS", "STANDARD"}
        for c in costs.values():
            assert all(c[p] > 0 for p in parts)
            assert c["total_cached"] == pytest.approx(sum(c[p] for p in parts) + c["authorizer_cached"])
            assert c["total_every_request"] >= c["total_cached"]


def test_every_table_renders_with_full_rows(result):
    titles = []
    for title, headers, rows in request_cost.tables(result):
        assert rows and all(len(row) == len(headers) for row in rows), title
        render(headers, rows)
        titles.append(title)
    assert len(titles) == 5
    assert {row[-1] for row in request_cost.goal_rows(result)} <= {"met", "missed"}
    assert "Issue 8" in request_cost.report(result)


def test_capacity_rules():
    size = request_cost.item_size
    assert size({"pk": {"S": "abc"}, "n": {"N": "123"}, "ok": {"BOOL": True}}) == (2 + 3) + (1 + 3) + (2 + 1)
    assert size({"m": {"M": {"a": {"S": "x"}}}, "l": {"L": [{"N": "1"}]}}) == (1 + 3 + 1 + 1 + 1) + (1 + 3 + 2 + 1)
    assert [request_cost.write_units(s) for s in (0, 1024, 1025)] == [1, 1, 2]
    assert request_cost.write_units(1025, transactional=True) == 4
    assert request_cost.read_units(4096, consistent=False) == 0.5
    assert request_cost.read_units(4097, consistent=True) == 2
    assert request_cost.read_units(1, consistent=True, transactional=True) == 2


def test_index_writes_follow_the_sparse_index():
    spec = request_cost.TableSpec("T", ("id",), (("Ix", ("shard", "due"), "ALL", ()),))
    out = {"id": {"S": "a"}}
    due = lambda t: {"id": {"S": "a"}, "shard": {"S": "0"}, "due": {"N": str(t)}}  # noqa: E731
    assert spec.index_write_units(None, out) == 0  # never in the index
    assert spec.index_write_units(None, due(1)) == 1  # enters it
    assert spec.index_write_units(due(1), out) == 1  # leaves it
    assert spec.index_write_units(due(1), due(2)) == 2  # its index key moves: delete + put
    assert spec.index_write_units(due(1), {**due(1), "x": {"S": "y"}}) == 1  # projected attribute changed
    assert spec.index_write_units(due(1), due(1)) == 0
