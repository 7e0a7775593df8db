"""Async requests' records in DynamoDB (RequestsTable, key `pk` =
`<tenant>#<request id>`, TTL attribute `expires_at`).

A record is written RUNNING when the API starts the request's execution and
finished exactly once (a conditional write), by whichever sees the execution
end first: the Complete function (on Step Functions' status-change event) or
a GET that asked Step Functions itself. The one that finishes it gives the
quota slot back. Results are kept `ASYNC_RESULT_TTL_SECONDS`, then TTL
deletes them (and GET answers 404, as for a request that never was).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

RUNNING, SUCCEEDED, FAILED = "running", "succeeded", "failed"
# The error code of a request whose execution never started: a retry may run it.
NEVER_STARTED = "workflow_unavailable"


@dataclass(frozen=True)
class RequestRecord:
    tenant_id: str
    request_id: str
    status: str
    execution_arn: str
    created_at: int
    finished_at: int | None = None
    result: dict | None = None  # SUCCEEDED: the body a sync call would have answered
    error: dict | None = None  # FAILED: {"status": HTTP status, "error": {"code", "message", "details"}}


def _key(tenant_id: str, request_id: str) -> dict:
    return {"pk": {"S": f"{tenant_id}#{request_id}"}}


class RequestRepository:
    def __init__(self, table_name: str, client: Any, *, clock=time.time) -> None:
        self.table = table_name
        self.ddb = client
        self.clock = clock

    def create(self, tenant_id: str, request_id: str, execution_arn: str, *, keep_seconds: int) -> bool:
        """Record the request as running; False if it exists already (the
        same request id before: an idempotent retry), unless that one never
        started (its record failed with NEVER_STARTED): a retry replaces it."""
        now = int(self.clock())
        try:
            self.ddb.put_item(
                TableName=self.table,
                ConditionExpression="attribute_not_exists(pk) OR (#s = :failed AND error_code = :never)",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={":failed": {"S": FAILED}, ":never": {"S": NEVER_STARTED}},
                Item={**_key(tenant_id, request_id), "tenant_id": {"S": tenant_id}, "request_id": {"S": request_id},
                      "status": {"S": RUNNING}, "execution_arn": {"S": execution_arn}, "created_at": {"N": str(now)},
                      "expires_at": {"N": str(now + keep_seconds)}},
            )
        except self.ddb.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def get(self, tenant_id: str, request_id: str) -> RequestRecord | None:
        item = self.ddb.get_item(TableName=self.table, Key=_key(tenant_id, request_id), ConsistentRead=True).get("Item")
        if not item or int(item.get("expires_at", {"N": "0"})["N"]) <= self.clock():
            return None  # TTL deletes expired items late: they are gone all the same
        return RequestRecord(
            tenant_id=item["tenant_id"]["S"], request_id=item["request_id"]["S"], status=item["status"]["S"],
            execution_arn=item["execution_arn"]["S"], created_at=int(item["created_at"]["N"]),
            finished_at=int(item["finished_at"]["N"]) if "finished_at" in item else None,
            result=json.loads(item["result"]["S"]) if "result" in item else None,
            error=json.loads(item["error"]["S"]) if "error" in item else None,
        )

    def finish(self, tenant_id: str, request_id: str, *, keep_seconds: int, result: dict | None = None,
               error: dict | None = None) -> bool:
        """RUNNING -> SUCCEEDED (with `result`) or FAILED (with `error`,
        {"status", "error": {"code", ...}}), kept `keep_seconds` from now;
        False if it was finished already (or never recorded)."""
        status, field, value = (SUCCEEDED, "result", result) if error is None else (FAILED, "error", error)
        now = int(self.clock())
        values = {":to": {"S": status}, ":v": {"S": json.dumps(value)}, ":now": {"N": str(now)},
                  ":running": {"S": RUNNING}, ":exp": {"N": str(now + keep_seconds)}}
        update = "SET #s = :to, #f = :v, finished_at = :now, expires_at = :exp"
        if error is not None:
            update += ", error_code = :code"
            values[":code"] = {"S": error["error"]["code"]}
        try:
            self.ddb.update_item(
                TableName=self.table, Key=_key(tenant_id, request_id), UpdateExpression=update,
                ConditionExpression="#s = :running", ExpressionAttributeNames={"#s": "status", "#f": field},
                ExpressionAttributeValues=values,
            )
        except self.ddb.exceptions.ConditionalCheckFailedException:
            return False
        return True
