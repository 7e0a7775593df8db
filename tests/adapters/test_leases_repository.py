"""LeaseRepository on moto, with the table exactly as the template declares it:
every transition is conditional on the state (the sweep's also on the
version), pending keys are kept until their outcome is known, and only what
is due is in reach of the sweep's index query."""

import boto3
import pytest
from moto import mock_aws

from harpoon.adapters.leases import EXPIRY_SHARDS, LeasePolicy, LeaseRepository
from harpoon.errors import LeaseConflictError, LeaseLostError, RequestAlreadyRunError, RequestInFlightError
from local.ddb_atomic import serialise_writes
from tests.fakes import Clock, at_once, template_table

REQ = {"pool_id": "p", "model": "m", "requirements": {"min_vram_mb": 1}, "duration_seconds": 300}
POLICY = LeasePolicy(lease_ttl_seconds=120, reconcile_after_seconds=60, retention_seconds=1000, sweep_retry_seconds=60)


@pytest.fixture
def clock():
    return Clock(1000)


@pytest.fixture
def repo(aws_credentials, clock):
    serialise_writes()
    with mock_aws():
        template_table("LeasesTable", "leases")
        yield LeaseRepository("leases", boto3.client("dynamodb"), clock=clock, policy=POLICY)


def begin(repo, lease_id="r1", key="k", execution_id=None):
    return repo.begin(lease_id=lease_id, model="m", pool_id="p", idempotency_key=key, request=REQ,
                      execution_id=execution_id)


def raw(lease_id):
    return boto3.client("dynamodb").get_item(TableName="leases", Key={"lease_id": {"S": lease_id}})["Item"]


def due_now(repo, now):
    consumed = []
    leases = [lease for shard in range(EXPIRY_SHARDS) for lease in repo.due(now, shard=str(shard), consumed=consumed)]
    return leases, sum(read for read, _ in consumed)


def test_begin_records_the_key_as_pending_and_is_due_once_its_answer_cannot_be_in_flight(repo):
    lease = begin(repo)
    assert lease.created and lease.status == "PENDING"
    stored = repo.get("r1")
    assert stored.pending_keys == {"k"} and stored.requests == {"k": REQ} and not stored.created
    assert stored.lease_expires_at == 1000 + 60 and "expiry_shard" in raw("r1")


def test_a_settled_lease_leaves_the_expiry_index_and_gets_a_purge_time(repo, clock):
    begin(repo)
    expires = repo.activate("r1", allocation_id="a1", assigned_gpu="g", allocation_expires_at=1900, idempotency_key="k")
    lease = repo.get("r1")
    assert (lease.status, lease.allocation_id, lease.allocation_expires_at, lease.version, lease.pending_keys) == (
        "ACTIVE", "a1", 1900, 2, frozenset())
    assert expires == lease.lease_expires_at == 1000 + 120
    assert repo.mark_released("r1") is True
    item = raw("r1")
    assert item["status"]["S"] == "RELEASED" and "expiry_shard" not in item and "lease_expires_at" not in item
    assert int(item["purge_at"]["N"]) == 1000 + 1000  # TTL collects only what is settled
    assert repo.mark_released("r1") is False  # idempotent, no second transition


def test_a_lease_released_with_a_key_still_pending_stays_due_for_the_sweep(repo, clock):
    begin(repo)
    clock.now = 1010
    repo.retarget("r1", model="small", idempotency_key="k2", request={**REQ, "model": "small"}, reason="m: timeout")
    repo.activate("r1", allocation_id="a1", assigned_gpu="g", allocation_expires_at=1900, idempotency_key="k2")
    repo.mark_released("r1")
    item = raw("r1")
    assert item["status"]["S"] == "RELEASED" and "purge_at" not in item
    assert int(item["lease_expires_at"]["N"]) == 1010 + 60  # the last call's answer may be in flight until then


def test_a_retried_begin_renews_the_lease_as_left(repo, clock):
    begin(repo)
    repo.retarget("r1", model="small", idempotency_key="k2", request={**REQ, "model": "small"}, reason="m: no capacity")
    clock.now = 1030
    again = begin(repo)
    assert not again.created
    assert (again.model, again.idempotency_key, again.route_reason, again.pending_keys) == (
        "small", "k2", "m: no capacity", {"k", "k2"})
    assert repo.get("r1").lease_expires_at == 1030 + 60
    repo.activate("r1", allocation_id="a1", assigned_gpu="g", allocation_expires_at=1900, idempotency_key="k2")
    assert begin(repo).status == "ACTIVE"
    repo.mark_released("r1")
    with pytest.raises(RequestAlreadyRunError, match="RELEASED"):
        begin(repo)


def test_another_execution_cannot_take_a_live_lease(repo):
    begin(repo, execution_id="e1")
    with pytest.raises(RequestInFlightError):
        begin(repo, execution_id="e2")


def test_activate_is_idempotent_for_the_same_allocation_only(repo):
    begin(repo)
    repo.activate("r1", allocation_id="a1", assigned_gpu="g", allocation_expires_at=1, idempotency_key="k")
    repo.activate("r1", allocation_id="a1", assigned_gpu="g", allocation_expires_at=1, idempotency_key="k")
    with pytest.raises(LeaseConflictError):
        repo.activate("r1", allocation_id="a2", assigned_gpu="g", allocation_expires_at=1, idempotency_key="k")
    with pytest.raises(LeaseConflictError):
        repo.activate("missing", allocation_id="a", assigned_gpu="g", allocation_expires_at=1, idempotency_key="k")


def test_the_sweep_reads_only_what_is_due(repo, clock):
    for i in range(40):
        begin(repo, lease_id=f"live-{i}")
        repo.activate(f"live-{i}", allocation_id=f"a{i}", assigned_gpu="g", allocation_expires_at=9999, idempotency_key="k")
    for i in range(10):
        begin(repo, lease_id=f"done-{i}")
        repo.activate(f"done-{i}", allocation_id=f"d{i}", assigned_gpu="g", allocation_expires_at=9999, idempotency_key="k")
        repo.mark_released(f"done-{i}")
    clock.now = 2000
    for i in range(3):  # written later: not due at 1500
        begin(repo, lease_id=f"late-{i}")
        repo.activate(f"late-{i}", allocation_id=f"l{i}", assigned_gpu="g", allocation_expires_at=9999, idempotency_key="k")
    due, read = due_now(repo, 1000 + 120)
    assert {lease.lease_id for lease in due} == {f"live-{i}" for i in range(40)} and read == 40
    assert due_now(repo, 1119) == ([], 0)


def test_the_sweeps_take_over_is_fenced_on_the_version_it_read(repo, clock):
    begin(repo, execution_id="e1")
    repo.activate("r1", allocation_id="a1", assigned_gpu="g", allocation_expires_at=9999, idempotency_key="k")
    clock.now = 1121
    [stale] = due_now(repo, clock.now)[0]
    repo.renew("r1", execution_id="e1")  # the execution renewed it after the sweep read it
    assert repo.take_over(stale, as_of=clock.now) is None
    assert repo.get("r1").status == "ACTIVE"
    clock.now = 1121 + 121
    [due] = due_now(repo, clock.now)[0]
    taken = repo.take_over(due, as_of=clock.now)
    assert taken.status == "RELEASING" and repo.take_over(due, as_of=clock.now) is None  # a second sweep loses
    with pytest.raises(LeaseLostError):
        repo.renew("r1", execution_id="e1")  # the execution must not use the GPU any more
    assert repo.finish(taken, "reclaimed") is True
    item = raw("r1")
    assert item["status"]["S"] == "RELEASED" and item["reclaimed_by"]["S"] == "cleanup" and "expiry_shard" not in item


def test_a_pending_lease_taken_over_is_abandoned_and_the_execution_cannot_resume_it(repo, clock):
    begin(repo, execution_id="e1")
    clock.now = 1061
    [due] = due_now(repo, clock.now)[0]
    assert repo.take_over(due, as_of=clock.now).status == "ABANDONED"
    with pytest.raises(RequestAlreadyRunError):
        begin(repo, execution_id="e1")


def test_renewal_belongs_to_the_owning_execution(repo):
    begin(repo, execution_id="e1")
    repo.activate("r1", allocation_id="a1", assigned_gpu="g", allocation_expires_at=9999, idempotency_key="k")
    with pytest.raises(LeaseLostError):
        repo.renew("r1", execution_id="e2")


def _warm(repo, n, *, expires=5000, idle_until=1200, model="m"):
    for i in range(n):
        begin(repo, lease_id=f"src-{model}-{i}")
        repo.activate(f"src-{model}-{i}", allocation_id=f"w-{model}-{i}", assigned_gpu="g",
                      allocation_expires_at=expires, idempotency_key="k")
        assert repo.return_to_warm(f"src-{model}-{i}", execution_id=None, tenant_id="t", pool_id="p", model=model,
                                   allocation_id=f"w-{model}-{i}", assigned_gpu="g", allocation_expires_at=expires,
                                   idle_until=idle_until)


def test_returning_to_warm_settles_the_request_lease_and_adds_an_idle_one(repo):
    _warm(repo, 1)
    assert raw("src-m-0")["status"]["S"] == "RELEASED" and raw("src-m-0")["returned_warm"]["BOOL"] is True
    [warm] = repo.warm_candidates(tenant_id="t", pool_id="p", model="m", usable_until=1120)
    assert (warm.status, warm.allocation_id, warm.lease_expires_at) == ("IDLE", "w-m-0", 1200)
    assert repo.warm_candidates(tenant_id="other", pool_id="p", model="m", usable_until=1120) == []
    assert repo.warm_candidates(tenant_id="t", pool_id="p", model="m", usable_until=5001) == []  # dies too soon


def test_a_warm_claim_moves_the_allocation_atomically_and_only_once(repo):
    _warm(repo, 1)
    [warm] = repo.warm_candidates(tenant_id="t", pool_id="p", model="m", usable_until=1120)
    begin(repo, lease_id="r1")
    begin(repo, lease_id="r2")
    assert repo.claim_warm("r1", warm, idempotency_key="k", route_reason=None) == 1000 + 120
    assert repo.claim_warm("r2", warm, idempotency_key="k", route_reason=None) is None
    r1, r2 = repo.get("r1"), repo.get("r2")
    assert (r1.status, r1.allocation_id, r1.warm, r1.pending_keys) == ("ACTIVE", "w-m-0", True, frozenset())
    assert r2.status == "PENDING" and repo.get("warm#w-m-0") is None


def test_fifty_concurrent_allocates_never_share_a_warm_allocation(repo):
    """Through allocate() itself (index read, shuffle, transactional claim):
    20 warm GPUs, 50 requests at once."""
    from harpoon.adapters.hostedai import Allocation
    from harpoon.catalog import load_catalog
    from harpoon.domain.allocate import allocate
    from harpoon.domain.breaker import BreakerConfig, CircuitBreaker
    from harpoon.models import AllocateInput
    from tests.fakes import FakeBreakerRepo

    _warm(repo, 20, model="gemma-270m", expires=10_000)

    class ColdHostedAI:
        def allocate(self, **kwargs):
            return Allocation(f"cold-{kwargs['metadata']['request_id']}", "g", "active", None)

    breaker = CircuitBreaker(FakeBreakerRepo(), BreakerConfig(cache_seconds=0))

    def run(i):
        return allocate(AllocateInput(request_id=f"c{i}", model="gemma-270m", tenant_id="t"), leases=repo,
                        hostedai=ColdHostedAI(), breaker=breaker, catalog=load_catalog(), pool_id="p",
                        duration_seconds=900, warm_enabled=True)

    outs = at_once(50, run)
    warm = [o.allocation_id for o in outs if o.warm]
    assert len(outs) == 50 and len(warm) == len(set(warm)) > 0  # no warm GPU went to two requests
    left = [w.allocation_id for w in repo.warm_candidates(tenant_id="t", pool_id="p", model="gemma-270m",
                                                          usable_until=0, limit=50)]
    assert sorted(warm + left) == sorted(f"w-gemma-270m-{i}" for i in range(20))  # none lost, none duplicated
    assert all(repo.get(o.lease_id).allocation_id == o.allocation_id for o in outs)  # each lease holds what it got


def test_an_idle_warm_lease_is_due_at_the_end_of_its_idle_time_and_the_sweep_deletes_it(repo, clock):
    _warm(repo, 1, idle_until=1200)
    assert due_now(repo, 1199)[0] == []
    [due] = due_now(repo, 1200)[0]
    taken = repo.take_over(due, as_of=1200)
    assert taken.status == "RELEASING" and repo.warm_candidates(tenant_id="t", pool_id="p", model="m", usable_until=0) == []
    assert repo.finish(taken, "idle") is True and repo.get("warm#w-m-0") is None


def test_a_warm_lease_claimed_after_the_sweep_read_it_is_left_alone(repo):
    _warm(repo, 1, idle_until=1200)
    [due] = due_now(repo, 1200)[0]
    [warm] = repo.warm_candidates(tenant_id="t", pool_id="p", model="m", usable_until=1120)
    begin(repo, lease_id="r1")
    assert repo.claim_warm("r1", warm, idempotency_key="k", route_reason=None)
    assert repo.take_over(due, as_of=1200) is None


def test_a_warm_lease_written_again_for_the_same_gpu_is_not_taken_on_an_old_read(repo, clock):
    # Read as due, then claimed and returned again (a new warm lease, version 1
    # again, idle for longer): the sweep's stale read must not free it early.
    _warm(repo, 1, idle_until=1200)
    [due] = due_now(repo, 1200)[0]
    [warm] = repo.warm_candidates(tenant_id="t", pool_id="p", model="m", usable_until=1120)
    begin(repo, lease_id="r1")
    repo.claim_warm("r1", warm, idempotency_key="k", route_reason=None)
    assert repo.return_to_warm("r1", execution_id=None, tenant_id="t", pool_id="p", model="m", allocation_id="w-m-0",
                               assigned_gpu="g", allocation_expires_at=5000, idle_until=1500)
    assert repo.get("warm#w-m-0").version == due.version
    assert repo.take_over(due, as_of=1200) is None and repo.get("warm#w-m-0").status == "IDLE"


def test_a_late_renewal_keeps_the_sweep_away_until_the_new_expiry(repo, clock):
    begin(repo, execution_id="e1")
    repo.activate("r1", allocation_id="a1", assigned_gpu="g", allocation_expires_at=9999, idempotency_key="k")
    clock.now = 1110  # a long inference starts near the end of the lease
    assert repo.renew("r1", execution_id="e1") == 1110 + 120
    assert due_now(repo, 1121)[0] == [] and due_now(repo, 1229)[0] == []
    [due] = due_now(repo, 1230)[0]
    assert repo.take_over(due, as_of=1230).status == "RELEASING"


def test_keys_settle_only_when_their_outcome_is_known(repo, clock):
    begin(repo)
    repo.settle_key("r1", "k")
    assert repo.get("r1").pending_keys == frozenset()
    repo.expect("r1", idempotency_key="k", request=REQ)  # asked again
    assert repo.get("r1").pending_keys == {"k"}
    clock.now = 1030
    assert repo.mark_abandoned("r1") is True
    assert repo.get("r1").lease_expires_at == 1000 + 60  # unchanged: the answer may still be in flight
    with pytest.raises(LeaseConflictError):
        repo.expect("r1", idempotency_key="k", request=REQ)  # no longer PENDING


def test_a_failed_release_leaves_the_lease_releasing_and_due_soon(repo, clock):
    begin(repo)
    repo.activate("r1", allocation_id="a1", assigned_gpu="g", allocation_expires_at=9999, idempotency_key="k")
    assert repo.mark_releasing("r1", "HostedAI 503", retry_after=30) is True
    lease = repo.get("r1")
    assert (lease.status, lease.lease_expires_at) == ("RELEASING", 1030)
    assert repo.mark_released("r1") is True


def test_an_idle_warm_gpu_can_be_evicted_before_its_idle_time_but_not_once_claimed(repo):
    _warm(repo, 2, idle_until=1200)
    first, second = sorted(repo.warm_candidates(tenant_id="t", pool_id="p", model="m", usable_until=0),
                           key=lambda w: w.lease_id)
    taken = repo.take_over(first, as_of=first.lease_expires_at)  # what allocate does to free capacity
    assert taken.status == "RELEASING" and repo.finish(taken, "evicted") and repo.get(first.lease_id) is None
    begin(repo, lease_id="r1")
    assert repo.claim_warm("r1", second, idempotency_key="k", route_reason=None)
    assert repo.take_over(second, as_of=second.lease_expires_at) is None
