"""LeaseRepository on moto: every transition is conditional on the state."""

import boto3
import pytest
from moto import mock_aws

from harpoon.adapters.leases import LeaseRepository
from harpoon.errors import LeaseConflictError


@pytest.fixture
def repo(aws_credentials):
    with mock_aws():
        client = boto3.client("dynamodb")
        client.create_table(TableName="leases", BillingMode="PAY_PER_REQUEST",
                            AttributeDefinitions=[{"AttributeName": "lease_id", "AttributeType": "S"}],
                            KeySchema=[{"AttributeName": "lease_id", "KeyType": "HASH"}])
        yield LeaseRepository("leases", client, clock=lambda: 1000)


def begin(repo, lease_id="r1"):
    return repo.begin(lease_id=lease_id, model="m", pool_id="p", idempotency_key="k", duration_seconds=300)


def test_lifecycle_and_version(repo):
    begin(repo)
    repo.activate("r1", allocation_id="a1", assigned_gpu="g", expires_at=1300)
    lease = repo.get("r1")
    assert (lease.status, lease.allocation_id, lease.expires_at, lease.version) == ("ACTIVE", "a1", 1300, 2)
    assert repo.mark_released("r1") is True
    assert repo.get("r1").status == "RELEASED" and repo.get("r1").version == 3
    assert repo.mark_released("r1") is False  # idempotent, no second transition


def test_a_retried_begin_takes_over_a_pending_lease_only(repo):
    begin(repo)
    begin(repo)  # the step was retried before HostedAI answered
    repo.activate("r1", allocation_id="a1", assigned_gpu="g", expires_at=1)
    repo.mark_released("r1")
    with pytest.raises(LeaseConflictError, match="RELEASED"):
        begin(repo)


def test_transitions_from_the_wrong_state_conflict(repo):
    with pytest.raises(LeaseConflictError):
        repo.activate("missing", allocation_id="a", assigned_gpu="g", expires_at=1)
    begin(repo)
    repo.mark_failed("r1", "refused")
    with pytest.raises(LeaseConflictError):
        repo.activate("r1", allocation_id="a", assigned_gpu="g", expires_at=1)
    assert repo.mark_abandoned("r1") is False
    assert repo.get("r1").status == "FAILED"


def test_release_failure_then_release(repo):
    begin(repo)
    repo.activate("r1", allocation_id="a1", assigned_gpu="g", expires_at=1)
    repo.mark_release_failed("r1", "HostedAI 500")
    repo.mark_release_failed("r1", "HostedAI 500 again")
    assert repo.get("r1").status == "RELEASE_FAILED"
    assert repo.mark_released("r1") is True


def test_abandon_only_pending(repo):
    begin(repo)
    assert repo.mark_abandoned("r1") is True
    assert repo.get("r1").status == "ABANDONED"
    assert repo.get("nope") is None


def test_a_repeated_activate_is_a_no_op_but_another_allocation_conflicts(repo):
    begin(repo)
    repo.activate("r1", allocation_id="a1", assigned_gpu="g", expires_at=1)
    repo.activate("r1", allocation_id="a1", assigned_gpu="g", expires_at=1)  # retried write
    with pytest.raises(LeaseConflictError):
        repo.activate("r1", allocation_id="a2", assigned_gpu="g", expires_at=1)


def test_begin_returns_the_active_lease_of_the_same_request(repo):
    begin(repo)
    repo.activate("r1", allocation_id="a1", assigned_gpu="g", expires_at=1300)
    again = begin(repo)
    assert (again.status, again.allocation_id) == ("ACTIVE", "a1")


def test_takeover_keeps_the_earlier_attempt_and_retarget_records_the_fallback(repo):
    first = begin(repo)
    assert (first.model, first.idempotency_key, first.attempts) == ("m", "k", frozenset({"k|m"}))
    repo.note_outcome("r1", "refused")
    repo.retarget("r1", model="small", idempotency_key="k2", reason="m: no capacity")
    again = repo.begin(lease_id="r1", model="m", pool_id="p", idempotency_key="k", duration_seconds=300)
    assert (again.model, again.idempotency_key, again.last_outcome, again.route_reason) == ("small", "k2", "refused", "m: no capacity")
    assert again.attempts == frozenset({"k|m", "k2|small"})
    repo.activate("r1", allocation_id="a", assigned_gpu="g", expires_at=1)
    with pytest.raises(LeaseConflictError):
        repo.retarget("r1", model="x", idempotency_key="k3", reason="late")


def test_note_outcome_only_on_a_pending_lease(repo):
    begin(repo)
    repo.note_outcome("r1", "refused")
    assert (repo.get("r1").status, repo.get("r1").last_outcome) == ("PENDING", "refused")
    repo.activate("r1", allocation_id="a1", assigned_gpu="g", expires_at=1)
    repo.note_outcome("r1", "unknown")  # ignored: no longer pending
    assert (repo.get("r1").status, repo.get("r1").last_outcome) == ("ACTIVE", "refused")


def test_an_unknown_outcome_is_never_overwritten_by_a_refusal(repo):
    begin(repo)
    repo.note_outcome("r1", "unknown")  # a timeout: a GPU may exist
    repo.note_outcome("r1", "refused")  # a later 429 proves nothing about the first call
    assert repo.get("r1").last_outcome == "unknown"
