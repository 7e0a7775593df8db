"""Step logic with fakes: what each step does to the lease and to HostedAI."""

from __future__ import annotations

import pytest

from harpoon.adapters.hostedai import Allocation
from harpoon.catalog import load_catalog
from harpoon.domain.allocate import allocate, allocation_idempotency_key
from harpoon.domain.release import release
from harpoon.errors import NoCapacityError, StepInputError, UpstreamAuthError, UpstreamUnavailableError
from harpoon.models import AllocateInput, AllocateOutput, ReleaseInput


class FakeLeases:
    def __init__(self):
        self.events = []

    def begin(self, **kwargs):
        self.events.append(("begin", kwargs["lease_id"], kwargs["idempotency_key"]))

    def activate(self, lease_id, **kwargs):
        self.events.append(("activate", lease_id, kwargs["allocation_id"]))

    def mark_failed(self, lease_id, reason):
        self.events.append(("failed", lease_id))

    def mark_abandoned(self, lease_id):
        self.events.append(("abandoned", lease_id))
        return True

    def mark_released(self, lease_id):
        self.events.append(("released", lease_id))
        return True

    def mark_release_failed(self, lease_id, reason):
        self.events.append(("release_failed", lease_id))


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


@pytest.mark.parametrize("error", [UpstreamUnavailableError("down", status=500), NoCapacityError("full", status=503)])
def test_transient_failure_leaves_the_lease_pending_for_the_retry(error):
    leases = FakeLeases()
    with pytest.raises(type(error)):
        run_allocate(FakeHostedAI(error=error), leases)
    assert [e[0] for e in leases.events] == ["begin"]


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


def test_release_without_allocation_abandons_the_intent_without_calling_hostedai():
    leases, hostedai = FakeLeases(), FakeHostedAI()
    out = release(ReleaseInput(request_id="req-1", allocation=None), leases=leases, hostedai=hostedai)
    assert out.status == "nothing_to_release" and not out.released
    assert hostedai.calls == [] and leases.events == [("abandoned", "req-1")]
