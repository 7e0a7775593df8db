"""Complete: an async request's execution ended (Step Functions' "Execution
Status Change" event from EventBridge) -> its result recorded, its quota
slot given back (harpoon.async_requests)."""

from aws_lambda_powertools import Logger

from harpoon.async_requests import complete
from harpoon.settings import get_settings

logger = Logger()


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event, context):
    detail = event["detail"]
    logger.append_keys(request_id=detail.get("name"))
    if detail.get("stateMachineArn") != get_settings().require("async_state_machine_arn"):
        # Only the async machine's executions are requests to finish (the rule says so too).
        logger.error("status change of another state machine ignored", extra={"arn": detail.get("stateMachineArn")})
        return {"request_id": detail.get("name"), "status": detail.get("status"), "finished_now": False}
    finished = complete(detail)
    logger.info("async request finished" if finished else "async request was finished already",
                extra={"status": detail.get("status")})
    return {"request_id": detail.get("name"), "status": detail.get("status"), "finished_now": finished}
