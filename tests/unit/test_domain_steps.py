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


class FakeLeases:
    """In-memory lease ledger recording each call."""

    def __init__(self, existing: Lease | None = None, fail_activate: Exception | None = None):
        self.leases = {existing.lease_id: existing} if existing else {}
        self.events = []
        self.fail_activate = fail_activate

    def begin(self, *, lease_id, model, pool_id, idempotency_key, duration_seconds):
        self.events.append(("begin", lease_id, idempotency_key))
        lease = self.leases.get(lease_id)
        if lease is None or lease.status == "PENDING":
            lease = Lease(lease_id, "PENDING", model, pool_id, idempotency_key)
            self.leases[lease_id] = lease
        return lease

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
    def __init__(self, error=None, released=True):
        self.error, self.released, self.calls = error, released, []

    def allocate(self, **kwargs):
        self.calls.append(("allocate", kwargs))
        if self.error:
            raise self.error
        return Allocation("a-1", "gpu-0", "active", "2026-11-26T15:00:00Z")

    def release(self, allocation_id):
        self.calls.append(("release", allocation_id))
        if self.error:
            raise self.error
        return self.released


def run_allocate(hostedai, leases, model="qwen-30b"):
    return allocate(AllocateInput(request_id="req-1", model=model), leases=leases, hostedai=hostedai,
                    catalog=load_catalog(), pool_id="pool", duration_seconds=300)


def test_allocate_writes_intent_first_then_asks_for_the_model_requirements():
    leases, hostedai = FakeLeases(), FakeHostedAI()
    out = run_allocate(hostedai, leases)
    key = allocation_idempotency_key("req-1")
    assert leases.events == [("begin", "req-1", key), ("activate", "req-1", "a-1")]
    call = hostedai.calls[0][1]
    assert call["idempotency_key"] == key and len(key) <= 64
    assert call["requirements"] == {"min_tflops": 30.0, "min_vram_mb": 20480, "max_vram_mb": 20480}
    assert (out.allocation_id, out.model, out.pool_id) == ("a-1", "qwen-30b", "pool")


def test_idempotency_key_is_stable_per_request_and_differs_between_requests():
    assert allocation_idempotency_key("a") == allocation_idempotency_key("a") != allocation_idempotency_key("b")


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
        (NoCapacityError("full", status=503), "refused"),
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
    existing = Lease("req-1", "ACTIVE", "qwen-30b", "pool", allocation_idempotency_key("req-1"),
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
