"""Runs the request workflow and waits for its outcome.

EXPRESS machines use StartSyncExecution (one call, answers when the execution
ends). STANDARD machines (async use, and the local stack, whose engine has no
StartSyncExecution) use StartExecution and bounded polling of
DescribeExecution. Either way the caller gets a WorkflowResult or, past the
deadline, a WorkflowTimeout; the execution itself goes on and still releases.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class WorkflowResult:
    status: str  # SUCCEEDED | FAILED | TIMED_OUT | ABORTED
    output: dict | None
    error: str | None
    cause: str | None
    execution_arn: str | None


class WorkflowStartError(Exception):
    """Step Functions refused or could not be reached (throttling, execution
    limit, network): nothing ran, so the caller may retry."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class WorkflowTimeout(Exception):
    def __init__(self, execution_arn: str | None, waited_seconds: float) -> None:
        super().__init__(f"workflow still running after {waited_seconds:.1f} s")
        self.execution_arn = execution_arn


class WorkflowRunner:
    def __init__(
        self,
        sfn_client: Any,
        state_machine_arn: str,
        machine_type: str,
        *,
        clock=time.monotonic,
        sleep=time.sleep,
    ) -> None:
        self._sfn = sfn_client
        self._arn = state_machine_arn
        self._type = machine_type
        self._clock = clock
        self._sleep = sleep

    def run(self, name: str, payload: dict, *, timeout_seconds: float) -> WorkflowResult:
        from botocore.exceptions import BotoCoreError, ClientError, ReadTimeoutError

        # UTF-8, not \u escapes: Step Functions counts payload bytes (256 KB).
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
        try:
            if self._type == "EXPRESS":
                return self._run_sync(name, body, timeout_seconds)
            return self._run_and_poll(name, body, timeout_seconds)
        except ReadTimeoutError:
            # EXPRESS: the sync call's read timeout is the wait's bound.
            raise WorkflowTimeout(None, timeout_seconds) from None
        except ClientError as exc:
            raise WorkflowStartError(exc.response.get("Error", {}).get("Code", "ClientError")) from None
        except BotoCoreError as exc:
            raise WorkflowStartError(type(exc).__name__) from None

    def _run_sync(self, name: str, body: str, timeout_seconds: float) -> WorkflowResult:
        # The client's read timeout (set by the caller) bounds this call.
        return _result(self._sfn.start_sync_execution(stateMachineArn=self._arn, name=name, input=body))

    def _run_and_poll(self, name: str, body: str, timeout_seconds: float) -> WorkflowResult:
        from botocore.exceptions import ClientError

        started = self._clock()
        payload = json.loads(body)
        # Always pass a name: a start with the same name and input as a
        # running execution returns that execution (and moto mishandles
        # unnamed ones). A name whose execution already ended is a retried
        # idempotent request: a success is its answer; after a failure it
        # runs again under a new name (a new request id, a new lease).
        for attempt in range(1, 6):
            attempt_name = name if attempt == 1 else f"{name}-{attempt}"
            if attempt > 1 and "request_id" in payload:
                payload["request_id"] = attempt_name
                body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
            try:
                execution_arn = self._sfn.start_execution(stateMachineArn=self._arn, name=attempt_name, input=body)[
                    "executionArn"
                ]
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "ExecutionAlreadyExists":
                    raise
                execution_arn = self._arn.replace(":stateMachine:", ":execution:", 1) + ":" + attempt_name
                earlier = self._sfn.describe_execution(executionArn=execution_arn)
                if earlier["status"] not in ("SUCCEEDED", "RUNNING"):
                    continue
            return self._poll(execution_arn, started, timeout_seconds)
        raise WorkflowStartError("ExecutionAlreadyExists")

    def _poll(self, execution_arn: str, started: float, timeout_seconds: float) -> WorkflowResult:
        delay = 0.02
        while True:
            response = self._sfn.describe_execution(executionArn=execution_arn)
            if response["status"] != "RUNNING":
                return _result(response)
            waited = self._clock() - started
            if waited >= timeout_seconds:
                raise WorkflowTimeout(execution_arn, waited)
            self._sleep(min(delay, max(timeout_seconds - waited, 0.0)))
            delay = min(delay * 1.5, 0.5)


def _result(response: dict) -> WorkflowResult:
    output = response.get("output")
    return WorkflowResult(
        status=response["status"],
        output=json.loads(output) if output else None,
        error=response.get("error"),
        cause=response.get("cause"),
        execution_arn=response.get("executionArn"),
    )
