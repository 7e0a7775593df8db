import json

import pytest

from harpoon.adapters.workflow import WorkflowRunner, WorkflowTimeout


class FakeSfn:
    def __init__(self, statuses):
        self.statuses = list(statuses)
        self.calls = []

    def start_execution(self, **kwargs):
        self.calls.append(("start", kwargs))
        return {"executionArn": "arn:exec:1"}

    def describe_execution(self, executionArn):
        self.calls.append(("describe", executionArn))
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        reply = {"executionArn": executionArn, "status": status}
        if status == "SUCCEEDED":
            reply["output"] = json.dumps({"ok": True})
        return reply

    def start_sync_execution(self, **kwargs):
        self.calls.append(("sync", kwargs))
        return {"executionArn": "arn:exec:2", "status": "FAILED", "error": "NoCapacityError", "cause": "{}"}


class Clock:
    def __init__(self):
        self.now = 0.0
        self.sleeps = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


def test_standard_polls_until_done_with_growing_bounded_delays():
    sfn, clock = FakeSfn(["RUNNING"] * 5 + ["SUCCEEDED"]), Clock()
    result = WorkflowRunner(sfn, "arn:sm", "STANDARD", clock=clock, sleep=clock.sleep).run("req-1", {"a": 1}, timeout_seconds=10)
    assert result.status == "SUCCEEDED" and result.output == {"ok": True}
    assert sfn.calls[0] == ("start", {"stateMachineArn": "arn:sm", "name": "req-1", "input": '{"a":1}'})
    assert clock.sleeps == sorted(clock.sleeps) and max(clock.sleeps) <= 0.5


def test_standard_gives_up_at_the_deadline():
    sfn, clock = FakeSfn(["RUNNING"]), Clock()
    with pytest.raises(WorkflowTimeout) as info:
        WorkflowRunner(sfn, "arn:sm", "STANDARD", clock=clock, sleep=clock.sleep).run("r", {}, timeout_seconds=2)
    assert info.value.execution_arn == "arn:exec:1"
    assert clock.now == pytest.approx(2, abs=0.01)


def test_express_uses_start_sync_execution():
    sfn = FakeSfn(["RUNNING"])
    result = WorkflowRunner(sfn, "arn:sm", "EXPRESS").run("r", {}, timeout_seconds=1)
    assert [c[0] for c in sfn.calls] == ["sync"]
    assert (result.status, result.error) == ("FAILED", "NoCapacityError")


def test_express_read_timeout_becomes_a_workflow_timeout():
    from botocore.exceptions import ReadTimeoutError

    class Slow(FakeSfn):
        def start_sync_execution(self, **kwargs):
            raise ReadTimeoutError(endpoint_url="https://states")

    with pytest.raises(WorkflowTimeout):
        WorkflowRunner(Slow(["RUNNING"]), "arn:sm", "EXPRESS").run("r", {}, timeout_seconds=1)


@pytest.mark.parametrize("machine_type", ["EXPRESS", "STANDARD"])
def test_step_functions_refusals_become_start_errors(machine_type):
    from botocore.exceptions import ClientError

    from harpoon.adapters.workflow import WorkflowStartError

    class Throttled(FakeSfn):
        def _refuse(self, **kwargs):
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "StartExecution")

        start_execution = start_sync_execution = _refuse

    with pytest.raises(WorkflowStartError, match="ThrottlingException"):
        WorkflowRunner(Throttled(["RUNNING"]), "arn:sm", machine_type).run("r", {}, timeout_seconds=1)


def test_payload_is_sent_as_utf8_not_escaped():
    sfn, clock = FakeSfn(["SUCCEEDED"]), Clock()
    WorkflowRunner(sfn, "arn:sm", "STANDARD", clock=clock, sleep=clock.sleep).run("r", {"text": "héllo 日本"}, timeout_seconds=1)
    assert sfn.calls[0][1]["input"] == '{"text":"héllo 日本"}'


class Existing(FakeSfn):
    """start_execution refuses names already used; describe answers per ARN."""

    def __init__(self, earlier_status):
        super().__init__(["SUCCEEDED"])
        self.earlier_status = earlier_status

    def start_execution(self, **kwargs):
        from botocore.exceptions import ClientError

        self.calls.append(("start", kwargs))
        if kwargs["name"] == "req-1":
            raise ClientError({"Error": {"Code": "ExecutionAlreadyExists", "Message": "used"}}, "StartExecution")
        return {"executionArn": f"arn:aws:states:r:1:execution:sm:{kwargs['name']}"}

    def describe_execution(self, executionArn):
        self.calls.append(("describe", executionArn))
        if executionArn.endswith(":req-1"):
            return {"executionArn": executionArn, "status": self.earlier_status, "output": json.dumps({"first": True})}
        return {"executionArn": executionArn, "status": "SUCCEEDED", "output": json.dumps({"second": True})}


def run_existing(status):
    sfn, clock = Existing(status), Clock()
    runner = WorkflowRunner(sfn, "arn:aws:states:r:1:stateMachine:sm", "STANDARD", clock=clock, sleep=clock.sleep)
    return sfn, runner.run("req-1", {"request_id": "req-1"}, timeout_seconds=5)


def test_a_retried_request_whose_execution_succeeded_gets_its_answer_without_running_again():
    sfn, result = run_existing("SUCCEEDED")
    assert result.output == {"first": True}
    assert [c[0] for c in sfn.calls].count("start") == 1


def test_a_retried_request_whose_execution_failed_runs_again_under_a_new_name():
    sfn, result = run_existing("FAILED")
    assert result.output == {"second": True}
    starts = [c[1] for c in sfn.calls if c[0] == "start"]
    assert [s["name"] for s in starts] == ["req-1", "req-1-2"]
    assert json.loads(starts[1]["input"]) == {"request_id": "req-1-2"}
