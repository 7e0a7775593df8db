"""Cleanup: scheduled sweep that gives back GPUs the request path could not."""

from aws_lambda_powertools import Logger

from harpoon import deps
from harpoon.domain.cleanup import sweep
from harpoon.settings import get_settings

logger = Logger()


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event, context):
    # A scheduled event may override the staleness age (the local chaos run
    # sweeps with 0 once every execution has ended).
    stale_after = float((event or {}).get("stale_after_seconds", get_settings().stale_after_seconds))
    report = sweep(leases=deps.leases(), hostedai=deps.hostedai(), stale_after_seconds=max(0.0, stale_after))
    logger.info("swept", extra=report.as_dict())
    return report.as_dict()
