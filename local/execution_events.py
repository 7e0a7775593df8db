"""Step Functions' "Execution Status Change" events, delivered locally.

On AWS, Step Functions puts an event on the default EventBridge bus when a
STANDARD execution ends, and an EventBridge rule invokes its target (the
Complete function for the async machine). moto does neither, so the local
stack watches the executions of every state machine a function's rule names
and invokes that function with the event AWS would send: `detail` holds
executionArn, stateMachineArn, name, status, startDate and stopDate (epoch
ms), input, output, error and cause. Each ended execution is delivered once;
a delivery that fails is tried again on the next poll, as EventBridge
retries.
"""

from __future__ import annotations

import datetime
import json
import threading
import uuid
from collections.abc import Callable

TERMINAL = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")


def _epoch_ms(moment) -> int | None:
    return int(moment.timestamp() * 1000) if isinstance(moment, datetime.datetime) else None


def status_change_event(described: dict) -> dict:
    """The EventBridge event for an ended execution (DescribeExecution's answer)."""
    detail = {
        "executionArn": described["executionArn"], "stateMachineArn": described["stateMachineArn"],
        "name": described["name"], "status": described["status"],
        "startDate": _epoch_ms(described.get("startDate")), "stopDate": _epoch_ms(described.get("stopDate")),
        "input": described.get("input"), "output": described.get("output"),
        "error": described.get("error"), "cause": described.get("cause"),
    }
    return {
        "version": "0", "id": str(uuid.uuid4()), "detail-type": "Step Functions Execution Status Change",
        "source": "aws.states", "account": described["executionArn"].split(":")[4],
        "time": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": described["executionArn"].split(":")[3], "resources": [described["executionArn"]],
        "detail": detail,
    }


class ExecutionEvents:
    """Polls each watched machine's executions and delivers the ended ones."""

    def __init__(self, sfn, rules: list[tuple[str, str, tuple[str, ...]]], invoke: Callable[[str, object], dict],
                 *, interval: float = 0.25, log=None) -> None:
        self.sfn, self.rules, self.invoke, self.interval, self.log = sfn, rules, invoke, interval, log
        self.delivered: set[str] = set()
        self._stop = threading.Event()

    def start(self) -> Callable[[], None]:
        threading.Thread(target=self._run, daemon=True).start()
        return self._stop.set

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.deliver_once()
            except Exception as exc:  # noqa: BLE001 - moto busy or stopping: the next poll tries again
                if self.log:
                    print(f"execution events: {type(exc).__name__}: {exc}", file=self.log, flush=True)

    def deliver_once(self) -> int:
        """Deliver every ended execution not delivered yet; how many were."""
        count = 0
        for function, machine_arn, statuses in self.rules:
            paginator = self.sfn.get_paginator("list_executions")
            for page in paginator.paginate(stateMachineArn=machine_arn):
                for execution in page["executions"]:
                    arn = execution["executionArn"]
                    if execution["status"] not in TERMINAL or arn in self.delivered:
                        continue
                    if execution["status"] in statuses:
                        reply = self.invoke(function, status_change_event(self.sfn.describe_execution(executionArn=arn)))
                        if "error" in reply:
                            if self.log:
                                print(f"execution event for {execution['name']}: {function} failed: "
                                      f"{json.dumps(reply['error'])[:300]}", file=self.log, flush=True)
                            continue  # redelivered on the next poll
                        count += 1
                    self.delivered.add(arn)
        return count
