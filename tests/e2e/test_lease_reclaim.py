"""Over the local stack (`python -m local`), with a 3 s lease TTL and the
cleanup every second: an execution killed between Allocate and Release has
its GPU reclaimed by the first sweep after its lease expires, not before."""

from __future__ import annotations

import json
import threading
import time

import boto3
import httpx
import pytest

from tests.e2e.conftest import RunningStack

TTL = 3


@pytest.fixture(scope="module")
def short_lease_stack(tmp_path_factory):
    running = RunningStack(tmp_path_factory.mktemp("short-lease"), "--env", f"LEASE_TTL_SECONDS={TTL}",
                           "--env", "WARM_IDLE_SECONDS=0", "--env", "SWEEP_RETRY_SECONDS=1")
    yield running
    assert running.stop() == 0


def aws(stack: RunningStack, service: str):
    return boto3.client(service, endpoint_url=f"http://127.0.0.1:{stack.aws}", region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def wait_for(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out")


def sweeps(stack: RunningStack) -> list[dict]:
    return [json.loads(line.split(": ", 1)[1]) for line in list(stack.lines)
            if line.startswith("schedule CleanupFunction at ")]


@pytest.mark.e2e
def test_an_execution_killed_mid_request_has_its_gpu_reclaimed_within_one_tick_after_its_lease_expires(short_lease_stack):
    stack = short_lease_stack
    stack.faults(inference={"latency_ms": 2000, "slow_rate": 1.0})  # Infer is running when the execution dies
    answer: dict = {}
    threading.Thread(target=lambda: answer.update(r=httpx.post(f"{stack.url}/v2/process", json={"text": "Hello"},
                                                               headers={"x-api-key": stack.api_key},
                                                               timeout=60)), daemon=True).start()
    sfn, ddb = aws(stack, "stepfunctions"), aws(stack, "dynamodb")
    machine = sfn.list_state_machines()["stateMachines"][0]["stateMachineArn"]
    execution = wait_for(lambda: next(iter(sfn.list_executions(stateMachineArn=machine, statusFilter="RUNNING")["executions"]), None))
    request_id = execution["name"]
    table = next(t for t in ddb.list_tables()["TableNames"] if t.endswith("LeasesTable"))
    # Infer has renewed the lease: this is the expiry the sweep must honour.
    lease = wait_for(lambda: (item := ddb.get_item(TableName=table, Key={"lease_id": {"S": request_id}}).get("Item"))
                     and item["status"]["S"] == "ACTIVE" and int(item["version"]["N"]) >= 3 and item)
    expires_at = int(lease["lease_expires_at"]["N"])
    allocation_id = lease["allocation_id"]["S"]
    sfn.stop_execution(executionArn=execution["executionArn"], error="Killed", cause="test")
    # (moto ends a stopped execution after its current Task, as FAILED rather than ABORTED.)
    wait_for(lambda: sfn.describe_execution(executionArn=execution["executionArn"])["status"] != "RUNNING")
    history = sfn.get_execution_history(executionArn=execution["executionArn"])["events"]
    entered = [e["stateEnteredEventDetails"]["name"] for e in history if "stateEnteredEventDetails" in e]
    assert entered == ["Classify", "Allocate", "Infer"]  # killed: no Release of any kind ran

    def reclaiming_run():
        runs = sweeps(stack)
        found = [i for i, run in enumerate(runs) if any(r["allocation_id"] == allocation_id for r in run.get("reclaimed", []))]
        return (runs, found[0]) if found else None

    runs, reclaimer = wait_for(reclaiming_run, timeout=TTL + 10)
    assert allocation_id not in [a["allocation_id"] for a in stack.allocations()]
    assert runs[reclaimer]["as_of"] >= expires_at  # never before the lease expired
    # ...and by the first sweep after it did: no earlier sweep already had it due.
    assert all(run["as_of"] < expires_at for run in runs[:reclaimer]), runs[: reclaimer + 1]
    item = ddb.get_item(TableName=table, Key={"lease_id": {"S": request_id}})["Item"]
    assert item["status"]["S"] == "RELEASED" and item["reclaimed_by"]["S"] == "cleanup"
    stack.faults(inference={})


@pytest.mark.e2e
def test_a_release_that_keeps_failing_is_reclaimed_by_the_scheduled_cleanup(short_lease_stack):
    stack = short_lease_stack  # warm reuse off: the success path really calls HostedAI's release
    client = httpx.Client(base_url=stack.url, timeout=60, headers={"x-api-key": stack.api_key})
    stack.faults(release={"error_rate": 1.0, "status": 500})
    response = client.post("/v2/process", json={"text": "Hello"})
    assert response.status_code == 200  # the caller still gets its answer
    assert response.json()["release"] == {"status": "pending_reclaim", "released": False}
    assert len(stack.allocations()) == 1
    stack.faults(release={})
    deadline = time.monotonic() + 20
    while stack.allocations() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert stack.leaked() == []
    assert any("schedule CleanupFunction" in line and '"released": 1' in line for line in stack.lines)
