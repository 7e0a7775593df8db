"""Release step: give the vGPU back, whatever happened before.

Runs on the success path and on every failure path after Allocate. Idempotent:
HostedAI's 404 means already gone, and the lease moves to RELEASED only from a
live state.
"""

from __future__ import annotations

import time

from harpoon.adapters.hostedai import HostedAIClient
from harpoon.adapters.leases import LeaseRepository
from harpoon.domain.timing import ms_since
from harpoon.errors import UpstreamError
from harpoon.models import ReleaseInput, ReleaseOutput


def release(inp: ReleaseInput, *, leases: LeaseRepository, hostedai: HostedAIClient) -> ReleaseOutput:
    started = time.perf_counter()
    if inp.allocation is None:
        # Allocate never answered with an id. If its outcome is unknown (lease
        # still PENDING, e.g. after timeouts), flag it for the cleanup, which
        # can learn the id from HostedAI by the lease's idempotency key.
        leases.mark_abandoned(inp.request_id)
        return ReleaseOutput(status="nothing_to_release", released=False, elapsed_ms=ms_since(started))
    lease_id = inp.allocation.lease_id
    try:
        released_now = hostedai.release(inp.allocation.allocation_id)
    except UpstreamError as exc:
        # Keep the lease visible for reclaim, then let the state machine retry.
        leases.mark_release_failed(lease_id, exc.message)
        raise
    leases.mark_released(lease_id)
    return ReleaseOutput(
        status="released" if released_now else "already_gone", released=True, elapsed_ms=ms_since(started)
    )
