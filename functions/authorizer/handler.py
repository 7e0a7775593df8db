"""Authorizer function: HTTP API Lambda authorizer (payload 2.0, simple
responses) -> {isAuthorized, context: {tenant_id, tier} or {auth_error}}."""

from aws_lambda_powertools import Logger

from harpoon import deps
from harpoon.authorizer import authorize

logger = Logger()


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event, context):
    verdict = authorize(event, deps.tenants().identity, deps.identity_cache(), log=logger)
    logger.append_keys(tenant_id=verdict["context"].get("tenant_id"))
    if "auth_error" in verdict["context"]:
        logger.info("refused", extra={"auth_error": verdict["context"]["auth_error"]})
    return verdict
