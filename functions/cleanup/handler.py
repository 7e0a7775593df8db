"""Cleanup: the scheduled sweep that gives back GPUs the request path could not."""

from aws_lambda_powertools import Logger

from harpoon import deps
from harpoon.domain.cleanup import sweep
from harpoon.settings import get_settings

logger = Logger()


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event, context):
    event = event or {}
    # `horizon_seconds` also takes leases due that much later, which would
    # reclaim GPUs still in use if any execution runs: a drain for when none
    # does (the local chaos run's audit, `make sweep HORIZON=`). Honoured only
    # where the environment allows it; EventBridge never sends it.
    horizon = float(event.get("horizon_seconds", 0)) if get_settings().sweep_horizon_allowed else 0.0
    report = sweep(leases=deps.leases(), hostedai=deps.hostedai(), horizon_seconds=max(0.0, horizon)).as_dict()
    # Quota slots of requests that never gave theirs back (a crash, a timeout).
    report["quota_slots_freed"] = deps.quotas().free_expired()
    logger.info("swept", extra=report)
    return report
