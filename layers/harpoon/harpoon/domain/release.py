"""Release step: give the vGPU back, whatever happened before.

Runs on the success path and on every failure path after Allocate. Idempotent:
HostedAI's 404 means already gone, and the lease moves to RELEASED only from a
state that held the GPU.

After a clean run (`keep_warm`, set only by the success path) the allocation
may instead go back to the warm pool for the next request of the same
(tenant, pool, model), for at most `warm_idle_seconds` and only while it
lives long enough to serve a whole request; the sweep frees it after that.
"""

from __future__ import annotations

import time

from harpoon.adapters.hostedai import HostedAIClient
from harpoon.adapters.leases import ACTIVE, PENDING, RELEASING, LeaseRepository, same_execution
from harpoon.domain.timing import epoch, ms_since
from harpoon.errors import StepInputError
from harpoon.models import AllocateOutput, ReleaseInput, ReleaseOutput

# A failed release is due for the sweep at once: whichever of the step's own
# retry and the sweep comes first releases it (the other hears 404, already gone).
RELEASE_RETRY_SECONDS = 0


def release(inp: ReleaseInput, *, leases: LeaseRepository, hostedai: HostedAIClient,
            warm_idle_seconds: int = 0) -> ReleaseOutput:
    started = time.perf_counter()
    if inp.allocation is not None and inp.allocation.tenant_id != inp.tenant_id:
        # Never the case on the workflow's own paths: a step is never asked
        # to give back another tenant's GPU.
        raise StepInputError(f"allocation {inp.allocation.allocation_id} is not tenant {inp.tenant_id}'s")
    if inp.allocation is not None:
        lease_id, allocation_id = inp.allocation.lease_id, inp.allocation.allocation_id
        if inp.keep_warm and warm_idle_seconds > 0:
            if _to_warm_pool(inp, leases, warm_idle_seconds):
                return ReleaseOutput(status="kept_warm", released=False, elapsed_ms=ms_since(started))
            # Not handed over now. If an earlier attempt of this step did hand
            # it over (its answer was lost), the GPU is the warm pool's, maybe
            # already another request's: never release it from here.
            lease = leases.get(lease_id)
            if lease is not None and lease.returned_warm and lease.allocation_id == allocation_id:
                return ReleaseOutput(status="kept_warm", released=False, elapsed_ms=ms_since(started))
            if lease is not None and (lease.status not in (ACTIVE, RELEASING) or lease.allocation_id != allocation_id):
                return ReleaseOutput(status="already_gone", released=True, elapsed_ms=ms_since(started))
    else:
        # Allocate's output never reached the workflow. Its lease says whether
        # a GPU exists anyway (e.g. the step finished but its answer was lost).
        lease = leases.get(inp.request_id)
        if lease is not None and (not same_execution(lease.execution_id, inp.execution_id)
                                  or lease.tenant_id != inp.tenant_id):
            # Another execution's lease (a client retried the request), or
            # another tenant's: not ours to touch.
            return ReleaseOutput(status="nothing_to_release", released=False, elapsed_ms=ms_since(started))
        if lease is not None and lease.status == PENDING:
            settled = (
                leases.mark_abandoned(inp.request_id)  # an answer may be lost: the sweep asks again
                if lease.pending_keys
                else leases.mark_failed(inp.request_id, "no allocation was made")
            )
            if not settled:
                # It moved on since we read it: a straggling Allocate of this
                # execution may have just activated it. Look again.
                lease = leases.get(inp.request_id)
        if lease is None or lease.status not in (ACTIVE, RELEASING) or not lease.allocation_id:
            return ReleaseOutput(status="nothing_to_release", released=False, elapsed_ms=ms_since(started))
        lease_id, allocation_id = lease.lease_id, lease.allocation_id
    try:
        released_now = hostedai.release(allocation_id, request_id=inp.request_id)
    except Exception as exc:
        # Whatever failed (HostedAI, the secret, a timeout), keep the lease
        # visible for reclaim, then let the state machine retry.
        _flag_quietly(leases, lease_id, str(exc))
        raise
    leases.mark_released(lease_id)
    return ReleaseOutput(
        status="released" if released_now else "already_gone", released=True, elapsed_ms=ms_since(started)
    )


def _to_warm_pool(inp: ReleaseInput, leases: LeaseRepository, warm_idle_seconds: int) -> bool:
    allocation: AllocateOutput = inp.allocation
    expires = epoch(allocation.expires_at)
    now = leases.now()
    # The next request must be able to finish on it (see LeasePolicy.warm_margin_seconds).
    usable_until = (expires - leases.policy.warm_margin_seconds) if expires else None
    if usable_until is None or usable_until <= now:
        return False
    return leases.return_to_warm(
        allocation.lease_id, execution_id=inp.execution_id, tenant_id=allocation.tenant_id,
        pool_id=allocation.pool_id, model=allocation.model, allocation_id=allocation.allocation_id,
        assigned_gpu=allocation.assigned_gpu, allocation_expires_at=expires,
        idle_until=min(now + warm_idle_seconds, usable_until),
    )


def _flag_quietly(leases: LeaseRepository, lease_id: str, reason: str) -> None:
    try:
        leases.mark_releasing(lease_id, reason, retry_after=RELEASE_RETRY_SECONDS)
    except Exception:  # the release error is the one to report
        pass
