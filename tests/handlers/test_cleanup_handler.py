"""The reclaim sweep on moto + the emulator: every way a GPU can be left
behind, reclaimed once (and only once) its lease is due. `horizon_seconds`
lets a sweep look that far ahead, standing in for the time that would pass."""

from __future__ import annotations

import httpx
import pytest

from harpoon import deps, errors
from harpoon.catalog import load_catalog
from harpoon.domain.allocate import allocation_idempotency_key
from tests.conftest import load_event, load_handler

TTL = 120  # the template's LeaseTtlSeconds
RECONCILE = 60  # RECONCILE_AFTER_SECONDS


def allocations(emulator) -> list:
    return httpx.get(f"{emulator.base_url}/_emulator/allocations").json()["allocations"]


def calls(emulator, endpoint: str) -> int:
    return httpx.get(f"{emulator.base_url}/_emulator/stats").json()["calls"][endpoint]


def faults(emulator, **settings) -> None:
    httpx.post(f"{emulator.base_url}/_emulator/faults", json=settings).raise_for_status()


def sweep(lambda_context, **event):
    return load_handler("cleanup").lambda_handler(event, lambda_context)


def allocate(lambda_context, request_id="req-3f2a9c1e5b7d4e8fa1b2c3d4e5f60718", model="qwen-30b", **extra):
    return load_handler("allocate").lambda_handler({"request_id": request_id, "model": model, **extra}, lambda_context)


def release(lambda_context, allocated, **extra):
    # As the workflow passes it: the tenant of the request is the allocation's.
    event = {"request_id": allocated["lease_id"], "tenant_id": allocated["tenant_id"], "allocation": allocated, **extra}
    return load_handler("release").lambda_handler(event, lambda_context)


@pytest.fixture
def allocated(aws, emulator, lambda_context):
    return allocate(lambda_context)


def test_an_execution_killed_after_allocate_has_its_gpu_reclaimed_once_the_lease_expires(aws, emulator, lambda_context, allocated):
    # Nothing after Allocate ran (the execution was stopped, or timed out).
    report = sweep(lambda_context)
    assert (report["items_read"], report["released"]) == (0, 0) and len(allocations(emulator)) == 1
    assert sweep(lambda_context, horizon_seconds=TTL - 5)["released"] == 0  # still within its lease
    report = sweep(lambda_context, horizon_seconds=TTL + 1)
    assert (report["items_read"], report["examined"], report["released"], report["closed"]) == (1, 1, 1, 1)
    assert report["reclaimed"][0]["allocation_id"] == allocated["allocation_id"] and allocations(emulator) == []
    lease = deps.leases().get(allocated["lease_id"])
    assert lease.status == "RELEASED" and lease.lease_expires_at is None
    assert sweep(lambda_context, horizon_seconds=10 * TTL)["items_read"] == 0  # settled: out of the index


def test_a_failed_release_is_due_for_the_sweep_at_once(aws, emulator, lambda_context, allocated):
    faults(emulator, release={"fail_next": 1, "status": 500})
    with pytest.raises(errors.UpstreamUnavailableError):
        release(lambda_context, allocated)
    assert deps.leases().get(allocated["lease_id"]).status == "RELEASING"
    report = sweep(lambda_context)
    assert report["released"] == 1 and allocations(emulator) == []
    assert deps.leases().get(allocated["lease_id"]).status == "RELEASED"
    # The step's own retry, if it comes after, hears "already gone" and changes nothing.
    assert release(lambda_context, allocated)["status"] == "already_gone"


def test_an_abandoned_lease_gets_its_lost_allocation_back_by_idempotency_key(aws, emulator, lambda_context, monkeypatch):
    monkeypatch.setenv("HOSTED_AI_TIMEOUT", "0.2")
    deps.reset()
    faults(emulator, allocate={"timeout_rate": 1.0, "hang_ms": 500})
    rid = load_event("allocate")["request_id"]
    with pytest.raises(errors.UpstreamTimeoutError):
        allocate(lambda_context)
    load_handler("release").lambda_handler({"request_id": rid, "allocation": None}, lambda_context)
    assert deps.leases().get(rid).status == "ABANDONED" and len(allocations(emulator)) == 1
    faults(emulator, allocate={})
    monkeypatch.setenv("HOSTED_AI_TIMEOUT", "8")
    deps.reset()
    assert sweep(lambda_context)["reconciled"] == 0  # too fresh: the lost call might still be in flight
    report = sweep(lambda_context, horizon_seconds=RECONCILE + 1)
    assert (report["reconciled"], report["released"], report["closed"]) == (1, 1, 1)
    assert allocations(emulator) == [] and deps.leases().get(rid).status == "RELEASED"
    assert calls(emulator, "allocate") == 2  # the lost one, and the reconciling replay of its key


def test_a_pending_lease_whose_step_crashed_is_reconciled_even_if_nothing_was_allocated(aws, emulator, lambda_context):
    rid = "req-crashed-before-allocate"
    spec = load_catalog().get("gemma-270m")
    deps.leases().begin(lease_id=rid, model=spec.id, pool_id="gpu-pool-1",
                        idempotency_key=allocation_idempotency_key(rid, spec.id),
                        request={"pool_id": "gpu-pool-1", "model": spec.id, "requirements": spec.requirements(),
                                 "duration_seconds": 300})
    assert sweep(lambda_context)["examined"] == 0  # still fresh: an execution may own it
    report = sweep(lambda_context, horizon_seconds=RECONCILE + 1)
    # Asked again with its key: HostedAI made one now, and it was released at once.
    assert (report["reconciled"], report["released"], report["closed"]) == (1, 1, 1)
    assert allocations(emulator) == [] and deps.leases().get(rid).status == "RELEASED"
    with pytest.raises(errors.RequestAlreadyRunError):  # its execution, if alive, must not go on
        allocate(lambda_context, request_id=rid, model="gemma-270m")


def test_a_key_lost_before_a_fallback_served_is_reconciled_after_the_release(aws, emulator, lambda_context, monkeypatch):
    # qwen's allocate times out after HostedAI made the GPU; the retry's replay
    # hears "no capacity" and the request is served by gemma. Two GPUs exist
    # for one request until the sweep finds the first by its key.
    rid = load_event("allocate")["request_id"]
    monkeypatch.setenv("HOSTED_AI_TIMEOUT", "0.2")
    deps.reset()
    faults(emulator, allocate={"timeout_rate": 1.0, "hang_ms": 500})
    with pytest.raises(errors.UpstreamTimeoutError):
        allocate(lambda_context)
    faults(emulator, allocate={"fail_next": 1, "status": 503, "code": "no_capacity"})
    out = allocate(lambda_context)
    assert out["model"] == "gemma-270m" and out["degraded"]
    lease = deps.leases().get(rid)
    assert lease.status == "ACTIVE" and lease.pending_keys == {allocation_idempotency_key(rid, "qwen-30b")}
    monkeypatch.setenv("HOSTED_AI_TIMEOUT", "8")
    deps.reset()
    assert release(lambda_context, out)["status"] == "released"
    assert deps.leases().get(rid).status == "RELEASED" and len(allocations(emulator)) == 1  # the lost qwen GPU
    report = sweep(lambda_context, horizon_seconds=RECONCILE + 1)
    assert (report["reconciled"], report["released"], report["closed"]) == (1, 1, 1)
    assert allocations(emulator) == []


def test_hostedai_down_during_the_sweep_is_reported_and_retried_later(aws, emulator, lambda_context, allocated):
    faults(emulator, release={"error_rate": 1.0, "status": 503})
    report = sweep(lambda_context, horizon_seconds=TTL + 1)
    assert report["released"] == 0 and len(report["failed"]) == 1
    assert deps.leases().get(allocated["lease_id"]).status == "RELEASING"
    faults(emulator, release={})
    assert sweep(lambda_context, horizon_seconds=25)["examined"] == 0  # backing off: due again in 30 s
    assert sweep(lambda_context, horizon_seconds=31)["released"] == 1
    assert allocations(emulator) == []


def test_infer_renews_the_lease_and_refuses_a_gpu_the_sweep_reclaimed(aws, emulator, lambda_context, allocated):
    import time

    import boto3

    event = {**load_event("infer"), "allocation_id": allocated["allocation_id"], "execution_id": None}
    # As if Allocate had run long ago: the lease is about to expire.
    boto3.client("dynamodb").update_item(
        TableName=aws.tables["LeasesTable"].name, Key={"lease_id": {"S": allocated["lease_id"]}},
        UpdateExpression="SET lease_expires_at = :e", ExpressionAttributeValues={":e": {"N": str(int(time.time()) + 1)}})
    load_handler("infer").lambda_handler(event, lambda_context)
    assert deps.leases().get(allocated["lease_id"]).lease_expires_at >= int(time.time()) + TTL - 2
    assert sweep(lambda_context, horizon_seconds=TTL - 5)["examined"] == 0  # the renewal keeps the sweep away
    sweep(lambda_context, horizon_seconds=TTL + 1)  # as if the execution had stalled past its lease
    inferences = calls(emulator, "inference")
    with pytest.raises(errors.LeaseLostError):
        load_handler("infer").lambda_handler(event, lambda_context)
    assert calls(emulator, "inference") == inferences  # the reclaimed GPU was not used


def test_infer_skips_the_renewal_while_the_lease_has_more_than_enough_time_left(aws, emulator, lambda_context,
                                                                               allocated):
    event = {**load_event("infer"), "allocation_id": allocated["allocation_id"], "execution_id": None}
    version = deps.leases().get(allocated["lease_id"]).version
    # Fresh from Allocate: no write, the GPU is used.
    inferences = calls(emulator, "inference")
    load_handler("infer").lambda_handler({**event, "lease_expires_at": allocated["lease_expires_at"]}, lambda_context)
    assert deps.leases().get(allocated["lease_id"]).version == version
    assert calls(emulator, "inference") == inferences + 1
    # A retry long after Allocate (the input still carries Allocate's expiry): renewed.
    stale = allocated["lease_expires_at"] - TTL + 30
    load_handler("infer").lambda_handler({**event, "lease_expires_at": stale}, lambda_context)
    assert deps.leases().get(allocated["lease_id"]).version == version + 1


@pytest.fixture
def warm(aws, monkeypatch):
    monkeypatch.setenv("WARM_IDLE_SECONDS", "30")
    deps.reset()


def test_a_clean_run_keeps_its_gpu_warm_and_the_next_request_skips_the_allocate_call(warm, emulator, lambda_context):
    first = allocate(lambda_context, request_id="req-a", model="gemma-270m")
    assert first["warm"] is False
    assert release(lambda_context, first, keep_warm=True)["status"] == "kept_warm"
    assert [a["allocation_id"] for a in allocations(emulator)] == [first["allocation_id"]]
    second = allocate(lambda_context, request_id="req-b", model="gemma-270m")
    assert second["warm"] is True and second["allocation_id"] == first["allocation_id"]
    assert calls(emulator, "allocate") == 1
    assert allocate(lambda_context, request_id="req-c", model="gemma-270m")["warm"] is False  # the pool was empty
    assert allocate(lambda_context, request_id="req-d", model="qwen-30b")["warm"] is False  # per model


def test_a_release_retried_after_it_kept_the_gpu_warm_never_frees_it(warm, emulator, lambda_context):
    first = allocate(lambda_context, request_id="req-a", model="gemma-270m")
    assert release(lambda_context, first, keep_warm=True)["status"] == "kept_warm"
    second = allocate(lambda_context, request_id="req-b", model="gemma-270m")
    assert second["warm"] and second["allocation_id"] == first["allocation_id"]
    # The first Release's answer was lost (crash after it ran): its retry must
    # not free the GPU that req-b now holds.
    assert release(lambda_context, first, keep_warm=True)["status"] == "kept_warm"
    assert [a["allocation_id"] for a in allocations(emulator)] == [first["allocation_id"]]
    assert calls(emulator, "release") == 0


def test_a_drain_horizon_is_ignored_unless_the_environment_allows_it(aws, emulator, lambda_context, allocated,
                                                                      monkeypatch):
    monkeypatch.delenv("SWEEP_ALLOW_HORIZON")
    deps.reset()
    report = sweep(lambda_context, horizon_seconds=10 * TTL)  # would reclaim a GPU in use
    assert report["examined"] == 0 and len(allocations(emulator)) == 1


def test_a_failed_run_never_keeps_its_gpu_warm(warm, emulator, lambda_context):
    first = allocate(lambda_context, request_id="req-a", model="gemma-270m")
    assert release(lambda_context, first)["status"] == "released"  # ReleaseAfterFailure: no keep_warm
    assert allocations(emulator) == []


def test_the_sweep_frees_a_warm_gpu_after_its_idle_time(warm, emulator, lambda_context):
    first = allocate(lambda_context, request_id="req-a", model="gemma-270m")
    release(lambda_context, first, keep_warm=True)
    assert sweep(lambda_context, horizon_seconds=25)["released"] == 0
    report = sweep(lambda_context, horizon_seconds=31)
    assert (report["released"], report["closed"], report["reclaimed"][0]["was"]) == (1, 1, "IDLE")
    assert allocations(emulator) == []
    assert allocate(lambda_context, request_id="req-b", model="gemma-270m")["warm"] is False


def test_warm_gpus_are_not_shared_across_tenants(warm, emulator, lambda_context):
    first = allocate(lambda_context, request_id="req-a", model="gemma-270m", tenant_id="acme")
    release(lambda_context, first, keep_warm=True)
    assert allocate(lambda_context, request_id="req-b", model="gemma-270m", tenant_id="globex")["warm"] is False
    assert allocate(lambda_context, request_id="req-c", model="gemma-270m", tenant_id="acme")["warm"] is True


def test_the_sample_scheduled_event_runs_a_sweep(aws, emulator, lambda_context, allocated):
    report = load_handler("cleanup").lambda_handler(load_event("cleanup"), lambda_context)
    assert report["examined"] == 0 and report["failed"] == [] and len(allocations(emulator)) == 1  # nothing due yet
