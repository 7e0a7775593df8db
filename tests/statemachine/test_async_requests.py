"""Async mode (issue 9): POST /v2/process with Prefer: respond-async (or
"mode": "async") answers 202, runs on the STANDARD machine (the same ASL),
and GET /v2/requests/{id} answers running, succeeded (the sync body) or
failed (the sync error) to the owning tenant only. The Complete function
finishes a request from Step Functions' status-change event; a GET that
finds the execution ended finishes it itself. Either way exactly once: the
quota slot is given back and a success charged once."""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest

from local.execution_events import status_change_event
from tests.conftest import load_handler
from tests.statemachine.test_openai_endpoint import call

ASYNC = {"prefer": "respond-async"}


def start(lambda_context, body=None, headers=ASYNC, tenant="demo") -> dict:
    response = call(lambda_context, "POST", "/v2/process", body or {"text": "Hello", "max_tokens": 16},
                    headers=headers, tenant=tenant)
    assert response["statusCode"] == 202, response
    accepted = json.loads(response["body"])
    assert accepted["status"] == "running" and accepted["status_url"] == f"/v2/requests/{accepted['request_id']}"
    assert response["headers"]["Location"] == accepted["status_url"]
    return accepted


def get(lambda_context, request_id: str, tenant="demo") -> tuple[int, dict]:
    response = call(lambda_context, "GET", f"/v2/requests/{request_id}", tenant=tenant)
    return response["statusCode"], json.loads(response["body"])


def ended(engine, request_id: str, timeout: float = 30) -> dict:
    arn = f"{engine.async_arn.replace(':stateMachine:', ':execution:')}:{request_id}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        described = engine.sfn.describe_execution(executionArn=arn)
        if described["status"] != "RUNNING":
            return described
        time.sleep(0.02)
    raise AssertionError("the async execution did not end")


def deliver(lambda_context, described: dict) -> dict:
    """What EventBridge does on AWS (and make local here): the Complete function with the status-change event."""
    return load_handler("complete").lambda_handler(status_change_event(described), lambda_context)


def usage(tenant="demo"):
    from harpoon import deps

    return deps.quotas().usage(tenant), deps.quotas().in_flight(tenant)


def test_the_event_finishes_it_and_get_answers_the_sync_body(engine, emulator, lambda_context):
    accepted = start(lambda_context)
    described = ended(engine, accepted["request_id"])
    assert described["status"] == "SUCCEEDED"
    assert deliver(lambda_context, described)["finished_now"] is True
    status, body = get(lambda_context, accepted["request_id"])
    assert status == 200 and body["status"] == "succeeded"
    result = body["result"]
    assert result["request_id"] == accepted["request_id"] and result["route"]["model"] == "gemma-270m"
    assert set(result) == set(json.loads(call(lambda_context, "POST", "/v2/process", {"text": "Hello"})["body"]))
    assert deliver(lambda_context, described)["finished_now"] is False  # redelivered: nothing happens twice
    used, in_flight = usage()
    assert in_flight == 0 and used.requests == 2  # this one and the sync one, each charged once


def test_a_get_finishes_an_ended_request_whose_event_has_not_arrived(engine, emulator, lambda_context):
    accepted = start(lambda_context, {"text": "Hello", "mode": "async"}, headers={})  # the body's mode
    ended(engine, accepted["request_id"])
    status, body = get(lambda_context, accepted["request_id"])
    assert status == 200 and body["status"] == "succeeded"
    assert usage()[1] == 0


def test_while_it_runs_get_says_running(engine, emulator, lambda_context):
    go = threading.Event()
    real = engine.invoke

    def held_infer(name, event):
        if engine.by_arn.get(name) == "infer":
            assert go.wait(30)
        return real(name, event)

    engine.invoke = held_infer
    accepted = start(lambda_context)
    time.sleep(0.3)
    response = call(lambda_context, "GET", accepted["status_url"])
    assert response["statusCode"] == 200 and response["headers"]["Retry-After"] == "1"
    assert json.loads(response["body"]) == {"request_id": accepted["request_id"], "status": "running",
                                            "status_url": accepted["status_url"]}
    assert usage()[1] == 1  # the slot is held while it runs
    go.set()
    ended(engine, accepted["request_id"])
    assert get(lambda_context, accepted["request_id"])[1]["status"] == "succeeded"


def test_a_failed_request_answers_the_sync_error_and_is_not_charged(engine, emulator, lambda_context):
    httpx.post(f"{emulator.base_url}/_emulator/faults", json={"inference": {"error_rate": 1.0, "status": 500}})
    accepted = start(lambda_context)
    described = ended(engine, accepted["request_id"])
    assert described["status"] == "FAILED"
    assert deliver(lambda_context, described)["finished_now"] is True
    status, body = get(lambda_context, accepted["request_id"])
    assert status == 200 and body["status"] == "failed" and body["http_status"] == 502
    assert body["error"]["code"] == "upstream_error" and "result" not in body
    used, in_flight = usage()
    assert in_flight == 0 and used.requests == 0


def test_only_the_owning_tenant_sees_it(engine, emulator, lambda_context):
    accepted = start(lambda_context)
    status, body = get(lambda_context, accepted["request_id"], tenant="other")
    assert status == 404 and body["error"]["code"] == "request_not_found"
    assert get(lambda_context, "req-demo-" + "0" * 32)[0] == 404  # never was
    assert get(lambda_context, "../etc")[0] == 404
    ended(engine, accepted["request_id"])


def test_a_request_longer_than_the_sync_limit_succeeds_async(engine, emulator, lambda_context, monkeypatch):
    from harpoon import deps

    monkeypatch.setenv("SYNC_TIMEOUT_SECONDS", "0.5")
    deps.reset()
    real = engine.invoke

    def slow_infer(name, event):
        if engine.by_arn.get(name) == "infer":
            time.sleep(1.0)  # a long generation
        return real(name, event)

    engine.invoke = slow_infer
    sync = call(lambda_context, "POST", "/v2/process", {"text": "Hello"})
    assert sync["statusCode"] == 504
    accepted = start(lambda_context)
    ended(engine, accepted["request_id"])
    status, body = get(lambda_context, accepted["request_id"])
    assert status == 200 and body["status"] == "succeeded" and body["result"]["inference"]["text"]


class StartsFailing:
    """Step Functions whose first `failures` StartExecution calls fail (throttled);
    `calls` records every execution name asked for."""

    def __init__(self, failures: int) -> None:
        self.failures, self.calls = failures, []

    def install(self, monkeypatch):
        from harpoon.adapters import aws

        real, outer = aws.client, self

        class Client:
            def __init__(self, client):
                self._client, self.exceptions = client, client.exceptions

            def __getattr__(self, name):
                return getattr(self._client, name)

            def start_execution(self, **kwargs):
                outer.calls.append(kwargs["name"])
                if len(outer.calls) <= outer.failures:
                    raise RuntimeError("throttled")
                return self._client.start_execution(**kwargs)

        monkeypatch.setattr(aws, "client", lambda service, **kw: Client(real(service, **kw))
                            if service == "stepfunctions" else real(service, **kw))
        # Restored by the test itself: harpoon_reset's teardown clears the real client cache.
        return lambda: monkeypatch.setattr(aws, "client", real)


def test_an_execution_that_cannot_start_is_a_503_recorded_as_failed_and_frees_its_slot(engine, lambda_context,
                                                                                      monkeypatch):
    restore = StartsFailing(failures=1_000).install(monkeypatch)
    response = call(lambda_context, "POST", "/v2/process", {"text": "Hello"}, headers=ASYNC)
    assert response["statusCode"] == 503 and json.loads(response["body"])["error"]["code"] == "workflow_unavailable"
    request_id = json.loads(response["body"])["error"]["details"]["request_id"]
    restore()
    status, body = get(lambda_context, request_id)
    assert (status, body["status"], body["http_status"]) == (200, "failed", 503)
    assert usage()[1] == 0


@pytest.mark.parametrize("prefer, mode, expected", [
    ("respond-async", None, True), ("wait=5, respond-async", None, True), ("Respond-Async; x=1", None, True),
    ("respond-async", "sync", False), (None, "async", True), ("return=minimal", None, False), (None, None, False)])
def test_async_is_asked_by_the_body_or_the_prefer_header(prefer, mode, expected):
    from harpoon.async_requests import wants_async

    assert wants_async(mode, prefer) is expected


def test_a_retry_after_a_failed_start_runs_it_and_frees_every_slot(engine, emulator, lambda_context, monkeypatch):
    starts = StartsFailing(failures=1)
    restore = starts.install(monkeypatch)
    keyed = {**ASYNC, "idempotency-key": "order-7"}
    first = call(lambda_context, "POST", "/v2/process", {"text": "Hello"}, headers=keyed)
    assert first["statusCode"] == 503 and usage()[1] == 0
    accepted = start(lambda_context, {"text": "Hello"}, headers=keyed)  # the client's retry: the same request
    assert starts.calls == [accepted["request_id"]] * 2
    restore()
    ended(engine, accepted["request_id"])
    status, body = get(lambda_context, accepted["request_id"])
    assert body["status"] == "succeeded" and usage()[1] == 0
    replay = call(lambda_context, "POST", "/v2/process", {"text": "Hello"}, headers=keyed)
    assert replay["statusCode"] == 202 and replay["headers"]["Idempotent-Replayed"] == "true"
    assert usage()[1] == 0 and usage()[0].requests == 1  # charged once


def test_the_same_key_in_another_mode_is_another_request(engine, emulator, lambda_context):
    sync = call(lambda_context, "POST", "/v2/process", {"text": "Hello"}, headers={"idempotency-key": "k-9"})
    assert sync["statusCode"] == 200
    again = call(lambda_context, "POST", "/v2/process", {"text": "Hello"}, headers={**ASYNC, "idempotency-key": "k-9"})
    assert again["statusCode"] == 409
    assert json.loads(again["body"])["error"]["code"] == "idempotency_key_reused"


def test_a_record_whose_execution_never_started_is_answered_failed(engine, lambda_context, aws):
    import boto3

    rid = "req-demo-" + "a" * 32
    old = int(time.time()) - 60
    boto3.client("dynamodb").put_item(TableName=aws.tables["RequestsTable"].name, Item={
        "pk": {"S": f"demo#{rid}"}, "tenant_id": {"S": "demo"}, "request_id": {"S": rid}, "status": {"S": "running"},
        "execution_arn": {"S": f"{engine.async_arn.replace(':stateMachine:', ':execution:')}:{rid}"},
        "created_at": {"N": str(old)}, "expires_at": {"N": str(old + 86400)}})
    status, body = get(lambda_context, rid)
    assert (status, body["status"], body["http_status"], body["error"]["code"]) == (200, "failed", 503,
                                                                                    "workflow_unavailable")


def test_a_stopped_execution_is_answered_failed(engine, emulator, lambda_context):
    go = threading.Event()
    real = engine.invoke

    def held_infer(name, event):
        if engine.by_arn.get(name) == "infer":
            go.wait(5)
        return real(name, event)

    engine.invoke = held_infer
    accepted = start(lambda_context)
    time.sleep(0.3)
    arn = f"{engine.async_arn.replace(':stateMachine:', ':execution:')}:{accepted['request_id']}"
    engine.sfn.stop_execution(executionArn=arn)
    go.set()
    assert ended(engine, accepted["request_id"])["status"] == "ABORTED"
    status, body = get(lambda_context, accepted["request_id"])
    assert (body["status"], body["http_status"], body["error"]["code"]) == ("failed", 503, "workflow_aborted")
    assert usage()[1] == 0


def test_the_complete_function_ignores_another_machines_executions(engine, emulator, lambda_context):
    from harpoon.async_requests import repository

    accepted = start(lambda_context)
    described = ended(engine, accepted["request_id"])
    foreign = {**described, "stateMachineArn": engine.arn}  # as if from the sync machine
    assert deliver(lambda_context, foreign)["finished_now"] is False
    assert repository().get("demo", accepted["request_id"]).status == "running"
    assert deliver(lambda_context, described)["finished_now"] is True
