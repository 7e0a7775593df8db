"""Async mode: requests longer than API Gateway's 30 s.

POST /v2/process with `Prefer: respond-async` (or `"mode": "async"`) takes
the tenant's quota slot, records the request (RequestsTable), starts it on
the STANDARD state machine (the same ASL as the sync EXPRESS one, with its
full history in the console) and answers 202 at once. The request is
finished exactly once, by whichever sees its execution end first:

- the Complete function, on Step Functions' "Execution Status Change" event
  (EventBridge; `make local` delivers the same event);
- a GET /v2/requests/{request_id} that finds the record running and asks
  Step Functions itself (so a lost or late event never leaves a caller
  waiting).

Finishing maps the execution's outcome exactly as the sync path does (the
same success body, the same error for the same failure), records it, and
gives the quota slot back, charging a success: one conditional write decides
who does it. Only the owning tenant reads a request (the record's key holds
the tenant); another tenant's id is a 404, as is an expired one.
"""

from __future__ import annotations

import datetime
import json

from harpoon.adapters.requests import NEVER_STARTED, RUNNING, RequestRecord, RequestRepository
from harpoon.adapters.workflow import WorkflowResult
from harpoon.settings import get_settings

TERMINAL = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")
# A record whose execution does not exist this long after it was written never started.
NEVER_STARTED_AFTER_SECONDS = 30


def wants_async(mode: str | None, prefer: str | None) -> bool:
    """The body's `mode` decides; without it, the RFC 7240 preference."""
    if mode is not None:
        return mode == "async"
    tokens = (part.split(";")[0].split("=")[0].strip().lower() for part in (prefer or "").split(","))
    return "respond-async" in tokens


def status_url(request_id: str) -> str:
    return f"/v2/requests/{request_id}"


def execution_arn(state_machine_arn: str, name: str) -> str:
    # arn:<partition>:states:<region>:<account>:stateMachine:<machine> -> ...:execution:<machine>:<name>
    return state_machine_arn.replace(":stateMachine:", ":execution:", 1) + f":{name}"


def repository() -> RequestRepository:
    from harpoon.adapters import aws

    return RequestRepository(get_settings().require("requests_table"), aws.client("dynamodb"))


def start(workflow_input: dict, tenant_id: str, request_id: str) -> tuple[dict, bool]:
    """Record the request and start its execution (the caller holds its
    quota slot): (the 202 body, whether this call started it). False: the
    same request id was recorded before (an idempotent retry); the caller
    gives back the slot it took. A start that fails is recorded as failed,
    its slot given back, and answered 503; a retry may run it again."""
    from harpoon.adapters import aws
    from harpoon.api import ApiError

    settings = get_settings()
    machine = settings.require("async_state_machine_arn")
    arn = execution_arn(machine, request_id)
    requests = repository()
    if not requests.create(tenant_id, request_id, arn, keep_seconds=settings.async_result_ttl_seconds):
        return accepted(request_id), False
    sfn = aws.client("stepfunctions")
    try:
        sfn.start_execution(stateMachineArn=machine, name=request_id, input=json.dumps(workflow_input))
    except sfn.exceptions.ExecutionAlreadyExists:
        # Its record expired, its execution's name did not (Step Functions keeps it 90 days).
        error = ApiError(409, "request_already_run",
                         "this request (its Idempotency-Key) ran longer ago than its result is kept; "
                         "send a new Idempotency-Key to run it again", {"request_id": request_id})
        _finish(requests, tenant_id, request_id, result=None, error=error, text=None)
    except Exception as exc:  # noqa: BLE001 - any failure to start: answered, recorded, slot freed
        error = ApiError(503, NEVER_STARTED,
                         f"Step Functions did not start the request ({type(exc).__name__}); retry later",
                         {"request_id": request_id}, headers={"Retry-After": "1"})
        _finish(requests, tenant_id, request_id, result=None, error=error, text=None)
        raise error from None
    return accepted(request_id), True


def accepted(request_id: str) -> dict:
    return {"request_id": request_id, "status": RUNNING, "status_url": status_url(request_id)}


def status(tenant_id: str, request_id: str) -> RequestRecord | None:
    """The tenant's request as it stands (None: no such request for this
    tenant). A running one whose execution has ended is finished now."""
    requests = repository()
    record = requests.get(tenant_id, request_id)
    if record is None or record.status != RUNNING:
        return record
    from harpoon.adapters import aws
    from harpoon.api import ApiError

    sfn = aws.client("stepfunctions")
    try:
        described = sfn.describe_execution(executionArn=record.execution_arn)
    except sfn.exceptions.ExecutionDoesNotExist:
        if requests.clock() - record.created_at < NEVER_STARTED_AFTER_SECONDS:
            return record  # the API may be starting it right now
        # Its API stopped between recording and starting it.
        error = ApiError(503, NEVER_STARTED, "the request's workflow never started; send it again",
                         {"request_id": request_id})
        _finish(requests, tenant_id, request_id, result=None, error=error, text=None)
        return requests.get(tenant_id, request_id)
    except Exception:  # noqa: BLE001 - Step Functions unreachable: still running as far as we know
        from harpoon.api import logger

        logger.exception("async request status: Step Functions not reachable", extra={"async_request_id": request_id})
        return record
    if described["status"] not in TERMINAL:
        return record
    complete(described)
    return requests.get(tenant_id, request_id)


def complete(execution: dict) -> bool:
    """Finish the request an ended execution ran: from Step Functions'
    status-change event's `detail` or a DescribeExecution answer (the same
    fields). True if this call finished it."""
    from harpoon.api import success_body, workflow_failure

    workflow_input = json.loads(execution.get("input") or "{}")
    tenant_id, request_id = workflow_input.get("tenant_id"), execution["name"]
    if not tenant_id:
        raise ValueError(f"execution {execution.get('executionArn')} has no tenant in its input")
    if execution["status"] == "SUCCEEDED":
        total_ms = _ms(execution.get("stopDate")) - _ms(execution.get("startDate"))
        body = success_body(json.loads(execution["output"]), round(total_ms, 2))
        return _finish(repository(), tenant_id, request_id, result=body, error=None, text=workflow_input["text"])
    failure = WorkflowResult(execution["status"], None, execution.get("error"), execution.get("cause"),
                             execution.get("executionArn"))
    return _finish(repository(), tenant_id, request_id, result=None, error=workflow_failure(failure, request_id),
                   text=None)


def _finish(requests: RequestRepository, tenant_id: str, request_id: str, *, result: dict | None, error,
            text: str | None) -> bool:
    """Record the outcome; the call that records it gives the slot back
    (charging a success) and emits the usage metrics."""
    from harpoon import deps
    from harpoon.api import Caller, emit_usage, usage_of

    recorded = {"status": error.status, "error": {"code": error.code, "message": error.message,
                                                  "details": error.details}} if error is not None else None
    charge = usage_of(text, result) if result is not None else None  # before the write: nothing to fail after it
    if not requests.finish(tenant_id, request_id, result=result, error=recorded,
                           keep_seconds=get_settings().async_result_ttl_seconds):
        return False
    try:
        # This write decided it is finished once: a late finish whose expired slot
        # another request took back is still charged.
        deps.quotas().release(tenant_id, request_id, charge=charge, charge_if_freed=True)
    except Exception:  # noqa: BLE001 - recorded; a slot not freed expires, a charge not made is logged
        from harpoon.api import logger

        logger.exception("async request: quota slot not given back or usage not recorded",
                         extra={"async_request_id": request_id})
    if charge is not None:
        emit_usage(Caller(tenant_id, ""), result, charge)
    return True


def _ms(moment) -> float:
    """Step Functions' dates: epoch milliseconds in an event, datetimes from boto."""
    if isinstance(moment, datetime.datetime):
        return moment.timestamp() * 1000
    return float(moment or 0)


def response_body(record: RequestRecord) -> dict:
    body = {"request_id": record.request_id, "status": record.status, "status_url": status_url(record.request_id)}
    if record.result is not None:
        body["result"] = record.result
    if record.error is not None:
        body["error"], body["http_status"] = record.error["error"], record.error["status"]
    return body
