"""Allocate step: {request_id, model} -> a leased HostedAI allocation."""

from aws_lambda_powertools import Logger

from harpoon import deps
from harpoon.catalog import load_catalog
from harpoon.domain.allocate import allocate
from harpoon.models import AllocateInput, parse_step_input
from harpoon.settings import get_settings

logger = Logger()


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event, context):
    inp = parse_step_input(AllocateInput, event)
    logger.append_keys(request_id=inp.request_id, tenant_id=inp.tenant_id)
    settings = get_settings()
    out = allocate(
        inp,
        leases=deps.leases(),
        hostedai=deps.hostedai(),
        breaker=deps.breaker(),
        catalog=load_catalog(),
        pool_id=settings.hosted_ai_pool_id,
        duration_seconds=settings.lease_duration_seconds,
        warm_enabled=settings.warm_idle_seconds > 0,
    )
    logger.info(
        "allocated",
        extra={"allocation_id": out.allocation_id, "gpu": out.assigned_gpu, "model": out.model, "degraded": out.degraded,
               "warm": out.warm},
    )
    return out.model_dump(mode="json")
