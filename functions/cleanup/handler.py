"""Cleanup: the scheduled sweep that gives back GPUs the request path could not."""

from aws_lambda_powertools import Logger

from harpoon import deps
from harpoon.domain.cleanup import sweep

logger = Logger()


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event, context):
    event = event or {}
    # `horizon_seconds` also takes leases due that much later: the local chaos
    # run drains everything with it once no execution is running. A scheduled
    # event from EventBridge never carries it.
    report = sweep(
        leases=deps.leases(),
        hostedai=deps.hostedai(),
        horizon_seconds=max(0.0, float(event.get("horizon_seconds", 0))),
    )
    logger.info("swept", extra=report.as_dict())
    return report.as_dict()
