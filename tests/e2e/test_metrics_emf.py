"""A full local run, read back as CloudWatch would read it: the EMF lines the
functions wrote to their logs hold every metric of harpoon.metrics.CATALOG,
each with its unit and only its bounded dimensions (the tenant in metadata,
never a dimension)."""

from __future__ import annotations

import httpx
import pytest

from harpoon.metrics import CATALOG, NAMESPACE
from local.metrics import aggregate, from_log_dir
from tests.e2e.conftest import RunningStack

pytestmark = pytest.mark.e2e

COMPLEX = "Prove that there are infinitely many primes, step by step."


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One stack whose breakers open on the first failure, driven down every
    path that emits a metric; its EMF records."""
    tmp = tmp_path_factory.mktemp("metrics")
    # No scheduled sweeps: each would add samples while the test reads.
    stack = RunningStack(tmp, "--env", "BREAKER_FAILURE_THRESHOLD=1", "--env", "BREAKER_MINIMUM_CALLS=1",
                         "--schedule-interval", "0")
    try:
        with httpx.Client(base_url=stack.url, timeout=60, headers={"x-api-key": stack.api_key}) as http:
            def process(text="Hello", **body):
                return http.post("/v2/process", json={"text": text, "max_tokens": 16, **body})

            def sweep(**event):
                return http.post("/_local/schedules/CleanupFunction", json=event).json()

            assert process().status_code == process(COMPLEX).status_code == 200
            assert process().json()["allocation"]["warm"] is True  # a warm hit
            assert sweep(horizon_seconds=300)["released"] >= 2  # the idle warm GPUs: reclaimed, not leaked
            stack.faults(allocate={"fail_next": 1, "status": 503, "code": "no_capacity"})
            assert process(COMPLEX).json()["route"]["degraded"] is True  # qwen full: gemma serves
            # Inference fails (gemma's breaker opens), then so does the release
            # after it (a failed run never keeps its GPU warm): a leak the sweep ends.
            stack.faults(allocate={}, inference={"error_rate": 1.0, "status": 500},
                         release={"error_rate": 1.0, "status": 500})
            assert process(model="gemma-270m", text="Hi").status_code == 502
            stack.faults(inference={}, release={})
            reclaimed = sweep()["reclaimed"]
            assert [entry["was"] for entry in reclaimed] == ["RELEASING"]
            sweep(horizon_seconds=300)
        yield from_log_dir(tmp / "logs"), stack
    finally:
        stack.stop()


def test_every_catalog_metric_is_emitted_with_its_unit_and_dimensions(run):
    records, _ = run
    ours = [r for r in records if r["namespace"] == NAMESPACE]
    assert {r["name"] for r in ours} == set(CATALOG)
    for record in ours:
        spec = CATALOG[record["name"]]
        assert record["unit"] == spec.unit, record
        assert set(record["dimensions"]) == {*spec.dimensions, "service"}, record
        assert record["dimensions"]["service"] == "harpoon"
        if spec.outcomes:
            assert record["dimensions"]["outcome"] in spec.outcomes, record
        assert "tenant_id" not in record["dimensions"]


def test_the_tenant_travels_in_metadata_and_values_make_sense(run):
    records, _ = run
    by_name: dict[str, list[dict]] = {}
    for record in records:
        by_name.setdefault(record["name"], []).append(record)
    assert {r["metadata"]["tenant_id"] for r in by_name["Allocations"]} == {"demo"}
    outcomes = {r["dimensions"]["outcome"] for r in by_name["Allocations"]}
    assert {"cold", "warm"} <= outcomes
    assert {r["dimensions"]["outcome"] for r in by_name["Classifications"]} == {"simple", "complex"}
    assert {r["dimensions"]["outcome"] for r in by_name["BreakerTransitions"]} >= {"open"}
    assert {r["dimensions"]["outcome"] for r in by_name["InferenceLatency"]} >= {"ok", "upstream_error"}
    assert {r["dimensions"]["outcome"] for r in by_name["LeasesReclaimed"]} >= {"idle", "releasing"}
    assert len(by_name["LeakedGpuSeconds"]) == 1  # the one leak: the GPU whose release kept failing
    assert {r["dimensions"]["outcome"] for r in by_name["Allocations"]} >= {"cold", "warm"}
    assert sum(v for r in by_name["TokensGenerated"] for v in r["values"]) > 0
    assert all(v > 0 for r in by_name["GpuCost"] for v in r["values"])


def test_the_local_stack_shows_them_as_a_table(run):
    records, stack = run
    shown = httpx.get(f"{stack.url}/_local/metrics").json()["metrics"]
    assert shown == aggregate(records)  # this run's lines only
    assert {row["metric"] for row in shown} == set(CATALOG)
