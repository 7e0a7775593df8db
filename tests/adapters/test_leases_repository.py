"""LeaseRepository on moto: every transition is conditional on the state, and
pending idempotency keys are kept until their outcome is known."""

import boto3
import pytest
from moto import mock_aws

from harpoon.adapters.leases import LeaseRepository
from harpoon.errors import LeaseConflictError
from tests.fakes import dynamodb_table

REQ = {"pool_id": "p", "model": "m", "requirements": {"min_vram_mb": 1}, "duration_seconds": 300}


@pytest.fixture
def repo(aws_credentials):
    with mock_aws():
        dynamodb_table("leases", "lease_id")
        yield LeaseRepository("leases", boto3.client("dynamodb"), clock=lambda: 1000)


def begin(repo, lease_id="r1", key="k"):
    return repo.begin(lease_id=lease_id, model="m", pool_id="p", idempotency_key=key, request=REQ, duration_seconds=300)


def test_begin_records_the_key_as_pending_before_anything_is_sent(repo):
    lease = begin(repo)
    assert lease.created and lease.status == "PENDING"
    stored = repo.get("r1")
    assert stored.pending_keys == {"k"} and stored.requests == {"k": REQ} and not stored.created


def test_lifecycle_and_version(repo):
    begin(repo)
    repo.activate("r1", allocation_id="a1", assigned_gpu="g", expires_at=1300, idempotency_key="k")
    lease = repo.get("r1")
    assert (lease.status, lease.allocation_id, lease.expires_at, lease.version, lease.pending_keys) == ("ACTIVE", "a1", 1300, 2, frozenset())
    assert repo.mark_released("r1") is True
    assert repo.get("r1").status == "RELEASED"
    assert repo.mark_released("r1") is False  # idempotent, no second transition


def test_a_retried_begin_returns_the_lease_as_left(repo):
    begin(repo)
    repo.retarget("r1", model="small", idempotency_key="k2", request={**REQ, "model": "small"}, reason="m: no capacity")
    again = begin(repo)
    assert not again.created
    assert (again.model, again.idempotency_key, again.route_reason, again.pending_keys) == ("small", "k2", "m: no capacity", {"k", "k2"})
    repo.activate("r1", allocation_id="a1", assigned_gpu="g", expires_at=1, idempotency_key="k2")
    assert begin(repo).status == "ACTIVE"
    repo.mark_released("r1")
    with pytest.raises(LeaseConflictError, match="RELEASED"):
        begin(repo)


def test_keys_settle_only_when_their_outcome_is_known(repo):
    begin(repo)
    repo.settle_key("r1", "k")
    assert repo.get("r1").pending_keys == frozenset()
    repo.expect("r1", idempotency_key="k", request=REQ)  # asked again
    assert repo.get("r1").pending_keys == {"k"}


def test_a_repeated_activate_is_a_no_op_but_another_allocation_conflicts(repo):
    begin(repo)
    repo.activate("r1", allocation_id="a1", assigned_gpu="g", expires_at=1, idempotency_key="k")
    repo.activate("r1", allocation_id="a1", assigned_gpu="g", expires_at=1, idempotency_key="k")
    with pytest.raises(LeaseConflictError):
        repo.activate("r1", allocation_id="a2", assigned_gpu="g", expires_at=1, idempotency_key="k")


def test_transitions_from_the_wrong_state_are_refused(repo):
    with pytest.raises(LeaseConflictError):
        repo.activate("missing", allocation_id="a", assigned_gpu="g", expires_at=1, idempotency_key="k")
    begin(repo)
    assert repo.mark_failed("r1", "refused") is True
    with pytest.raises(LeaseConflictError):
        repo.activate("r1", allocation_id="a", assigned_gpu="g", expires_at=1, idempotency_key="k")
    with pytest.raises(LeaseConflictError):
        repo.retarget("r1", model="x", idempotency_key="k3", request=REQ, reason="late")
    assert repo.mark_abandoned("r1") is False
    assert repo.get("r1").status == "FAILED" and repo.get("r1").pending_keys == {"k"}  # kept for the cleanup


def test_release_failure_then_release(repo):
    begin(repo)
    repo.activate("r1", allocation_id="a1", assigned_gpu="g", expires_at=1, idempotency_key="k")
    repo.mark_release_failed("r1", "HostedAI 500")
    repo.mark_release_failed("r1", "HostedAI 500 again")
    assert repo.get("r1").status == "RELEASE_FAILED"
    assert repo.mark_released("r1") is True


def test_close_unresolved_needs_no_pending_key_and_an_abandoned_or_stale_lease(repo):
    begin(repo)
    assert repo.close_unresolved("r1", stale_before=999) is False  # fresh, keys pending
    repo.mark_abandoned("r1")
    assert repo.close_unresolved("r1", stale_before=999) is False  # a key still pending
    repo.settle_key("r1", "k")
    assert repo.close_unresolved("r1", stale_before=999) is True
    assert repo.get("r1").status == "RELEASED"


def test_scan_finds_every_lease_that_may_hold_a_gpu(repo):
    begin(repo, "pending")
    begin(repo, "done")
    repo.activate("done", allocation_id="a", assigned_gpu="g", expires_at=1, idempotency_key="k")
    repo.mark_released("done")
    begin(repo, "failed-with-key")
    repo.mark_failed("failed-with-key", "409 on replay")
    assert {lease.lease_id for lease in repo.scan_unsettled()} == {"pending", "failed-with-key"}


def test_a_second_execution_for_the_same_request_is_a_conflict(repo):
    repo.begin(lease_id="r1", model="m", pool_id="p", idempotency_key="k", request=REQ, duration_seconds=300,
               execution_id="exec-1")
    assert repo.begin(lease_id="r1", model="m", pool_id="p", idempotency_key="k", request=REQ, duration_seconds=300,
                      execution_id="exec-1").status == "PENDING"  # the same execution retrying its step
    with pytest.raises(LeaseConflictError, match="another execution"):
        repo.begin(lease_id="r1", model="m", pool_id="p", idempotency_key="k", request=REQ, duration_seconds=300,
                   execution_id="exec-2")
