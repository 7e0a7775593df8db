"""Cleanup: scheduled sweep that gives back GPUs the request path could not."""

from aws_lambda_powertools import Logger

from harpoon import deps
from harpoon.domain.cleanup import sweep
from harpoon.settings import get_settings

logger = Logger()


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event, context):
    settings = get_settings()
    event = event or {}
    # A scheduled event may override the ages (the local chaos run sweeps
    # with 0 once every execution has ended and HostedAI is idle).
    report = sweep(
        leases=deps.leases(),
        hostedai=deps.hostedai(),
        stale_after_seconds=max(0.0, float(event.get("stale_after_seconds", settings.stale_after_seconds))),
        reconcile_after_seconds=max(0.0, float(event.get("reconcile_after_seconds", settings.reconcile_after_seconds))),
        execution_ended=deps.execution_ended,
    )
    logger.info("swept", extra=report.as_dict())
    return report.as_dict()
