"""Infer step: {request_id, allocation_id, model, prompt, max_tokens} -> generated text."""

from aws_lambda_powertools import Logger

from harpoon import deps
from harpoon.catalog import load_catalog
from harpoon.domain.infer import infer
from harpoon.models import InferInput, parse_step_input

logger = Logger()


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event, context):
    inp = parse_step_input(InferInput, event)
    logger.append_keys(request_id=inp.request_id, tenant_id=inp.tenant_id)
    out = infer(inp, leases=deps.leases(), hostedai=deps.hostedai(), breaker=deps.breaker(), catalog=load_catalog())
    logger.info("inferred", extra={"model": out.model_used, "tokens": out.tokens_generated})
    return out.model_dump(mode="json")
