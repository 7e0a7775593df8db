"""Release step: {request_id, allocation|null} -> the vGPU given back."""

from aws_lambda_powertools import Logger

from harpoon import deps
from harpoon.domain.release import release
from harpoon.models import ReleaseInput, parse_step_input
from harpoon.settings import get_settings

logger = Logger()


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event, context):
    inp = parse_step_input(ReleaseInput, event)
    logger.append_keys(request_id=inp.request_id, tenant_id=inp.tenant_id)
    out = release(inp, leases=deps.leases(), hostedai=deps.hostedai(), warm_idle_seconds=get_settings().warm_idle_seconds)
    logger.info("released", extra={"status": out.status})
    return out.model_dump(mode="json")
