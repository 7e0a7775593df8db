"""Infer step: {request_id, allocation_id, model, prompt, max_tokens} -> generated text."""

import time

from aws_lambda_powertools import Logger

from harpoon import deps
from harpoon.catalog import load_catalog
from harpoon.domain.infer import infer
from harpoon.metrics import emit, outcome_of
from harpoon.models import InferInput, parse_step_input
from harpoon.settings import get_settings

logger = Logger()


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event, context):
    inp = parse_step_input(InferInput, event)
    logger.append_keys(request_id=inp.request_id, tenant_id=inp.tenant_id)
    tags = {"tenant_id": inp.tenant_id, "request_id": inp.request_id}
    started = time.perf_counter()
    try:
        out = infer(inp, leases=deps.leases(), hostedai=deps.hostedai(), breaker=deps.breaker(), catalog=load_catalog(),
                    renew_below=get_settings().lease_renew_below_seconds)
    except Exception as exc:
        outcome = outcome_of(exc)
        emit("InferenceLatency", (time.perf_counter() - started) * 1000, model=inp.model, pool=inp.pool_id,
             outcome=outcome if outcome in ("upstream_error", "rejected") else "error", metadata=tags)
        raise
    logger.info("inferred", extra={"model": out.model_used, "tokens": out.tokens_generated})
    # The catalog model asked for, not HostedAI's own name for it (model_used): a bounded dimension.
    tags["model_used"] = out.model_used
    emit("InferenceLatency", out.elapsed_ms, model=inp.model, pool=inp.pool_id, outcome="ok", metadata=tags)
    emit("TokensGenerated", out.tokens_generated, model=inp.model, pool=inp.pool_id, metadata=tags)
    return out.model_dump(mode="json")
