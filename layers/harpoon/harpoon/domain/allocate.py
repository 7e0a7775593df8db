"""Allocate step: record the intent, get a vGPU from HostedAI, record the lease.

The allocate call carries an Idempotency-Key derived from the request id, so a
retried Lambda or a retried state gets the same allocation back instead of a
second GPU; a retry after the first run had finished returns the lease as it is.
"""

from __future__ import annotations

import hashlib
import time
from datetime import datetime, timezone

from harpoon.adapters.hostedai import HostedAIClient
from harpoon.adapters.leases import ACTIVE, Lease, LeaseRepository
from harpoon.catalog import Catalog
from harpoon.domain.timing import ms_since
from harpoon.errors import (
    NoCapacityError,
    PermanentUpstreamError,
    StepInputError,
    TransientUpstreamError,
    UpstreamConnectionError,
    UpstreamRateLimitedError,
)

# Transient failures after which HostedAI certainly created nothing: it said
# so (no capacity, rate limited) or was never reached. Timeouts and 5xx may
# hide an allocation whose answer was lost.
DEFINITE_REFUSALS = (NoCapacityError, UpstreamRateLimitedError, UpstreamConnectionError)
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
    lease = leases.begin(
        lease_id=inp.request_id, model=spec.id, pool_id=pool_id, idempotency_key=key, duration_seconds=duration_seconds
    )
    if lease.status == ACTIVE:
        return _output(lease, started)
    try:
        allocation = hostedai.allocate(
            pool_id=pool_id,
            requirements=spec.requirements(),
            duration_seconds=duration_seconds,
            idempotency_key=key,
            metadata={"request_id": inp.request_id, "model": spec.id},
        )
    except PermanentUpstreamError as exc:
        # HostedAI refused (4xx): nothing exists to release, and a retry cannot
        # help. A success we could not read is no refusal: its outcome is
        # unknown, so the lease stays PENDING for Release / the cleanup.
        if exc.status is not None and exc.status >= 300:
            leases.mark_failed(inp.request_id, exc.message)
        raise
    except TransientUpstreamError as exc:
        # The lease stays PENDING: the state machine retries this step with
        # the same key, and the retry takes the lease over. Note whether this
        # attempt could have created a GPU, for Release to settle the lease.
        leases.note_outcome(inp.request_id, "refused" if isinstance(exc, DEFINITE_REFUSALS) else "unknown")
        raise
    expires_at = _epoch(allocation.expires_at) or int(time.time()) + duration_seconds
    try:
        leases.activate(
            inp.request_id,
            allocation_id=allocation.allocation_id,
            assigned_gpu=allocation.assigned_gpu,
            expires_at=expires_at,
        )
    except Exception:
        # The GPU exists but our ledger does not say so: give it back now
        # rather than leave it to HostedAI's expiry.
        _release_quietly(hostedai, allocation.allocation_id)
        raise
    return AllocateOutput(
        lease_id=inp.request_id,
        allocation_id=allocation.allocation_id,
        assigned_gpu=allocation.assigned_gpu,
        pool_id=pool_id,
        model=spec.id,
        expires_at=allocation.expires_at,
        elapsed_ms=ms_since(started),
    )


def _output(lease: Lease, started: float) -> AllocateOutput:
    expires = datetime.fromtimestamp(lease.expires_at, timezone.utc).isoformat() if lease.expires_at else None
    return AllocateOutput(
        lease_id=lease.lease_id,
        allocation_id=lease.allocation_id,
        assigned_gpu=lease.assigned_gpu,
        pool_id=lease.pool_id,
        model=lease.model,
        expires_at=expires,
        elapsed_ms=ms_since(started),
    )


def _release_quietly(hostedai: HostedAIClient, allocation_id: str) -> None:
    try:
        hostedai.release(allocation_id)
    except Exception:  # the original error matters more; the lease stays PENDING
        pass


def _epoch(rfc3339: str | None) -> int | None:
    if not rfc3339:
        return None
    try:
        return int(datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp())
    except ValueError:
        return None
