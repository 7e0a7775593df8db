"""The cleanup sweep on moto + the emulator: every way a GPU can be left behind."""

from __future__ import annotations

import httpx
import pytest

from harpoon import deps
from harpoon.catalog import load_catalog
from harpoon.domain.allocate import allocation_idempotency_key
from tests.conftest import load_event, load_handler


def allocations(emulator) -> list:
    return httpx.get(f"{emulator.base_url}/_emulator/allocations").json()["allocations"]


def faults(emulator, **settings) -> None:
    httpx.post(f"{emulator.base_url}/_emulator/faults", json=settings).raise_for_status()


def sweep(lambda_context, **event):
    return load_handler("cleanup").lambda_handler(event, lambda_context)


@pytest.fixture
def allocated(aws, emulator, lambda_context):
    return load_handler("allocate").lambda_handler(load_event("allocate"), lambda_context)


def test_a_failed_release_is_reclaimed(aws, emulator, lambda_context, allocated):
    faults(emulator, release={"fail_next": 1, "status": 500})
    with pytest.raises(Exception):
        load_handler("release").lambda_handler({"request_id": allocated["lease_id"], "allocation": allocated}, lambda_context)
    assert deps.leases().get(allocated["lease_id"]).status == "RELEASE_FAILED"
    report = sweep(lambda_context)
    assert report["released"] == 1 and allocations(emulator) == []
    assert deps.leases().get(allocated["lease_id"]).status == "RELEASED"


def test_an_active_lease_in_flight_is_left_alone_until_stale(aws, emulator, lambda_context, allocated):
    assert sweep(lambda_context)["released"] == 0 and len(allocations(emulator)) == 1
    report = sweep(lambda_context, stale_after_seconds=0)  # e.g. the Release Lambda crashed
    assert report["released"] == 1 and allocations(emulator) == []


def test_an_abandoned_lease_gets_its_lost_allocation_back_by_idempotency_key(aws, emulator, lambda_context, monkeypatch):
    monkeypatch.setenv("HOSTED_AI_TIMEOUT", "0.2")
    deps.reset()
    faults(emulator, allocate={"timeout_rate": 1.0, "hang_ms": 500})
    rid = load_event("allocate")["request_id"]
    with pytest.raises(Exception):
        load_handler("allocate").lambda_handler(load_event("allocate"), lambda_context)
    load_handler("release").lambda_handler({"request_id": rid, "allocation": None}, lambda_context)
    assert deps.leases().get(rid).status == "ABANDONED" and len(allocations(emulator)) == 1
    faults(emulator, allocate={})
    monkeypatch.setenv("HOSTED_AI_TIMEOUT", "8")
    deps.reset()
    assert sweep(lambda_context)["reconciled"] == 0  # too fresh: the lost call might still be in flight
    report = sweep(lambda_context, reconcile_after_seconds=0)
    assert (report["reconciled"], report["released"], report["closed"]) == (1, 1, 1)
    assert allocations(emulator) == [] and deps.leases().get(rid).status == "RELEASED"
    created = httpx.get(f"{emulator.base_url}/_emulator/stats").json()
    assert created["calls"]["allocate"] == 2  # the lost one, and the reconciling replay of its key


def test_a_stale_pending_lease_is_reconciled_even_if_nothing_was_allocated(aws, emulator, lambda_context):
    rid = "req-crashed-before-allocate"
    spec = load_catalog().get("gemma-270m")
    deps.leases().begin(lease_id=rid, model=spec.id, pool_id="gpu-pool-1",
                        idempotency_key=allocation_idempotency_key(rid, spec.id), duration_seconds=300,
                        request={"pool_id": "gpu-pool-1", "model": spec.id, "requirements": spec.requirements(),
                                 "duration_seconds": 300})
    assert sweep(lambda_context)["reconciled"] == 0  # still fresh: an execution may own it
    report = sweep(lambda_context, stale_after_seconds=0, reconcile_after_seconds=0)
    # Asked again with its key: HostedAI made one now, and it was released at once.
    assert (report["reconciled"], report["released"], report["closed"]) == (1, 1, 1)
    assert allocations(emulator) == [] and deps.leases().get(rid).status == "RELEASED"


def test_a_key_lost_before_a_fallback_served_is_reconciled_while_the_lease_is_active(aws, emulator, lambda_context,
                                                                                      monkeypatch):
    # qwen's allocate times out after HostedAI made the GPU; the retry's replay
    # hears "no capacity" and the request is served by gemma. Two GPUs exist
    # for one request until the cleanup finds the first by its key.
    rid = load_event("allocate")["request_id"]
    monkeypatch.setenv("HOSTED_AI_TIMEOUT", "0.2")
    deps.reset()
    faults(emulator, allocate={"timeout_rate": 1.0, "hang_ms": 500})
    with pytest.raises(Exception):
        load_handler("allocate").lambda_handler(load_event("allocate"), lambda_context)
    faults(emulator, allocate={"fail_next": 1, "status": 503, "code": "no_capacity"})
    out = load_handler("allocate").lambda_handler(load_event("allocate"), lambda_context)
    assert out["model"] == "gemma-270m" and out["degraded"]
    lease = deps.leases().get(rid)
    assert lease.status == "ACTIVE" and lease.pending_keys == {allocation_idempotency_key(rid, "qwen-30b")}
    assert len(allocations(emulator)) == 2
    monkeypatch.setenv("HOSTED_AI_TIMEOUT", "8")
    deps.reset()
    report = sweep(lambda_context, reconcile_after_seconds=0)  # the ACTIVE lease is live: only its lost key is settled
    assert (report["reconciled"], report["released"]) == (1, 1)
    assert [a["allocation_id"] for a in allocations(emulator)] == [out["allocation_id"]]


def test_hostedai_down_during_the_sweep_is_reported_and_retried_next_time(aws, emulator, lambda_context, allocated):
    faults(emulator, release={"error_rate": 1.0, "status": 503})
    report = sweep(lambda_context, stale_after_seconds=0)
    assert report["released"] == 0 and len(report["failed"]) == 1
    faults(emulator, release={})
    assert sweep(lambda_context, stale_after_seconds=0)["released"] == 1
    assert allocations(emulator) == []


def test_a_lease_whose_execution_ended_is_reclaimed_at_once(aws, emulator, lambda_context):
    # e.g. the execution hit its TimeoutSeconds: no Catch, no Release.
    from harpoon.domain.cleanup import sweep as run_sweep

    event = {**load_event("allocate"), "execution_id": "arn:aws:states:us-east-1:123456789012:execution:sm:x"}
    load_handler("allocate").lambda_handler(event, lambda_context)
    ended = {}
    kwargs = dict(leases=deps.leases(), hostedai=deps.hostedai(), stale_after_seconds=3600, reconcile_after_seconds=3600)
    assert run_sweep(**kwargs, execution_ended=lambda arn: ended.get(arn, False)).released == 0  # still running
    ended[event["execution_id"]] = True
    assert run_sweep(**kwargs, execution_ended=lambda arn: ended.get(arn, False)).released == 1
    assert allocations(emulator) == []
