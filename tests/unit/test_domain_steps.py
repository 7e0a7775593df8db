"""Step logic with fakes: what each step does to the lease and to HostedAI."""

from __future__ import annotations

import pytest

from dataclasses import replace

from harpoon.adapters.hostedai import Allocation
from harpoon.adapters.leases import Lease
from harpoon.catalog import load_catalog
from harpoon.domain.allocate import allocate, allocation_idempotency_key
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
from harpoon.domain.breaker import BreakerConfig, CircuitBreaker
from harpoon.models import AllocateInput, AllocateOutput, ReleaseInput
from tests.fakes import FakeBreakerRepo


class FakeLeases:
    """In-memory lease ledger recording each call."""

    def __init__(self, existing: Lease | None = None, fail_activate: Exception | None = None):
        self.leases = {existing.lease_id: existing} if existing else {}
        self.events = []
        self.fail_activate = fail_activate

    def begin(self, *, lease_id, model, pool_id, idempotency_key, duration_seconds):
        self.events.append(("begin", lease_id, idempotency_key))
        lease = self.leases.get(lease_id)
        if lease is None:
            lease = Lease(lease_id, "PENDING", model, pool_id, idempotency_key)
            self.leases[lease_id] = lease
        return lease

    def retarget(self, lease_id, *, model, idempotency_key, reason):
        self.events.append(("retarget", lease_id, model))
        self._set(lease_id, model=model, idempotency_key=idempotency_key, route_reason=reason)

    def _set(self, lease_id, **changes):
        self.leases[lease_id] = replace(self.leases[lease_id], **changes)

    def activate(self, lease_id, **kwargs):
        self.events.append(("activate", lease_id, kwargs["allocation_id"]))
        if self.fail_activate:
            raise self.fail_activate
        self._set(lease_id, status="ACTIVE", allocation_id=kwargs["allocation_id"])

    def mark_failed(self, lease_id, reason):
        self.events.append(("failed", lease_id))

    def note_outcome(self, lease_id, outcome):
        self.events.append(("outcome", lease_id, outcome))
        if self.leases[lease_id].last_outcome != "unknown":  # sticky, as in DynamoDB
            self._set(lease_id, last_outcome=outcome)

    def mark_abandoned(self, lease_id):
        self.events.append(("abandoned", lease_id))
        return True

    def mark_released(self, lease_id):
        self.events.append(("released", lease_id))
        return True

    def mark_release_failed(self, lease_id, reason):
        self.events.append(("release_failed", lease_id))

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

    def release(self, allocation_id):
        self.calls.append(("release", allocation_id))
        if self.error:
            raise self.error
        return self.released


def run_allocate(hostedai, leases, model="qwen-30b", breaker=None):
    breaker = breaker or CircuitBreaker(FakeBreakerRepo(), BreakerConfig(cache_seconds=0))
    return allocate(AllocateInput(request_id="req-1", model=model), leases=leases, hostedai=hostedai, breaker=breaker,
                    catalog=load_catalog(), pool_id="pool", duration_seconds=300)


def test_allocate_writes_intent_first_then_asks_for_the_model_requirements():
    leases, hostedai = FakeLeases(), FakeHostedAI()
    out = run_allocate(hostedai, leases)
    key = allocation_idempotency_key("req-1", "qwen-30b")
    assert leases.events == [("begin", "req-1", key), ("activate", "req-1", "a-1")]
    call = hostedai.calls[0][1]
    assert call["idempotency_key"] == key and len(key) <= 64
    assert call["requirements"] == {"min_tflops": 30.0, "min_vram_mb": 20480, "max_vram_mb": 20480}
    assert (out.allocation_id, out.model, out.pool_id) == ("a-1", "qwen-30b", "pool")


def test_idempotency_key_is_stable_per_request_and_differs_between_requests():
    assert allocation_idempotency_key("a", "m") == allocation_idempotency_key("a", "m") != allocation_idempotency_key("b", "m")
    assert allocation_idempotency_key("a", "m") != allocation_idempotency_key("a", "n")


def test_permanent_refusal_marks_the_lease_failed():
    leases = FakeLeases()
    with pytest.raises(UpstreamAuthError):
        run_allocate(FakeHostedAI(error=UpstreamAuthError("no", status=401)), leases)
    assert leases.events[-1] == ("failed", "req-1")


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        (UpstreamUnavailableError("down", status=500), "unknown"),
        (UpstreamTimeoutError("slow"), "unknown"),
        (UpstreamRateLimitedError("slow down", status=429), "refused"),
        (UpstreamConnectionError("refused"), "refused"),
    ],
)
def test_transient_failure_leaves_the_lease_pending_and_notes_the_outcome(error, outcome):
    leases = FakeLeases()
    with pytest.raises(type(error)):
        run_allocate(FakeHostedAI(error=error), leases)
    assert leases.events[1:] == [("outcome", "req-1", outcome)]
    assert leases.get("req-1").status == "PENDING"


def test_release_settles_a_pending_lease_that_was_always_refused_as_failed():
    leases = FakeLeases(Lease("req-1", "PENDING", "m", "p", "k", last_outcome="refused"))
    out = release(ReleaseInput(request_id="req-1"), leases=leases, hostedai=FakeHostedAI())
    assert out.status == "nothing_to_release" and leases.events == [("failed", "req-1")]


def test_unknown_model_is_a_step_input_error_before_any_side_effect():
    leases, hostedai = FakeLeases(), FakeHostedAI()
    with pytest.raises(StepInputError):
        run_allocate(hostedai, leases, model="gpt-9")
    assert leases.events == [] and hostedai.calls == []


def allocation():
    return AllocateOutput(lease_id="req-1", allocation_id="a-1", assigned_gpu="g", pool_id="p", model="m", elapsed_ms=1)


def test_release_gives_the_gpu_back_and_closes_the_lease():
    leases, hostedai = FakeLeases(), FakeHostedAI(released=False)
    out = release(ReleaseInput(request_id="req-1", allocation=allocation()), leases=leases, hostedai=hostedai)
    assert out.status == "already_gone" and out.released
    assert hostedai.calls == [("release", "a-1")] and leases.events == [("released", "req-1")]


def test_release_failure_flags_the_lease_and_raises_for_the_retry():
    leases = FakeLeases()
    with pytest.raises(UpstreamUnavailableError):
        release(ReleaseInput(request_id="req-1", allocation=allocation()), leases=leases,
                hostedai=FakeHostedAI(error=UpstreamUnavailableError("down")))
    assert leases.events == [("release_failed", "req-1")]


def test_release_without_allocation_abandons_a_pending_intent_without_calling_hostedai():
    leases, hostedai = FakeLeases(Lease("req-1", "PENDING", "m", "p", "k")), FakeHostedAI()
    out = release(ReleaseInput(request_id="req-1", allocation=None), leases=leases, hostedai=hostedai)
    assert out.status == "nothing_to_release" and not out.released
    assert hostedai.calls == [] and leases.events == [("abandoned", "req-1")]


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
    assert leases.events == [("released", "req-1")]


def test_any_release_failure_flags_the_lease():
    leases = FakeLeases()
    with pytest.raises(ConfigurationError):
        release(ReleaseInput(request_id="req-1", allocation=allocation()), leases=leases,
                hostedai=FakeHostedAI(error=ConfigurationError("secret unreadable")))
    assert leases.events == [("release_failed", "req-1")]


def test_a_retried_allocate_after_success_returns_the_lease_without_a_second_gpu():
    existing = Lease("req-1", "ACTIVE", "qwen-30b", "pool", allocation_idempotency_key("req-1", "qwen-30b"),
                     allocation_id="a-1", assigned_gpu="gpu-0", expires_at=1_800_000_000)
    hostedai = FakeHostedAI()
    out = run_allocate(hostedai, FakeLeases(existing))
    assert (out.allocation_id, out.assigned_gpu) == ("a-1", "gpu-0") and hostedai.calls == []
    assert out.expires_at.startswith("2027-01-15")


def test_a_failed_ledger_write_after_allocating_gives_the_gpu_back():
    leases, hostedai = FakeLeases(fail_activate=RuntimeError("DynamoDB down")), FakeHostedAI()
    with pytest.raises(RuntimeError):
        run_allocate(hostedai, leases)
    assert [c[0] for c in hostedai.calls] == ["allocate", "release"]


def test_an_unparseable_success_leaves_the_outcome_unknown_not_failed():
    leases = FakeLeases()
    with pytest.raises(UpstreamRejectedError):
        run_allocate(FakeHostedAI(error=UpstreamRejectedError("garbled", status=200)), leases)
    assert [e[0] for e in leases.events] == ["begin"]


def open_breaker(model):
    breaker = CircuitBreaker(FakeBreakerRepo(), BreakerConfig(cache_seconds=0))
    for i in range(5):
        breaker.record_failure(f"pool#{model}", f"f{i}")
    return breaker


def test_open_breaker_falls_back_and_says_so():
    leases, hostedai = FakeLeases(), FakeHostedAI()
    out = run_allocate(hostedai, leases, breaker=open_breaker("qwen-30b"))
    assert (out.model, out.degraded, out.reason) == ("gemma-270m", True, "qwen-30b: circuit open")
    assert [c[1]["metadata"]["model"] for c in hostedai.calls] == ["gemma-270m"]
    assert hostedai.calls[0][1]["idempotency_key"] == allocation_idempotency_key("req-1", "gemma-270m")
    assert ("retarget", "req-1", "gemma-270m") in leases.events


def test_no_capacity_falls_back_without_counting_as_a_breaker_failure():
    breaker = CircuitBreaker(FakeBreakerRepo(), BreakerConfig(cache_seconds=0))
    hostedai = FakeHostedAI(errors_by_model={"qwen-30b": NoCapacityError("full", status=503)})
    out = run_allocate(hostedai, FakeLeases(), breaker=breaker)
    assert (out.model, out.degraded, out.reason) == ("gemma-270m", True, "qwen-30b: no capacity")
    assert breaker.state("pool#qwen-30b").cur_failures == 0


def test_nothing_can_serve_no_capacity_is_retryable():
    hostedai = FakeHostedAI(error=NoCapacityError("full", status=503))
    with pytest.raises(NoCapacityError, match="qwen-30b: no capacity; gemma-270m: no capacity"):
        run_allocate(hostedai, FakeLeases())


def test_nothing_can_serve_open_circuits_say_when_to_come_back():
    breaker = open_breaker("qwen-30b")
    for i in range(5):
        breaker.record_failure("pool#gemma-270m", f"g{i}")
    leases, hostedai = FakeLeases(), FakeHostedAI()
    with pytest.raises(CircuitOpenError, match=r"retry after 30 s"):
        run_allocate(hostedai, leases, breaker=breaker)
    # HostedAI was never asked: Release will settle the lease as FAILED, and
    # the cleanup has nothing to reconcile.
    assert hostedai.calls == [] and leases.get("req-1").last_outcome == "refused"


def test_transient_failure_counts_against_the_breaker():
    breaker = CircuitBreaker(FakeBreakerRepo(), BreakerConfig(cache_seconds=0))
    with pytest.raises(UpstreamUnavailableError):
        run_allocate(FakeHostedAI(error=UpstreamUnavailableError("down", status=500)), FakeLeases(), breaker=breaker)
    assert breaker.state("pool#qwen-30b").cur_failures == 1


def test_a_client_4xx_never_counts_against_the_breaker():
    breaker = CircuitBreaker(FakeBreakerRepo(), BreakerConfig(cache_seconds=0))
    with pytest.raises(UpstreamRejectedError):
        run_allocate(FakeHostedAI(error=UpstreamRejectedError("bad", status=422)), FakeLeases(), breaker=breaker)
    assert breaker.state("pool#qwen-30b").version == 0  # never written


def test_a_retry_after_an_unknown_outcome_asks_the_same_model_again_even_if_its_circuit_opened():
    existing = Lease("req-1", "PENDING", "qwen-30b", "pool", allocation_idempotency_key("req-1", "qwen-30b"),
                     last_outcome="unknown")
    hostedai = FakeHostedAI()
    out = run_allocate(hostedai, FakeLeases(existing), breaker=open_breaker("qwen-30b"))
    assert out.model == "qwen-30b" and not out.degraded  # found (or made) under the same key: no second GPU
    assert [c[1]["metadata"]["model"] for c in hostedai.calls] == ["qwen-30b"]


def test_a_retry_resumes_at_the_fallback_an_earlier_attempt_chose():
    existing = Lease("req-1", "PENDING", "gemma-270m", "pool", allocation_idempotency_key("req-1", "gemma-270m"),
                     last_outcome="unknown", route_reason="qwen-30b: no capacity")
    hostedai = FakeHostedAI()
    out = run_allocate(hostedai, FakeLeases(existing))
    assert (out.model, out.degraded, out.reason) == ("gemma-270m", True, "qwen-30b: no capacity")
    assert [c[1]["metadata"]["model"] for c in hostedai.calls] == ["gemma-270m"]
