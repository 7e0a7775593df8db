"""Release step: give the vGPU back, whatever happened before.

Runs on the success path and on every failure path after Allocate. Idempotent:
HostedAI's 404 means already gone, and the lease moves to RELEASED only from a
live state.
"""

from __future__ import annotations

import time

from harpoon.adapters.hostedai import HostedAIClient
from harpoon.adapters.leases import ACTIVE, PENDING, RELEASE_FAILED, LeaseRepository, same_execution
from harpoon.domain.timing import ms_since
from harpoon.models import ReleaseInput, ReleaseOutput


def release(inp: ReleaseInput, *, leases: LeaseRepository, hostedai: HostedAIClient) -> ReleaseOutput:
    started = time.perf_counter()
    if inp.allocation is not None:
        lease_id, allocation_id = inp.allocation.lease_id, inp.allocation.allocation_id
    else:
        # Allocate's output never reached the workflow. Its lease says whether
        # a GPU exists anyway (e.g. the step finished but its answer was lost).
        lease = leases.get(inp.request_id)
        if lease is not None and not same_execution(lease.execution_id, inp.execution_id):
            # Another execution's lease (a client retried the request): not ours to touch.
            return ReleaseOutput(status="nothing_to_release", released=False, elapsed_ms=ms_since(started))
        if lease is not None and lease.status == PENDING:
            settled = (
                leases.mark_abandoned(inp.request_id)  # an answer may be lost: the cleanup asks again
                if lease.pending_keys
                else leases.mark_failed(inp.request_id, "no allocation was made")
            )
            if not settled:
                # It moved on since we read it: a straggling Allocate of this
                # execution may have just activated it. Look again.
                lease = leases.get(inp.request_id)
        if lease is None or lease.status not in (ACTIVE, RELEASE_FAILED) or not lease.allocation_id:
            return ReleaseOutput(status="nothing_to_release", released=False, elapsed_ms=ms_since(started))
        lease_id, allocation_id = lease.lease_id, lease.allocation_id
    try:
        released_now = hostedai.release(allocation_id)
    except Exception as exc:
        # Whatever failed (HostedAI, the secret, a timeout), keep the lease
        # visible for reclaim, then let the state machine retry.
        _flag_quietly(leases, lease_id, str(exc))
        raise
    leases.mark_released(lease_id)
    return ReleaseOutput(
        status="released" if released_now else "already_gone", released=True, elapsed_ms=ms_since(started)
    )


def _flag_quietly(leases: LeaseRepository, lease_id: str, reason: str) -> None:
    try:
        leases.mark_release_failed(lease_id, reason)
    except Exception:  # the release error is the one to report
        pass
