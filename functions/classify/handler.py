"""Classify step: {request_id, text, max_tokens} -> classification and route."""

from aws_lambda_powertools import Logger

from harpoon.catalog import load_catalog
from harpoon.domain.classify import classify_request, parse_classify_input
from harpoon.metrics import emit
from harpoon.settings import get_settings

logger = Logger()


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event, context):
    inp = parse_classify_input(event)
    logger.append_keys(request_id=inp.request_id, tenant_id=inp.tenant_id)
    out = classify_request(inp, catalog=load_catalog(), threshold=get_settings().classifier_threshold)
    logger.info("classified", extra={"tier": out["classification"]["tier"], "model": out["route"]["model"]})
    emit("Classifications", 1, outcome=out["classification"]["tier"],
         metadata={"tenant_id": inp.tenant_id, "request_id": inp.request_id})
    return out
