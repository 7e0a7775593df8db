"""Tenants through the API function and the workflow (moto's engine, the real
handlers, the HostedAI emulator): who may call, what each tenant's records
are keyed by, what one tenant can never get of another's, and quotas."""

from __future__ import annotations

import json

import boto3
import httpx
import pytest

from tests.conftest import load_event, load_handler


def api_call(lambda_context, body: dict | None = None, *, tenant: str | None = "acme", tier: str = "pro",
             verdict: dict | None = None, key: str | None = None, path: str = "/v2/process") -> dict:
    """The API function's event as API Gateway passes it on after the
    authorizer: `verdict` is the authorizer's context."""
    event = json.loads(json.dumps(load_event("api")))
    event["body"] = json.dumps(body or {"text": "Hello"})
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    context = verdict if verdict is not None else ({"tenant_id": tenant, "tier": tier} if tenant else {})
    event["requestContext"]["authorizer"] = {"lambda": context}
    if key is not None:
        event["headers"]["idempotency-key"] = key
    return load_handler("api").lambda_handler(event, lambda_context)


def body(response: dict) -> dict:
    return json.loads(response["body"])


def emulator_calls(emulator) -> dict:
    return httpx.get(f"{emulator.base_url}/_emulator/stats").json()["calls"]


def held(emulator) -> list:
    return httpx.get(f"{emulator.base_url}/_emulator/allocations").json()["allocations"]


def table(aws, logical_id: str) -> str:
    return aws.tables[logical_id].name


def scan(aws, logical_id: str) -> list[dict]:
    return boto3.client("dynamodb").scan(TableName=table(aws, logical_id))["Items"]


# --- who may call ----------------------------------------------------------------


@pytest.mark.parametrize(("verdict", "reason"), [
    ({}, "missing_api_key"),  # no verdict at all: refused, never let through
    ({"auth_error": "missing_api_key"}, "missing_api_key"),
    ({"auth_error": "invalid_api_key"}, "invalid_api_key"),
    ({"auth_error": "tenant_disabled", "tenant_id": "acme"}, "tenant_disabled"),
])
def test_no_tenant_no_work_401_with_a_json_error(engine, emulator, lambda_context, verdict, reason):
    response = api_call(lambda_context, verdict=verdict)
    assert response["statusCode"] == 401
    assert response["headers"]["WWW-Authenticate"] == 'Bearer realm="harpoon"'
    error = body(response)["error"]
    assert error["code"] == "unauthorized" and error["details"] == {"reason": reason} and error["message"]
    assert engine.calls == [] and emulator_calls(emulator)["allocate"] == 0


def test_every_answer_carries_an_x_request_id(engine, emulator, lambda_context):
    refused = api_call(lambda_context, verdict={})
    assert refused["headers"]["X-Request-Id"] == "apigw-" + load_event("api")["requestContext"]["requestId"]
    invalid = api_call(lambda_context, {"text": ""})
    assert invalid["statusCode"] == 422 and invalid["headers"]["X-Request-Id"].startswith("apigw-")
    served = api_call(lambda_context, {"text": "Hello"})
    assert served["headers"]["X-Request-Id"] == body(served)["request_id"]
    health = load_handler("api").lambda_handler(load_event("api_health"), lambda_context)
    assert health["headers"]["X-Request-Id"].startswith("apigw-")
    emulator_fault = {"inference": {"error_rate": 1.0, "status": 400}}
    httpx.post(f"{emulator.base_url}/_emulator/faults", json=emulator_fault)
    failed = api_call(lambda_context, {"text": "Hello"})
    assert failed["statusCode"] == 502
    assert failed["headers"]["X-Request-Id"] == body(failed)["error"]["details"]["request_id"]


def test_a_key_that_cannot_be_checked_is_503_with_retry_after(engine, lambda_context):
    response = api_call(lambda_context, verdict={"auth_error": "auth_unavailable"})
    assert (response["statusCode"], response["headers"]["Retry-After"]) == (503, "1")
    assert body(response)["error"]["code"] == "auth_unavailable" and engine.calls == []


def test_health_needs_no_key(engine, lambda_context):
    response = load_handler("api").lambda_handler(load_event("api_health"), lambda_context)
    assert response["statusCode"] == 200


def test_the_authorizer_function_answers_from_the_tenants_table(aws, lambda_context):
    from harpoon import deps

    _, key = deps.tenants().create("acme", "basic")
    authorizer = load_handler("authorizer")
    event = json.loads(json.dumps(load_event("authorizer")))
    event["headers"]["x-api-key"] = key
    assert authorizer.lambda_handler(event, lambda_context) == {
        "isAuthorized": True, "context": {"tenant_id": "acme", "tier": "basic"}}
    event["headers"].pop("x-api-key")
    event["headers"]["authorization"] = f"Bearer {key}"
    assert authorizer.lambda_handler(event, lambda_context)["context"]["tenant_id"] == "acme"
    event["headers"]["authorization"] = "Bearer hpn_not-a-key"
    assert authorizer.lambda_handler(event, lambda_context)["context"] == {"auth_error": "invalid_api_key"}


# --- isolation -------------------------------------------------------------------


@pytest.fixture
def log_lines(monkeypatch):
    """Every JSON line the functions' Powertools loggers write (their handlers
    hold the stdout of their import time, so capsys cannot see them)."""
    import io
    import logging

    from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

    for step in ("api", "classify", "allocate", "infer", "release"):
        load_handler(step)  # their loggers exist before their streams are swapped
    buffer = io.StringIO()
    for logger in [logging.getLogger(name) for name in list(logging.root.manager.loggerDict)]:
        for handler in getattr(logger, "handlers", []):
            if isinstance(handler.formatter, LambdaPowertoolsFormatter) and hasattr(handler, "stream"):
                monkeypatch.setattr(handler, "stream", buffer)
    return lambda: [json.loads(line) for line in buffer.getvalue().splitlines() if line.startswith("{")]


def test_every_record_and_log_line_of_a_request_carries_its_tenant(engine, emulator, lambda_context, aws, log_lines):
    response = api_call(lambda_context, {"text": "Hello"}, tenant="acme", key="order-1")
    assert response["statusCode"] == 200, response
    request_id = body(response)["request_id"]
    assert request_id.startswith("req-acme-")  # execution name, lease key
    lease = next(item for item in scan(aws, "LeasesTable") if item["lease_id"]["S"] == request_id)
    assert lease["tenant_id"]["S"] == "acme"
    assert all(item["pk"]["S"].split("#")[1] == "acme" for item in scan(aws, "UsageTable"))
    ours = [line for line in log_lines() if line.get("request_id", "").startswith(request_id)]
    assert {line["message"] for line in ours} >= {"classified", "allocated", "inferred", "released", "processed"}
    assert all(line.get("tenant_id") == "acme" for line in ours), [line for line in ours if line.get("tenant_id") != "acme"]


def test_one_tenants_idempotent_result_is_never_replayed_to_another(engine, emulator, lambda_context):
    first = api_call(lambda_context, {"text": "Hello"}, tenant="acme", key="order-42")
    theirs = api_call(lambda_context, {"text": "Hello"}, tenant="globex", key="order-42")  # same key, same body
    assert first["statusCode"] == theirs["statusCode"] == 200
    assert "Idempotent-Replayed" not in theirs["headers"]
    assert body(theirs)["request_id"].startswith("req-globex-")
    assert body(theirs)["allocation"]["allocation_id"] != body(first)["allocation"]["allocation_id"]
    assert emulator_calls(emulator)["allocate"] == 2  # each ran its own workflow
    again = api_call(lambda_context, {"text": "Hello"}, tenant="acme", key="order-42")
    assert again["headers"]["Idempotent-Replayed"] == "true" and body(again) == body(first)


def test_one_tenants_warm_gpu_is_never_reused_by_another(engine, emulator, lambda_context, monkeypatch):
    from harpoon import deps

    monkeypatch.setenv("WARM_IDLE_SECONDS", "30")
    deps.reset()
    acme = body(api_call(lambda_context, {"text": "Hello"}, tenant="acme"))
    assert acme["release"]["status"] == "kept_warm"
    globex = body(api_call(lambda_context, {"text": "Hello"}, tenant="globex"))
    assert globex["allocation"]["warm"] is False
    assert globex["allocation"]["allocation_id"] != acme["allocation"]["allocation_id"]
    acme_again = body(api_call(lambda_context, {"text": "Hello"}, tenant="acme"))
    assert acme_again["allocation"]["warm"] is True
    assert acme_again["allocation"]["allocation_id"] == acme["allocation"]["allocation_id"]


def test_the_release_step_never_releases_another_tenants_allocation(engine, emulator, lambda_context):
    from harpoon import deps
    from harpoon.errors import StepInputError

    finished = body(api_call(lambda_context, {"text": "Hello"}, tenant="acme"))
    assert finished["release"]["status"] == "released" and held(emulator) == []
    # A live allocation of acme's, then a Release for globex naming it.
    allocate = load_handler("allocate").lambda_handler(
        {"request_id": "req-acme-live", "model": "gemma-270m", "tenant_id": "acme"}, lambda_context)
    assert len(held(emulator)) == 1
    with pytest.raises(StepInputError, match="not tenant globex's"):
        load_handler("release").lambda_handler(
            {"request_id": "req-globex-x", "tenant_id": "globex", "allocation": allocate}, lambda_context)
    # Without Allocate's output, Release looks the lease up by request id:
    # acme's lease is not globex's to touch.
    out = load_handler("release").lambda_handler({"request_id": "req-acme-live", "tenant_id": "globex"}, lambda_context)
    assert out["status"] == "nothing_to_release" and len(held(emulator)) == 1
    assert deps.leases().get("req-acme-live").tenant_id == "acme"


# --- quotas ------------------------------------------------------------------------


def test_a_full_request_is_charged_to_its_tenant_and_gives_its_slot_back(engine, emulator, lambda_context):
    from harpoon import deps

    response = api_call(lambda_context, {"text": "Hello there", "max_tokens": 16}, tenant="acme")
    answer = body(response)
    used = deps.quotas().usage("acme")
    assert used.requests == 1
    assert used.tokens == len(b"Hello there") // 4 + answer["inference"]["tokens_generated"]
    timings = answer["timings_ms"]
    assert used.gpu_seconds == pytest.approx((timings["allocate"] + timings["infer"] + timings["release"]) / 1000, abs=1e-3)
    assert used.cost_usd == pytest.approx(used.gpu_seconds * 0.00004, abs=1e-7)  # gemma-270m's catalog price
    assert deps.quotas().in_flight("acme") == 0
    assert deps.quotas().usage("globex").requests == 0


def test_no_free_slot_is_429_with_retry_after_and_the_limit_before_any_workflow(engine, emulator, lambda_context):
    from harpoon import deps
    from harpoon.tenancy import quota_for

    deps.quotas().acquire("tiny", "req-tiny-busy", quota_for("free"), hold_seconds=300)  # free: 1 at a time
    response = api_call(lambda_context, {"text": "Hello"}, tenant="tiny", tier="free")
    assert (response["statusCode"], response["headers"]["Retry-After"]) == (429, "1")
    error = body(response)["error"]
    assert error["code"] == "quota_exceeded"
    assert {k: error["details"][k] for k in ("limit", "limit_value", "current", "tier")} == {
        "limit": "concurrent_allocations", "limit_value": 1, "current": 1, "tier": "free"}
    assert engine.calls == [] and emulator_calls(emulator)["allocate"] == 0
    assert api_call(lambda_context, {"text": "Hello"}, tenant="other", tier="free")["statusCode"] == 200


def test_fifty_concurrent_requests_through_the_api_never_overshoot_the_slots(aws, monkeypatch):
    """The API's own quota path (run_request) under 50 requests released
    together, on the template's UsageTable with DynamoDB's per-item write
    atomicity; the workflow is a fake that holds its slot a while and counts
    how many run at once."""
    import threading
    import time

    from harpoon import api, deps
    from harpoon.models import ProcessRequest
    from local.ddb_atomic import serialise_writes
    from tests.fakes import at_once

    serialise_writes()
    running, peak, lock = [0], [0], threading.Lock()

    def workflow(request, started, tenant, base_id, choice):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.3)
        with lock:
            running[0] -= 1
        return {"request_id": base_id, "route": {"model": "gemma-270m"}, "inference": {"tokens_generated": 1},
                "allocation": {"pool_id": "gpu-pool-1"},
                "timings_ms": {"allocate": 1.0, "infer": 1.0, "release": 1.0}}

    monkeypatch.setattr(api, "_run_workflow", workflow)

    def one(_):
        try:
            api.run_request(ProcessRequest(text="Hello"), 0.0, api.Caller("acme", "pro"))
            return 200
        except api.ApiError as exc:
            return (exc.status, exc.details["limit"])

    outcomes = at_once(50, one)
    assert peak[0] == 10  # pro: 10 concurrent allocations, and all 10 were used
    assert outcomes.count(200) >= 10 and set(outcomes) == {200, (429, "concurrent_allocations")}
    assert deps.quotas().in_flight("acme") == 0
    assert deps.quotas().usage("acme").requests == outcomes.count(200)


class Runner:
    """A workflow runner that answers what the test says (an outcome or an
    exception)."""

    def __init__(self, outcome) -> None:
        self.outcome = outcome

    def run(self, name, payload, timeout_seconds):
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return self.outcome


@pytest.mark.parametrize(("outcome", "status", "kept"), [
    # The workflow ended (here with a step timeout: a 504 all the same): the slot is given back.
    ("StepTimeoutError", 504, False),
    # The wait ended, the execution goes on with its GPU: the slot stays taken.
    ("wait", 504, True),
    # Another run of this request is in flight (EXPRESS): the slot stays its.
    ("RequestInFlightError", 409, True),
    # Step Functions could not be reached: nothing ran, the slot this call took goes back.
    ("unreachable", 503, False),
])
def test_a_slot_goes_back_exactly_when_the_request_is_over(aws, monkeypatch, outcome, status, kept):
    from harpoon import api, deps
    from harpoon.adapters.workflow import WorkflowResult, WorkflowStartError, WorkflowTimeout
    from harpoon.models import ProcessRequest

    answers = {"wait": WorkflowTimeout(None, 25.0), "unreachable": WorkflowStartError("ThrottlingException")}
    result = answers.get(outcome) or WorkflowResult("FAILED", None, outcome, "{}", "arn")
    monkeypatch.setattr(api, "_runner", lambda: Runner(result))
    with pytest.raises(api.ApiError) as refused:
        api.run_request(ProcessRequest(text="Hello"), 0.0, api.Caller("acme", "free"), "req-acme-1")
    assert refused.value.status == status
    assert deps.quotas().in_flight("acme") == (1 if kept else 0)


def test_a_retry_never_gives_back_the_slot_of_a_run_still_going(aws, monkeypatch):
    from harpoon import api, deps
    from harpoon.adapters.workflow import WorkflowResult, WorkflowStartError, WorkflowTimeout
    from harpoon.models import ProcessRequest

    def attempt(outcome):
        monkeypatch.setattr(api, "_runner", lambda: Runner(outcome))
        with pytest.raises(api.ApiError) as refused:
            api.run_request(ProcessRequest(text="Hello"), 0.0, api.Caller("acme", "free"), "req-acme-1")
        return refused.value.status

    assert attempt(WorkflowTimeout(None, 25.0)) == 504  # the first run goes on, holding the slot
    # Retries of the same request: one cannot reach Step Functions, one finds it in flight.
    assert attempt(WorkflowStartError("ThrottlingException")) == 503
    assert attempt(WorkflowResult("FAILED", None, "RequestInFlightError", "{}", "arn")) == 409
    assert deps.quotas().in_flight("acme") == 1
    # The run ended: the next retry sees its outcome and gives the slot back.
    assert attempt(WorkflowResult("FAILED", None, "UpstreamUnavailableError", "{}", "arn")) == 502
    assert deps.quotas().in_flight("acme") == 0


def test_a_spent_budget_is_429_until_next_month(engine, emulator, lambda_context):
    from harpoon import deps

    deps.quotas().charge("tiny", tokens=1, gpu_seconds=0, cost_usd=5.0)  # free: 5 USD a month
    response = api_call(lambda_context, {"text": "Hello"}, tenant="tiny", tier="free")
    assert response["statusCode"] == 429
    details = body(response)["error"]["details"]
    assert details["limit"] == "usd_per_month" and int(response["headers"]["Retry-After"]) > 0
    assert details["retry_after_seconds"] == int(response["headers"]["Retry-After"])


def test_a_failed_request_gives_its_slot_back(engine, emulator, lambda_context):
    from harpoon import deps

    httpx.post(f"{emulator.base_url}/_emulator/faults", json={"inference": {"error_rate": 1.0, "status": 500}})
    assert api_call(lambda_context, {"text": "Hello"}, tenant="acme")["statusCode"] == 502
    assert deps.quotas().in_flight("acme") == 0
