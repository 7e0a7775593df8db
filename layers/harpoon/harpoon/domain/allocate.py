"""Allocate step: record the intent, get a vGPU from HostedAI, record the lease.

The allocate call carries an Idempotency-Key derived from the request id, so a
retried Lambda or a retried state gets the same allocation back instead of a
second GPU.
"""

from __future__ import annotations

import hashlib
import time
from datetime import datetime

from harpoon.adapters.hostedai import HostedAIClient
from harpoon.adapters.leases import LeaseRepository
from harpoon.catalog import Catalog
from harpoon.domain.timing import ms_since
from harpoon.errors import PermanentUpstreamError, StepInputError
from harpoon.models import AllocateInput, AllocateOutput


def allocation_idempotency_key(request_id: str) -> str:
    # <= 64 ASCII chars whatever the request id looks like.
    return "harpoon-" + hashlib.sha256(request_id.encode("utf-8")).hexdigest()[:48]


def allocate(
    inp: AllocateInput,
    *,
    leases: LeaseRepository,
    hostedai: HostedAIClient,
    catalog: Catalog,
    pool_id: str,
    duration_seconds: int,
) -> AllocateOutput:
    started = time.perf_counter()
    try:
        spec = catalog.get(inp.model)
    except KeyError as exc:
        raise StepInputError(str(exc)) from None
    key = allocation_idempotency_key(inp.request_id)
    leases.begin(
        lease_id=inp.request_id, model=spec.id, pool_id=pool_id, idempotency_key=key, duration_seconds=duration_seconds
    )
    try:
        allocation = hostedai.allocate(
            pool_id=pool_id,
            requirements=spec.requirements(),
            duration_seconds=duration_seconds,
            idempotency_key=key,
            metadata={"request_id": inp.request_id, "model": spec.id},
        )
    except PermanentUpstreamError as exc:
        # HostedAI refused: nothing exists to release, and a retry cannot help.
        leases.mark_failed(inp.request_id, exc.message)
        raise
    # Transient errors leave the lease PENDING: the state machine retries this
    # step with the same key, and the retry takes the lease over.
    leases.activate(
        inp.request_id,
        allocation_id=allocation.allocation_id,
        assigned_gpu=allocation.assigned_gpu,
        expires_at=_epoch(allocation.expires_at) or int(time.time()) + duration_seconds,
    )
    return AllocateOutput(
        lease_id=inp.request_id,
        allocation_id=allocation.allocation_id,
        assigned_gpu=allocation.assigned_gpu,
        pool_id=pool_id,
        model=spec.id,
        expires_at=allocation.expires_at,
        elapsed_ms=ms_since(started),
    )


def _epoch(rfc3339: str | None) -> int | None:
    if not rfc3339:
        return None
    try:
        return int(datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp())
    except ValueError:
        return None
