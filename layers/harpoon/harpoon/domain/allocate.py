"""Allocate step: record the intent, get a vGPU from HostedAI, record the lease.

Model choice: the classifier's model first, then its fallback chain from the
catalog (qwen-30b -> gemma-270m). A model is skipped when its circuit breaker
is open or HostedAI says its pool has no capacity; a fallback is labelled
(`degraded`, `reason`). Nothing that can serve: NoCapacityError (a retry may
find capacity) or CircuitOpenError (the breakers say when to come back).

Idempotency: each (request, model) has its own Idempotency-Key, so a retried
Lambda or state gets the same allocation back instead of a second GPU. A key
is recorded on the lease as pending *before* it is sent, and settled only
when its outcome is known (see adapters/leases.py), so a crash or timeout at
any point leaves it for Release or the cleanup. A retried step takes the
PENDING lease over as the earlier attempt left it and asks a still-pending
key again first, whatever the breaker says: that call finds the lost
allocation instead of adding a second one.

Warm reuse: before asking HostedAI for a model, a warm allocation of the same
(tenant, pool, model) that lives long enough for this request is claimed if
one exists (a transaction: exactly one claimer wins), skipping the allocate
call and its latency.
"""

from __future__ import annotations

import hashlib
import random
import time
from dataclasses import dataclass

from harpoon.adapters.hostedai import HostedAIClient
from harpoon.adapters.leases import ACTIVE, DEFAULT_TENANT, Lease, LeaseRepository
from harpoon.catalog import Catalog, ModelSpec
from harpoon.domain.breaker import CircuitBreaker
from harpoon.domain.timing import epoch, iso, ms_since
from harpoon.errors import (
    CircuitOpenError,
    NoCapacityError,
    PermanentUpstreamError,
    StepInputError,
    TransientUpstreamError,
    UpstreamConnectionError,
    UpstreamRateLimitedError,
)
from harpoon.models import AllocateInput, AllocateOutput

# Transient failures after which HostedAI certainly created nothing: it said
# so (no capacity, rate limited) or was never reached. Timeouts and 5xx may
# hide an allocation whose answer was lost.
DEFINITE_REFUSALS = (NoCapacityError, UpstreamRateLimitedError, UpstreamConnectionError)


def allocation_idempotency_key(request_id: str, model: str) -> str:
    # <= 64 ASCII chars whatever the request id looks like; one per model,
    # since HostedAI answers 409 to one key with other requirements.
    return "harpoon-" + hashlib.sha256(f"{request_id}|{model}".encode("utf-8")).hexdigest()[:48]


def allocate(inp: AllocateInput, *, breaker: CircuitBreaker, **kwargs) -> AllocateOutput:
    out = _allocate(inp, breaker=breaker, **kwargs)
    # Infer's success on a breaker seen clean just now needs no read of its own.
    return out.model_copy(update={"breaker_clean_at": breaker.clean_at(CircuitBreaker.breaker_id(out.pool_id, out.model))})


def _allocate(
    inp: AllocateInput,
    *,
    leases: LeaseRepository,
    hostedai: HostedAIClient,
    breaker: CircuitBreaker,
    catalog: Catalog,
    pool_id: str,
    duration_seconds: int,
    warm_enabled: bool = False,
) -> AllocateOutput:
    started = time.perf_counter()
    try:
        chain = catalog.chain(inp.model)
    except KeyError as exc:
        raise StepInputError(str(exc)) from None
    primary = chain[0]

    def request_for(spec: ModelSpec) -> dict:
        # Exactly what is sent with the key, so a replay by the cleanup is the same call.
        return {"pool_id": pool_id, "model": spec.id, "requirements": spec.requirements(),
                "duration_seconds": duration_seconds, "metadata": {"request_id": inp.request_id, "model": spec.id}}

    lease = leases.begin(
        lease_id=inp.request_id,
        model=primary.id,
        pool_id=pool_id,
        idempotency_key=allocation_idempotency_key(inp.request_id, primary.id),
        request=request_for(primary),
        execution_id=inp.execution_id,
        tenant_id=inp.tenant_id,
    )
    if lease.status == ACTIVE:  # a retry after the first run had finished
        return _output_from_lease(lease, primary, started)

    # Resume where an earlier attempt stopped (it may have moved to a fallback).
    ids = [spec.id for spec in chain]
    current = ids.index(lease.model) if lease.model in ids else 0
    skipped: list[str] = [lease.route_reason] if current > 0 and lease.route_reason else []
    retry_after: list[float] = []
    capacity_short = False
    pending = set(lease.pending_keys)
    evicted = False
    position = current
    while position < len(chain):
        spec = chain[position]
        position += 1
        breaker_id = CircuitBreaker.breaker_id(pool_id, spec.id)
        key = allocation_idempotency_key(inp.request_id, spec.id)
        # A key already asked by an earlier attempt whose answer never came:
        # ask again (same key: HostedAI returns the GPU it made, if any),
        # whatever the breaker says, rather than add a second GPU elsewhere.
        replaying = key in pending and not lease.created
        if not replaying:
            decision = breaker.allow(breaker_id, inp.request_id)
            if not decision.allowed:
                skipped.append(f"{spec.id}: {decision.reason}")
                retry_after.append(decision.retry_after)
                if key in pending:  # recorded by begin(), never sent
                    leases.settle_key(inp.request_id, key)
                    pending.discard(key)
                continue
        if warm_enabled and not replaying:
            warm = _claim_warm(leases, inp, spec, pool_id, skipped, key)
            if warm is not None:
                return _output(inp.request_id, spec.id, primary, pool_id, skipped, warm, started, tenant_id=inp.tenant_id)
        if spec.id != lease.model:
            leases.retarget(inp.request_id, model=spec.id, idempotency_key=key, request=request_for(spec),
                            reason="; ".join(skipped))
            pending.add(key)
        elif key not in pending:
            leases.expect(inp.request_id, idempotency_key=key, request=request_for(spec))
            pending.add(key)
        try:
            sent = request_for(spec)
            allocation = hostedai.allocate(
                pool_id=sent["pool_id"],
                requirements=sent["requirements"],
                duration_seconds=sent["duration_seconds"],
                idempotency_key=key,
                metadata=sent["metadata"],
            )
        except NoCapacityError:
            # A full pool is not a sick one: the breaker hears a healthy answer.
            breaker.record_success(breaker_id, inp.request_id)
            if not replaying:  # a first call refused: no GPU under this key
                leases.settle_key(inp.request_id, key)
                pending.discard(key)
                # Our own idle warm GPUs may be what fills the pool: free one
                # and ask for this model once more before falling back.
                if warm_enabled and not evicted and _evict_idle_warm(leases, hostedai, inp.tenant_id, pool_id, catalog):
                    evicted = True
                    position -= 1
                    continue
            skipped.append(f"{spec.id}: no capacity")
            capacity_short = True
            continue
        except TransientUpstreamError as exc:
            breaker.record_failure(breaker_id, inp.request_id)
            if isinstance(exc, DEFINITE_REFUSALS) and not replaying:
                leases.settle_key(inp.request_id, key)
            # Otherwise (timeouts, 5xx) the key stays pending. The state
            # machine retries this step; the retry takes the lease over.
            raise
        except PermanentUpstreamError as exc:
            # HostedAI answered: the service is healthy, the request is not.
            breaker.record_success(breaker_id, inp.request_id)
            if not replaying and exc.status is not None and 400 <= exc.status < 500 and exc.status != 409:
                leases.settle_key(inp.request_id, key)  # refused outright: nothing made
            # A success we could not read, a 409 or a refused replay prove
            # nothing: the key stays pending for the cleanup.
            leases.mark_failed(inp.request_id, exc.message)
            raise
        breaker.record_success(breaker_id, inp.request_id)
        return _activate(leases, hostedai, inp, spec, primary, allocation, pool_id, skipped, key,
                         duration_seconds, started)

    summary = "; ".join(skipped)  # e.g. "qwen-30b: circuit open; gemma-270m: no capacity"
    if capacity_short:
        raise NoCapacityError(summary)
    wait = max(1, int(min(retry_after) + 0.999)) if retry_after else 1
    raise CircuitOpenError(f"{summary} (retry after {wait} s)")


def _claim_warm(leases: LeaseRepository, inp: AllocateInput, spec: ModelSpec, pool_id: str, skipped: list[str],
                key: str) -> Allocated | None:
    """A warm allocation for this model, if one is free and lives long enough
    for this request; several candidates are tried, since concurrent claimers
    read the same index and only one wins each."""
    candidates = leases.warm_candidates(tenant_id=inp.tenant_id, pool_id=pool_id, model=spec.id,
                                        usable_until=leases.now() + leases.policy.warm_margin_seconds, limit=10)
    random.shuffle(candidates)  # spread concurrent claimers over the candidates
    for warm in candidates:
        expires = leases.claim_warm(inp.request_id, warm, idempotency_key=key, route_reason="; ".join(skipped) or None)
        if expires is not None:
            return Allocated(warm.allocation_id, warm.assigned_gpu, warm.allocation_expires_at, expires, warm=True)
    return None


def _evict_idle_warm(leases: LeaseRepository, hostedai: HostedAIClient, tenant_id: str, pool_id: str,
                     catalog: Catalog) -> bool:
    """Release one IDLE warm GPU of this tenant and pool (any model), taken
    over like the sweep does, so no claimer can get it meanwhile. True if one
    was released now."""
    candidates = [warm for model in sorted(catalog.models)
                  for warm in leases.warm_candidates(tenant_id=tenant_id, pool_id=pool_id, model=model,
                                                     usable_until=0, limit=3)]
    random.shuffle(candidates)
    for warm in candidates:
        taken = leases.take_over(warm, as_of=warm.lease_expires_at or 0)
        if taken is None:
            continue  # claimed, or taken by the sweep, meanwhile
        try:
            released = hostedai.release(taken.allocation_id, request_id=taken.lease_id)
        except Exception:  # noqa: BLE001 - it is RELEASING and in the index: the sweep finishes it
            return False
        leases.finish(taken, "evicted: HostedAI had no capacity for a cold allocation")
        return released
    return False


@dataclass(frozen=True)
class Allocated:
    allocation_id: str
    assigned_gpu: str
    allocation_expires_at: int | None
    lease_expires_at: int | None
    warm: bool = False


def _activate(leases, hostedai, inp: AllocateInput, spec: ModelSpec, primary: ModelSpec, allocation, pool_id, skipped, key,
              duration_seconds, started):
    expires_at = epoch(allocation.expires_at) or int(time.time()) + duration_seconds
    try:
        lease_expires = leases.activate(
            inp.request_id, allocation_id=allocation.allocation_id, assigned_gpu=allocation.assigned_gpu,
            allocation_expires_at=expires_at, idempotency_key=key,
        )
    except Exception:
        # The GPU exists but our ledger does not say so: give it back now
        # rather than leave it to HostedAI's expiry.
        _release_quietly(hostedai, allocation.allocation_id, inp.request_id)
        raise
    got = Allocated(allocation.allocation_id, allocation.assigned_gpu, expires_at, lease_expires)
    return _output(inp.request_id, spec.id, primary, pool_id, skipped, got, started, tenant_id=inp.tenant_id)


def _output(request_id: str, model: str, primary: ModelSpec, pool_id: str, skipped: list[str], got: Allocated,
            started: float, *, tenant_id: str = DEFAULT_TENANT) -> AllocateOutput:
    degraded = model != primary.id
    return AllocateOutput(
        lease_id=request_id,
        allocation_id=got.allocation_id,
        assigned_gpu=got.assigned_gpu,
        pool_id=pool_id,
        model=model,
        tenant_id=tenant_id,
        degraded=degraded,
        reason=("; ".join(skipped) or "fallback chosen by an earlier attempt") if degraded else None,
        expires_at=iso(got.allocation_expires_at),
        lease_expires_at=got.lease_expires_at,
        warm=got.warm,
        elapsed_ms=ms_since(started),
    )


def _output_from_lease(lease: Lease, primary: ModelSpec, started: float) -> AllocateOutput:
    got = Allocated(lease.allocation_id, lease.assigned_gpu, lease.allocation_expires_at, lease.lease_expires_at,
                    warm=lease.warm)
    return _output(lease.lease_id, lease.model, primary, lease.pool_id, [lease.route_reason] if lease.route_reason else [],
                   got, started, tenant_id=lease.tenant_id)


def _release_quietly(hostedai: HostedAIClient, allocation_id: str, request_id: str) -> None:
    try:
        hostedai.release(allocation_id, request_id=request_id)
    except Exception:  # the original error matters more; the key stays pending
        pass
