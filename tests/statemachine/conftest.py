"""Runs statemachine/harpoon.asl.json, substituted from template.yaml, on
moto's Step Functions engine in this process. Lambda Invoke calls from the
engine reach the real handlers (or a test's fake) through local.lambda_hook.
Retry waits are recorded instead of slept; FULL jitter is pinned to its upper
bound so the backoff intervals can be asserted exactly."""

from __future__ import annotations

import json
import time
import traceback
import uuid

import boto3
import pytest

from harpoon.models import WorkflowInput
from local import lambda_hook
from tests.conftest import load_handler

STEPS = {"ClassifyFunction": "classify", "AllocateFunction": "allocate", "InferFunction": "infer", "ReleaseFunction": "release"}


class Engine:
    def __init__(self, stack, context) -> None:
        self.stack = stack
        self.context = context
        self.fakes: dict[str, object] = {}  # step -> callable(event, call_number) or raises
        self.calls: list[tuple[str, dict]] = []
        self.sleeps: list[float] = []
        self.sfn = boto3.client("stepfunctions")
        machine = stack.state_machines["RequestStateMachine"]
        self.definition = json.loads(machine.definition)
        self.arn = self.sfn.create_state_machine(
            name=machine.name, definition=machine.definition, roleArn="arn:aws:iam::123456789012:role/states", type="STANDARD"
        )["stateMachineArn"]
        self.by_arn = {f.arn: STEPS[f.logical_id] for f in stack.functions.values() if f.logical_id in STEPS}
        # Async mode's STANDARD machine: the same definition.
        machine = stack.state_machines["AsyncStateMachine"]
        self.async_arn = self.sfn.create_state_machine(
            name=machine.name, definition=machine.definition, roleArn="arn:aws:iam::123456789012:role/states",
            type="STANDARD")["stateMachineArn"]

    def replace_definition(self, definition: dict) -> None:
        self.arn = self.sfn.create_state_machine(
            name=f"variant-{uuid.uuid4().hex[:8]}", definition=json.dumps(definition),
            roleArn="arn:aws:iam::123456789012:role/states", type="STANDARD",
        )["stateMachineArn"]

    def invoke(self, name: str, event: dict) -> dict:
        step = self.by_arn[name]
        self.calls.append((step, event))
        count = sum(1 for s, _ in self.calls if s == step)
        try:
            if step in self.fakes:
                return {"ok": self.fakes[step](event, count)}
            return {"ok": load_handler(step).lambda_handler(event, self.context)}
        except Exception as exc:  # the Lambda runtime's error payload
            if type(exc).__name__ == "ClientError":
                raise  # a Lambda *service* error, not a function error
            return {"error": {"errorType": type(exc).__name__, "errorMessage": str(exc),
                              "stackTrace": traceback.format_tb(exc.__traceback__)}}

    def steps(self, name: str) -> int:
        return sum(1 for s, _ in self.calls if s == name)

    def run(self, payload: dict | None = None, timeout: float = 30) -> dict:
        request_id = "req-" + uuid.uuid4().hex
        payload = payload or WorkflowInput(request_id=request_id, text="Hello").model_dump(mode="json")
        arn = self.sfn.start_execution(stateMachineArn=self.arn, name=payload["request_id"], input=json.dumps(payload))["executionArn"]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = self.sfn.describe_execution(executionArn=arn)
            if result["status"] != "RUNNING":
                history = self.sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
                result["states"] = [e["stateEnteredEventDetails"]["name"] for e in history if "stateEnteredEventDetails" in e]
                result["request_id"] = payload["request_id"]
                return result
            time.sleep(0.01)
        raise AssertionError("execution did not finish")


@pytest.fixture
def engine(aws, lambda_context, monkeypatch):
    from moto.stepfunctions.parser.asl.component.common.retry import jitter_strategy_decl, retrier_decl

    engine_ = Engine(aws, lambda_context)

    class RecordingTime:
        @staticmethod
        def sleep(seconds):
            engine_.sleeps.append(round(seconds, 3))

    class UpperBoundRandom:
        @staticmethod
        def uniform(low, high):
            return high

    monkeypatch.setattr(retrier_decl, "time", RecordingTime)
    monkeypatch.setattr(jitter_strategy_decl, "random", UpperBoundRandom)
    uninstall = lambda_hook.install(lambda name, event: engine_.invoke(name, event))
    yield engine_
    uninstall()
