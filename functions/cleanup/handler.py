"""Cleanup: the scheduled sweep that gives back GPUs the request path could not."""

from aws_lambda_powertools import Logger

from harpoon import deps
from harpoon.domain.cleanup import sweep
from harpoon.metrics import emit
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
    logger.info("swept", extra=report)
    emit_sweep_metrics(report)
    return report


# A reclaimed lease in one of these states held a GPU nobody was using any
# more: a leak the sweep ended (ACTIVE past its lease, RELEASING after failed
# releases, an allocate whose answer was lost). An IDLE one was a warm GPU
# whose idle time ran out: the pool working as meant.
LEAKED = {"ACTIVE", "RELEASING", "pending key"}


def emit_sweep_metrics(report: dict) -> None:
    for entry in report["reclaimed"]:
        pool = entry.get("pool_id") or "unknown"
        # A warm lease is never a leak, even when an earlier sweep's release
        # of it failed (it is RELEASING then).
        warm = entry["lease_id"].startswith("warm#")
        was = "idle" if warm else entry["was"].split()[0].lower()  # "pending key" -> pending
        emit("LeasesReclaimed", 1, pool=pool, outcome=was, metadata={"lease_id": entry["lease_id"]})
        if not warm and entry["was"] in LEAKED:
            emit("LeakedGpuSeconds", entry.get("overdue_seconds", 0), pool=pool,
                 metadata={"lease_id": entry["lease_id"]})
    # A sample of what is held now, every tick (zeros included, so the graph has no gaps).
    try:
        census = deps.leases().census()
    except Exception:  # noqa: BLE001 - the sweep is done; only this sample is lost
        logger.exception("lease census failed")
        return
    pools = {pool for pool, _ in census} | {get_settings().hosted_ai_pool_id}
    for pool in sorted(pools):
        emit("ActiveAllocations", census.get((pool, "ACTIVE"), 0), pool=pool)
        emit("WarmLeases", census.get((pool, "IDLE"), 0), pool=pool)
