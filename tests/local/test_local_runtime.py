"""The local stack's pieces: template reading, API Gateway events, the Lambda
Invoke hook and the function workers."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import boto3
import pytest

from local import lambda_hook
from local.apigw import build_event, to_http
from local.functions import FunctionPool
from local.template import Function, Route, UnsupportedTemplate, load_stack

ROOT = Path(__file__).resolve().parents[2]


def stack(overrides=None):
    return load_stack(ROOT, overrides=overrides or {"WorkflowType": "STANDARD"}, prefix="p",
                      secret_arns={"HostedAiApiKeySecret": "arn:aws:secretsmanager:us-east-1:123456789012:secret:s"})


def test_template_functions_get_globals_and_their_own_environment():
    functions = stack().functions
    assert set(functions) == {"ApiFunction", "AuthorizerFunction", "ClassifyFunction", "AllocateFunction", "InferFunction", "ReleaseFunction",
                              "CleanupFunction", "CompleteFunction"}
    allocate = functions["AllocateFunction"]
    assert allocate.environment["POWERTOOLS_SERVICE_NAME"] == "harpoon"  # from Globals
    assert allocate.environment["LEASES_TABLE"] == "p-LeasesTable"
    assert allocate.environment["HOSTED_AI_SECRET_ARN"].startswith("arn:aws:secretsmanager")
    assert allocate.timeout == 12 and allocate.handler == "handler.lambda_handler"
    assert allocate.layer_dirs == [ROOT / "layers" / "harpoon"]
    assert "LEASES_TABLE" not in functions["ClassifyFunction"].environment  # isolation: only what the template gives
    assert allocate.environment["LEASE_TTL_SECONDS"] == "120"  # a Globals variable from a parameter
    api = functions["ApiFunction"]
    assert api.environment["STATE_MACHINE_TYPE"] == "STANDARD"
    assert api.environment["STATE_MACHINE_ARN"] == stack().state_machines["RequestStateMachine"].arn
    assert {(r.method, r.path) for r in api.routes} == {("GET", "/health"), ("GET", "/openapi.json"), ("POST", "/v2/process"),
                                                        ("POST", "/v1/chat/completions"), ("GET", "/v1/models"),
                                                        ("GET", "/v2/requests/{request_id}")}
    assert api.environment["ASYNC_STATE_MACHINE_ARN"] == stack().state_machines["AsyncStateMachine"].arn
    # The Complete function hears the async machine's ended executions (make local delivers them).
    [rule] = functions["CompleteFunction"].execution_rules
    assert rule == (stack().state_machines["AsyncStateMachine"].arn, ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"))


def test_state_machine_definition_has_every_substitution_applied():
    machine = stack().state_machines["RequestStateMachine"]
    definition = json.loads(machine.definition)
    assert "${" not in machine.definition
    assert definition["States"]["Classify"]["Parameters"]["FunctionName"].endswith(":function:p-ClassifyFunction")
    assert machine.type == "STANDARD"


def test_unknown_parameter_override_is_refused():
    with pytest.raises(UnsupportedTemplate):
        stack({"NoSuchParameter": "x"})


def test_unsupported_intrinsics_fail_loudly(tmp_path):
    (tmp_path / "template.yaml").write_text(textwrap.dedent("""
        Resources:
          F:
            Type: AWS::Serverless::Function
            Properties:
              CodeUri: f
              Handler: h.handler
              Environment:
                Variables:
                  X: !Select [0, [a, b]]
    """))
    with pytest.raises(UnsupportedTemplate, match="Fn::Select"):
        load_stack(tmp_path, overrides={}, prefix="p", secret_arns={})


def test_route_matching_with_path_parameters():
    route = Route("GET", "/v2/requests/{request_id}", "F")
    assert route.matches("GET", "/v2/requests/abc") == {"request_id": "abc"}
    assert route.matches("POST", "/v2/requests/abc") is None
    assert route.matches("GET", "/v2/requests/abc/x") is None


def test_api_gateway_v2_event_shape():
    event = build_event("POST", "/v2/process?a=1&a=2", {"content-type": "application/json", "host": "h"}, b'{"text":"hi"}',
                        Route("POST", "/v2/process", "F"), {}, "127.0.0.1")
    assert event["version"] == "2.0" and event["routeKey"] == "POST /v2/process"
    assert event["rawPath"] == "/v2/process" and event["queryStringParameters"] == {"a": "1,2"}
    assert event["body"] == '{"text":"hi"}' and event["isBase64Encoded"] is False
    assert event["requestContext"]["http"]["method"] == "POST"
    binary = build_event("POST", "/x", {"content-type": "application/octet-stream"}, b"\x00\xff", Route("POST", "/x", "F"), {}, "127.0.0.1")
    assert binary["isBase64Encoded"] is True


def test_payload_v2_responses():
    assert to_http({"statusCode": 201, "headers": {"a": "b"}, "body": "x"}) == (201, {"a": "b"}, b"x")
    assert to_http({"ok": 1}) == (200, {"content-type": "application/json"}, b'{"ok": 1}')


def test_invoke_hook_answers_lambda_calls_with_the_function_result():
    session = boto3.Session(region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b")
    seen = []

    def invoke(name, event):
        seen.append((name, event))
        return {"ok": {"echo": event}} if event.get("good") else {"error": {"errorType": "BoomError", "errorMessage": "boom", "stackTrace": []}}

    lambda_hook.install(invoke, session=session)
    client = session.client("lambda", endpoint_url="http://127.0.0.1:9")  # never contacted
    arn = "arn:aws:lambda:us-east-1:123456789012:function:p-ClassifyFunction"
    good = client.invoke(FunctionName=arn, Payload=json.dumps({"good": True}))
    assert json.load(good["Payload"]) == {"echo": {"good": True}} and "FunctionError" not in good
    bad = client.invoke(FunctionName=arn, Payload=b"{}")
    assert bad["FunctionError"] == "Unhandled" and json.load(bad["Payload"])["errorType"] == "BoomError"
    assert seen[0][0] == arn


@pytest.fixture
def pool(tmp_path):
    code = tmp_path / "fn"
    code.mkdir()
    (code / "handler.py").write_text(textwrap.dedent("""
        import os, sys, time
        print("printed output must not break the protocol")
        def lambda_handler(event, context):
            if event.get("sleep"):
                time.sleep(event["sleep"])
            if event.get("crash"):
                os._exit(3)
            if event.get("raise"):
                raise KeyError("missing")
            return {"env": {k: os.environ.get(k) for k in ("ONLY_MINE", "LEAK")}, "pid": os.getpid(),
                    "remaining": context.get_remaining_time_in_millis() > 0}
    """))
    function = Function("Fn", "p-Fn", "arn:aws:lambda:us-east-1:123456789012:function:p-Fn", code, "handler.lambda_handler",
                        timeout=1, memory=128, environment={"ONLY_MINE": "yes"}, layer_dirs=[])
    running = FunctionPool({"Fn": function}, {}, tmp_path / "logs")
    yield running
    running.close()


def test_worker_runs_with_only_its_environment_and_is_reused(pool, monkeypatch):
    monkeypatch.setenv("LEAK", "from-the-parent")
    first = pool.invoke("p-Fn", {})["ok"]
    assert first["env"] == {"ONLY_MINE": "yes", "LEAK": None} and first["remaining"] is True
    assert pool.invoke("Fn", {})["ok"]["pid"] == first["pid"]  # warm


def test_function_errors_timeouts_and_crashes(pool):
    error = pool.invoke("p-Fn", {"raise": True})["error"]
    assert error["errorType"] == "KeyError" and error["stackTrace"]
    assert pool.invoke("p-Fn", {"sleep": 3})["error"]["errorType"] == "Sandbox.Timedout"
    assert pool.invoke("p-Fn", {"crash": True})["error"]["errorType"] == "Runtime.ExitError"
    assert "ok" in pool.invoke("p-Fn", {})  # a fresh worker replaces the dead ones


def test_invocations_past_the_concurrency_limit_are_throttled(pool):
    import threading

    from local.functions import Throttled

    pool.max_concurrency = 1
    pool._slots["Fn"] = threading.Semaphore(1)
    started = threading.Event()
    results = []

    def slow():
        started.set()
        results.append(pool.invoke("Fn", {"sleep": 0.5}))

    thread = threading.Thread(target=slow)
    thread.start()
    started.wait()
    import time

    time.sleep(0.1)
    with pytest.raises(Throttled):
        pool.invoke("Fn", {})
    thread.join()
    assert "ok" in results[0]


def test_throttling_reaches_step_functions_as_a_lambda_service_error():
    from botocore.exceptions import ClientError

    from local.functions import Throttled

    def throttled(name, event):
        raise Throttled("busy")

    session = boto3.Session(region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b")
    lambda_hook.install(throttled, session=session)
    client = session.client("lambda", endpoint_url="http://127.0.0.1:9")
    with pytest.raises(ClientError) as info:
        client.invoke(FunctionName="f", Payload=b"{}")
    assert info.value.response["Error"]["Code"] == "TooManyRequestsException"


def test_schedules_are_read_from_the_template():
    from local.template import rate_seconds

    assert stack().functions["CleanupFunction"].schedules == [60]  # rate(1 minute), through a parameter
    assert rate_seconds("rate(1 hour)") == 3600
    with pytest.raises(UnsupportedTemplate):
        rate_seconds("cron(0 12 * * ? *)")
