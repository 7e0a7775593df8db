"""Step logic with fakes: what allocate and release do to the lease, the
breaker and HostedAI, including every way an answer can be lost."""

from __future__ import annotations

from dataclasses import replace

import pytest

from harpoon.adapters.hostedai import Allocation
from harpoon.adapters.leases import Lease, LeasePolicy
from harpoon.catalog import load_catalog
from harpoon.domain.allocate import allocate, allocation_idempotency_key
from harpoon.domain.breaker import BreakerConfig, CircuitBreaker
from harpoon.domain.release import release
from harpoon.errors import (
    CircuitOpenError,
    ConfigurationError,
    NoCapacityError,
    StepInputError,
    UpstreamAuthError,
    UpstreamConnectionError,
    UpstreamRateLimitedError,
    UpstreamRejectedError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
)
from harpoon.models import AllocateInput, AllocateOutput, ReleaseInput
from tests.fakes import FakeBreakerRepo

QWEN_KEY = allocation_idempotency_key("req-1", "qwen-30b")
GEMMA_KEY = allocation_idempotency_key("req-1", "gemma-270m")


class FakeLeases:
    """In-memory lease ledger with the repository's semantics, recording calls."""

    def __init__(self, existing: Lease | None = None, fail_activate: Exception | None = None):
        self.leases = {existing.lease_id: existing} if existing else {}
        self.events = []
        self.fail_activate = fail_activate

    def _set(self, lease_id, **changes):
        self.leases[lease_id] = replace(self.leases[lease_id], **changes)

    policy = LeasePolicy()

    def now(self):
        return 1_700_000_000

    def begin(self, *, lease_id, model, pool_id, idempotency_key, request, execution_id=None, tenant_id="default"):
        self.events.append(("begin", lease_id, idempotency_key))
        if lease_id not in self.leases:
            self.leases[lease_id] = Lease(lease_id, "PENDING", model, pool_id, idempotency_key,
                                          pending_keys=frozenset({idempotency_key}), requests={idempotency_key: request})
            return replace(self.leases[lease_id], created=True)
        return self.leases[lease_id]

    def expect(self, lease_id, *, idempotency_key, request):
        self.events.append(("expect", idempotency_key))
        self._set(lease_id, pending_keys=self.leases[lease_id].pending_keys | {idempotency_key})

    def retarget(self, lease_id, *, model, idempotency_key, request, reason):
        self.events.append(("retarget", model))
        lease = self.leases[lease_id]
        self._set(lease_id, model=model, idempotency_key=idempotency_key, route_reason=reason,
                  pending_keys=lease.pending_keys | {idempotency_key})

    def settle_key(self, lease_id, idempotency_key):
        self.events.append(("settle", idempotency_key))
        self._set(lease_id, pending_keys=self.leases[lease_id].pending_keys - {idempotency_key})

    def activate(self, lease_id, *, allocation_id, assigned_gpu, allocation_expires_at, idempotency_key):
        self.events.append(("activate", allocation_id))
        if self.fail_activate:
            raise self.fail_activate
        self._set(lease_id, status="ACTIVE", allocation_id=allocation_id,
                  pending_keys=self.leases[lease_id].pending_keys - {idempotency_key})
        return self.now() + self.policy.lease_ttl_seconds

    warm: list = []  # IDLE warm leases a test puts in the pool

    def warm_candidates(self, **kwargs):
        self.events.append(("warm_candidates", kwargs["model"]))
        return [w for w in self.warm if w.model == kwargs["model"]]

    def claim_warm(self, lease_id, warm, **kwargs):
        return None  # always lost to another claimer

    def take_over(self, lease, *, as_of):
        self.events.append(("take_over", lease.lease_id))
        self.warm = [w for w in self.warm if w.lease_id != lease.lease_id]
        return replace(lease, status="RELEASING", sweep_token="t")

    def finish(self, lease, reason):
        self.events.append(("finish", lease.lease_id))
        return True

    def mark_failed(self, lease_id, reason):
        self.events.append(("failed",))
        self._set(lease_id, status="FAILED")
        return True

    def mark_abandoned(self, lease_id):
        self.events.append(("abandoned",))
        self._set(lease_id, status="ABANDONED")
        return True

    def mark_released(self, lease_id):
        self.events.append(("released",))
        return True

    def mark_releasing(self, lease_id, reason, *, retry_after):
        self.events.append(("releasing",))
        return True

    def get(self, lease_id):
        return self.leases.get(lease_id)


class FakeHostedAI:
    def __init__(self, error=None, released=True, errors_by_model=None):
        self.error, self.released, self.calls = error, released, []
        self.errors_by_model = errors_by_model or {}

    def allocate(self, **kwargs):
        self.calls.append(("allocate", kwargs))
        error = self.errors_by_model.get(kwargs["metadata"]["model"], self.error)
        if error:
            raise error
        return Allocation("a-1", "gpu-0", "active", "2026-11-26T15:00:00Z")

    def release(self, allocation_id, request_id=None):
        self.calls.append(("release", allocation_id))
        if self.error:
            raise self.error
        return self.released

    def models_asked(self):
        return [c[1]["metadata"]["model"] for c in self.calls if c[0] == "allocate"]


def healthy_breaker():
    return CircuitBreaker(FakeBreakerRepo(), BreakerConfig(cache_seconds=0))


def open_breaker(*models):
    breaker = healthy_breaker()
    for model in models:
        for i in range(10):
            breaker.record_failure(f"pool#{model}", f"f{i}")
    return breaker


def run_allocate(hostedai, leases, model="qwen-30b", breaker=None, warm_enabled=False):
    return allocate(AllocateInput(request_id="req-1", model=model), leases=leases, hostedai=hostedai,
                    breaker=breaker or healthy_breaker(), catalog=load_catalog(), pool_id="pool", duration_seconds=300,
                    warm_enabled=warm_enabled)


def pending(leases):
    return leases.get("req-1").pending_keys


# --- allocate: the happy path and idempotency ------------------------------------


def test_allocate_records_the_key_before_asking_for_the_model_requirements():
    leases, hostedai = FakeLeases(), FakeHostedAI()
    out = run_allocate(hostedai, leases)
    assert leases.events == [("begin", "req-1", QWEN_KEY), ("activate", "a-1")]
    call = hostedai.calls[0][1]
    assert call["idempotency_key"] == QWEN_KEY and len(QWEN_KEY) <= 64
    assert call["requirements"] == {"min_tflops": 30.0, "min_vram_mb": 20480, "max_vram_mb": 20480}
    assert (out.allocation_id, out.model, out.pool_id, out.degraded) == ("a-1", "qwen-30b", "pool", False)
    assert pending(leases) == frozenset()


def test_idempotency_keys_are_stable_per_request_and_model():
    assert allocation_idempotency_key("a", "m") == allocation_idempotency_key("a", "m") != allocation_idempotency_key("b", "m")
    assert allocation_idempotency_key("a", "m") != allocation_idempotency_key("a", "n")


def test_a_retried_allocate_after_success_returns_the_lease_without_a_second_gpu():
    existing = Lease("req-1", "ACTIVE", "qwen-30b", "pool", QWEN_KEY, allocation_id="a-1", assigned_gpu="gpu-0",
                     allocation_expires_at=1_800_000_000)
    hostedai = FakeHostedAI()
    out = run_allocate(hostedai, FakeLeases(existing))
    assert (out.allocation_id, out.assigned_gpu) == ("a-1", "gpu-0") and hostedai.calls == []
    assert out.expires_at.startswith("2027-01-15")


def test_unknown_model_is_a_step_input_error_before_any_side_effect():
    leases, hostedai = FakeLeases(), FakeHostedAI()
    with pytest.raises(StepInputError):
        run_allocate(hostedai, leases, model="gpt-9")
    assert leases.events == [] and hostedai.calls == []


def test_a_failed_ledger_write_after_allocating_gives_the_gpu_back():
    leases, hostedai = FakeLeases(fail_activate=RuntimeError("DynamoDB down")), FakeHostedAI()
    with pytest.raises(RuntimeError):
        run_allocate(hostedai, leases)
    assert [c[0] for c in hostedai.calls] == ["allocate", "release"]


# --- allocate: failures and what stays pending -------------------------------------


@pytest.mark.parametrize(
    ("error", "still_pending"),
    [
        (UpstreamUnavailableError("down", status=500), True),  # may have made one
        (UpstreamTimeoutError("slow"), True),
        (UpstreamRateLimitedError("slow down", status=429), False),  # clearly refused
        (UpstreamConnectionError("refused"), False),  # never reached
    ],
)
def test_transient_failure_keeps_the_key_pending_unless_clearly_refused(error, still_pending):
    leases, breaker = FakeLeases(), healthy_breaker()
    with pytest.raises(type(error)):
        run_allocate(FakeHostedAI(error=error), leases, breaker=breaker)
    assert (QWEN_KEY in pending(leases)) is still_pending
    assert leases.get("req-1").status == "PENDING"
    assert breaker.state("pool#qwen-30b").cur_failures == 1


@pytest.mark.parametrize(("status", "still_pending"), [(400, False), (422, False), (409, True), (200, True)])
def test_permanent_refusal_fails_the_lease_and_settles_only_what_is_proven(status, still_pending):
    leases, breaker = FakeLeases(), healthy_breaker()
    with pytest.raises(UpstreamRejectedError):
        run_allocate(FakeHostedAI(error=UpstreamRejectedError("no", status=status)), leases, breaker=breaker)
    assert leases.get("req-1").status == "FAILED"
    assert (QWEN_KEY in pending(leases)) is still_pending  # 409 or an unreadable 2xx prove nothing
    assert breaker.state("pool#qwen-30b").version == 0  # a 4xx never counts


def test_auth_errors_fail_the_lease():
    leases = FakeLeases()
    with pytest.raises(UpstreamAuthError):
        run_allocate(FakeHostedAI(error=UpstreamAuthError("no", status=401)), leases)
    assert leases.get("req-1").status == "FAILED"


# --- allocate: fallback ------------------------------------------------------------


def test_open_breaker_falls_back_and_says_so():
    leases, hostedai = FakeLeases(), FakeHostedAI()
    out = run_allocate(hostedai, leases, breaker=open_breaker("qwen-30b"))
    assert (out.model, out.degraded, out.reason) == ("gemma-270m", True, "qwen-30b: circuit open")
    assert hostedai.models_asked() == ["gemma-270m"]
    assert hostedai.calls[0][1]["idempotency_key"] == GEMMA_KEY
    assert ("settle", QWEN_KEY) in leases.events  # recorded by begin, never sent
    assert ("retarget", "gemma-270m") in leases.events and pending(leases) == frozenset()


def test_no_capacity_falls_back_without_counting_as_a_breaker_failure():
    breaker = healthy_breaker()
    hostedai = FakeHostedAI(errors_by_model={"qwen-30b": NoCapacityError("full", status=503)})
    leases = FakeLeases()
    out = run_allocate(hostedai, leases, breaker=breaker)
    assert (out.model, out.degraded, out.reason) == ("gemma-270m", True, "qwen-30b: no capacity")
    assert breaker.state("pool#qwen-30b").cur_failures == 0
    assert pending(leases) == frozenset()


class FullUntilReleased(FakeHostedAI):
    """HostedAI with no room for qwen until one GPU is released."""

    def allocate(self, **kwargs):
        if kwargs["metadata"]["model"] == "qwen-30b" and not any(c[0] == "release" for c in self.calls):
            self.calls.append(("allocate", kwargs))
            raise NoCapacityError("full", status=503)
        return super().allocate(**kwargs)


def test_no_capacity_frees_an_idle_warm_gpu_and_asks_again_before_falling_back():
    leases = FakeLeases()
    leases.warm = [Lease("warm#w-1", "IDLE", "gemma-270m", "pool", allocation_id="w-1", lease_expires_at=10)]
    hostedai = FullUntilReleased()
    out = run_allocate(hostedai, leases, warm_enabled=True)
    assert (out.model, out.degraded, out.warm) == ("qwen-30b", False, False)
    assert [c[0] for c in hostedai.calls] == ["allocate", "release", "allocate"] and hostedai.calls[1][1] == "w-1"
    assert ("take_over", "warm#w-1") in leases.events and ("finish", "warm#w-1") in leases.events
    assert pending(leases) == frozenset()


def test_with_no_idle_warm_gpu_no_capacity_falls_back_as_before():
    leases = FakeLeases()
    hostedai = FullUntilReleased()
    out = run_allocate(hostedai, leases, warm_enabled=True)
    assert (out.model, out.degraded) == ("gemma-270m", True)
    assert hostedai.models_asked() == ["qwen-30b", "gemma-270m"]


def test_nothing_can_serve_no_capacity_is_retryable():
    leases = FakeLeases()
    with pytest.raises(NoCapacityError, match="qwen-30b: no capacity; gemma-270m: no capacity"):
        run_allocate(FakeHostedAI(error=NoCapacityError("full", status=503)), leases)
    assert pending(leases) == frozenset()


def test_nothing_can_serve_open_circuits_say_when_to_come_back_and_nothing_was_sent():
    leases, hostedai = FakeLeases(), FakeHostedAI()
    with pytest.raises(CircuitOpenError, match=r"retry after 30 s"):
        run_allocate(hostedai, leases, breaker=open_breaker("qwen-30b", "gemma-270m"))
    # HostedAI was never asked: no key pending, so Release settles it FAILED
    # and the cleanup has nothing to ask HostedAI about.
    assert hostedai.calls == [] and pending(leases) == frozenset()


# --- allocate: a retry after a lost answer ------------------------------------------


def lost_primary(**changes):
    return Lease("req-1", "PENDING", "qwen-30b", "pool", QWEN_KEY, pending_keys=frozenset({QWEN_KEY}), **changes)


def test_a_retry_replays_a_pending_key_even_if_its_circuit_opened():
    hostedai, leases = FakeHostedAI(), FakeLeases(lost_primary())
    out = run_allocate(hostedai, leases, breaker=open_breaker("qwen-30b"))
    assert out.model == "qwen-30b" and not out.degraded  # found (or made) under the same key: no second GPU
    assert hostedai.models_asked() == ["qwen-30b"] and pending(leases) == frozenset()


def test_a_replay_refused_keeps_the_key_pending_for_the_cleanup():
    # The replay says "no capacity": that proves nothing about the first call.
    hostedai = FakeHostedAI(errors_by_model={"qwen-30b": NoCapacityError("full", status=503)})
    leases = FakeLeases(lost_primary())
    out = run_allocate(hostedai, leases)
    assert out.model == "gemma-270m" and out.degraded
    assert pending(leases) == {QWEN_KEY}  # the ACTIVE lease still names it: the cleanup asks again


def test_a_replay_answered_429_keeps_the_key_pending():
    leases = FakeLeases(lost_primary())
    with pytest.raises(UpstreamRateLimitedError):
        run_allocate(FakeHostedAI(error=UpstreamRateLimitedError("slow", status=429)), leases)
    assert pending(leases) == {QWEN_KEY}


def test_a_replay_answered_4xx_keeps_the_key_pending_while_failing_the_lease():
    leases = FakeLeases(lost_primary())
    with pytest.raises(UpstreamRejectedError):
        run_allocate(FakeHostedAI(error=UpstreamRejectedError("no", status=422)), leases)
    assert leases.get("req-1").status == "FAILED" and pending(leases) == {QWEN_KEY}


def test_a_retry_after_a_clear_refusal_records_the_key_again_before_sending_it():
    leases = FakeLeases(Lease("req-1", "PENDING", "qwen-30b", "pool", QWEN_KEY))
    run_allocate(FakeHostedAI(), leases)
    assert leases.events[1] == ("expect", QWEN_KEY)


def test_a_retry_resumes_at_the_fallback_an_earlier_attempt_chose():
    existing = Lease("req-1", "PENDING", "gemma-270m", "pool", GEMMA_KEY, pending_keys=frozenset({GEMMA_KEY}),
                     route_reason="qwen-30b: no capacity")
    hostedai = FakeHostedAI()
    out = run_allocate(hostedai, FakeLeases(existing))
    assert (out.model, out.degraded, out.reason) == ("gemma-270m", True, "qwen-30b: no capacity")
    assert hostedai.models_asked() == ["gemma-270m"]


# --- release -------------------------------------------------------------------------


def allocation():
    return AllocateOutput(lease_id="req-1", allocation_id="a-1", assigned_gpu="g", pool_id="p", model="m", elapsed_ms=1)


def test_release_gives_the_gpu_back_and_closes_the_lease():
    leases, hostedai = FakeLeases(), FakeHostedAI(released=False)
    out = release(ReleaseInput(request_id="req-1", allocation=allocation()), leases=leases, hostedai=hostedai)
    assert out.status == "already_gone" and out.released
    assert hostedai.calls == [("release", "a-1")] and leases.events == [("released",)]


@pytest.mark.parametrize("error", [UpstreamUnavailableError("down"), ConfigurationError("secret unreadable")])
def test_any_release_failure_flags_the_lease_and_raises_for_the_retry(error):
    leases = FakeLeases()
    with pytest.raises(type(error)):
        release(ReleaseInput(request_id="req-1", allocation=allocation()), leases=leases,
                hostedai=FakeHostedAI(error=error))
    assert leases.events == [("releasing",)]


def test_release_without_allocation_abandons_a_lease_with_pending_keys():
    leases, hostedai = FakeLeases(lost_primary()), FakeHostedAI()
    out = release(ReleaseInput(request_id="req-1"), leases=leases, hostedai=hostedai)
    assert out.status == "nothing_to_release" and not out.released
    assert hostedai.calls == [] and leases.events == [("abandoned",)]


def test_release_without_allocation_fails_a_lease_with_nothing_pending():
    leases = FakeLeases(Lease("req-1", "PENDING", "m", "p", "k"))
    assert release(ReleaseInput(request_id="req-1"), leases=leases, hostedai=FakeHostedAI()).status == "nothing_to_release"
    assert leases.events == [("failed",)]


@pytest.mark.parametrize("status", [None, "FAILED", "RELEASED"])
def test_release_without_allocation_or_live_lease_does_nothing(status):
    existing = Lease("req-1", status, "m", "p", "k") if status else None
    leases, hostedai = FakeLeases(existing), FakeHostedAI()
    assert release(ReleaseInput(request_id="req-1"), leases=leases, hostedai=hostedai).status == "nothing_to_release"
    assert hostedai.calls == [] and leases.events == []


def test_release_without_allocation_releases_an_active_lease_found_in_the_ledger():
    # Allocate finished but its answer was lost: the lease knows the GPU.
    leases = FakeLeases(Lease("req-1", "ACTIVE", "m", "p", "k", allocation_id="a-9"))
    hostedai = FakeHostedAI()
    out = release(ReleaseInput(request_id="req-1"), leases=leases, hostedai=hostedai)
    assert out.status == "released" and hostedai.calls == [("release", "a-9")]
    assert leases.events == [("released",)]


def test_release_never_touches_another_executions_lease():
    # A client retried the request: a second execution must not release the first one's GPU.
    leases = FakeLeases(Lease("req-1", "ACTIVE", "m", "p", "k", allocation_id="a-9", execution_id="exec-1"))
    hostedai = FakeHostedAI()
    out = release(ReleaseInput(request_id="req-1", execution_id="exec-2"), leases=leases, hostedai=hostedai)
    assert out.status == "nothing_to_release" and hostedai.calls == [] and leases.events == []


def test_release_that_loses_a_race_with_a_straggling_allocate_releases_what_it_activated():
    class Racing(FakeLeases):
        def mark_abandoned(self, lease_id):
            # Between our read and our write, this execution's Allocate activated it.
            self._set(lease_id, status="ACTIVE", allocation_id="a-late")
            return False

    leases, hostedai = Racing(lost_primary()), FakeHostedAI()
    out = release(ReleaseInput(request_id="req-1"), leases=leases, hostedai=hostedai)
    assert out.status == "released" and hostedai.calls == [("release", "a-late")]
