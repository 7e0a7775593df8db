"""Allocate step: {request_id, model} -> a leased HostedAI allocation."""

import time

from aws_lambda_powertools import Logger

from harpoon import deps
from harpoon.catalog import load_catalog
from harpoon.domain.allocate import allocate
from harpoon.metrics import emit, outcome_of
from harpoon.models import AllocateInput, parse_step_input
from harpoon.settings import get_settings

logger = Logger()


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event, context):
    inp = parse_step_input(AllocateInput, event)
    logger.append_keys(request_id=inp.request_id, tenant_id=inp.tenant_id)
    settings = get_settings()
    pool = settings.hosted_ai_pool_id
    tags = {"tenant_id": inp.tenant_id, "request_id": inp.request_id}
    started = time.perf_counter()
    try:
        out = allocate(
            inp,
            leases=deps.leases(),
            hostedai=deps.hostedai(),
            breaker=deps.breaker(),
            catalog=load_catalog(),
            pool_id=pool,
            duration_seconds=settings.lease_duration_seconds,
            warm_enabled=settings.warm_idle_seconds > 0,
        )
    except Exception as exc:
        outcome, elapsed = outcome_of(exc), (time.perf_counter() - started) * 1000
        # The model asked for: "auto" never reaches this step (Classify chose).
        emit("Allocations", 1, model=inp.model, pool=pool, outcome=outcome, metadata=tags)
        emit("AllocationLatency", elapsed, model=inp.model, pool=pool, outcome=outcome, metadata=tags)
        raise
    outcome = "warm" if out.warm else "cold"
    emit("Allocations", 1, model=out.model, pool=pool, outcome=outcome, metadata=tags)
    emit("AllocationLatency", out.elapsed_ms, model=out.model, pool=pool, outcome=outcome, metadata=tags)
    if out.degraded:
        emit("Fallbacks", 1, model=out.model, pool=pool, metadata={**tags, "requested_model": inp.model,
                                                                   "reason": out.reason})
    logger.info(
        "allocated",
        extra={"allocation_id": out.allocation_id, "gpu": out.assigned_gpu, "model": out.model, "degraded": out.degraded,
               "warm": out.warm},
    )
    return out.model_dump(mode="json")
