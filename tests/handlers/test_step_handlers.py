"""Each step's handler fed with events/*.json, on moto and the HostedAI emulator."""

from __future__ import annotations

import json

import boto3
import httpx
import pytest

from harpoon import errors
from harpoon.models import (
    AllocateInput,
    AllocateOutput,
    ClassifyInput,
    ClassifyOutput,
    InferInput,
    InferOutput,
    ReleaseInput,
    ReleaseOutput,
)
from tests.conftest import load_event, load_handler

STEP_MODELS = {"classify": ClassifyInput, "allocate": AllocateInput, "infer": InferInput, "release": ReleaseInput}


@pytest.mark.parametrize("step", sorted(STEP_MODELS))
def test_sample_events_validate_against_the_input_models(step):
    STEP_MODELS[step].model_validate(load_event(step))


def lease(stack, lease_id: str) -> dict:
    table = stack.tables["LeasesTable"].name
    item = boto3.client("dynamodb").get_item(TableName=table, Key={"lease_id": {"S": lease_id}}, ConsistentRead=True)
    return item.get("Item", {})


def allocations(emulator) -> list:
    return httpx.get(f"{emulator.base_url}/_emulator/allocations").json()["allocations"]


def faults(emulator, **settings) -> None:
    httpx.post(f"{emulator.base_url}/_emulator/faults", json=settings).raise_for_status()


def test_classify_routes_the_sample_proof_to_the_large_model(aws, lambda_context):
    out = ClassifyOutput.model_validate(load_handler("classify").lambda_handler(load_event("classify"), lambda_context))
    assert out.classification.tier == "complex" and out.route.model == "qwen-30b"
    assert out.max_tokens == 512 and out.classification.reasons


def test_classify_caps_max_tokens_at_the_model_limit(aws, lambda_context):
    event = {"request_id": "r", "text": "Hello there", "max_tokens": 1000}
    out = load_handler("classify").lambda_handler(event, lambda_context)
    assert out["route"]["model"] == "gemma-270m" and out["max_tokens"] == 256


def test_allocate_infer_release_round_trip(aws, emulator, lambda_context):
    event = load_event("allocate")
    allocated = AllocateOutput.model_validate(load_handler("allocate").lambda_handler(event, lambda_context))
    assert [a["allocation_id"] for a in allocations(emulator)] == [allocated.allocation_id]
    assert allocations(emulator)[0]["vram_mb"] == 20480
    record = lease(aws, event["request_id"])
    assert record["status"]["S"] == "ACTIVE" and record["allocation_id"]["S"] == allocated.allocation_id

    infer_event = {**load_event("infer"), "allocation_id": allocated.allocation_id}
    inferred = InferOutput.model_validate(load_handler("infer").lambda_handler(infer_event, lambda_context))
    assert inferred.model_used == "qwen-30b" and inferred.tokens_generated > 0 and inferred.text
    assert "irrational" not in inferred.text  # generated, not echoed

    release_event = {"request_id": event["request_id"], "allocation": allocated.model_dump()}
    released = ReleaseOutput.model_validate(load_handler("release").lambda_handler(release_event, lambda_context))
    assert (released.status, released.released) == ("released", True)
    assert allocations(emulator) == []
    assert lease(aws, event["request_id"])["status"]["S"] == "RELEASED"

    again = load_handler("release").lambda_handler(release_event, lambda_context)
    assert again["status"] == "already_gone"


def test_a_retried_allocate_gets_the_same_allocation(aws, emulator, lambda_context, monkeypatch):
    handler = load_handler("allocate").lambda_handler
    faults(emulator, allocate={"timeout_rate": 1.0, "hang_ms": 3000})
    monkeypatch.setenv("HOSTED_AI_TIMEOUT", "0.3")
    with pytest.raises(errors.UpstreamTimeoutError):
        handler(load_event("allocate"), lambda_context)
    assert lease(aws, load_event("allocate")["request_id"])["status"]["S"] == "PENDING"
    assert len(allocations(emulator)) == 1  # the lost response did allocate
    faults(emulator, allocate={})
    out = handler(load_event("allocate"), lambda_context)
    assert [a["allocation_id"] for a in allocations(emulator)] == [out["allocation_id"]]


def test_a_refused_allocate_marks_the_lease_failed(aws, emulator, lambda_context):
    faults(emulator, allocate={"error_rate": 1.0, "status": 422})
    with pytest.raises(errors.UpstreamRejectedError):
        load_handler("allocate").lambda_handler(load_event("allocate"), lambda_context)
    assert lease(aws, load_event("allocate")["request_id"])["status"]["S"] == "FAILED"


def test_allocate_with_no_capacity_leaves_the_lease_pending_for_a_retry(aws, emulator, lambda_context):
    faults(emulator, allocate={"error_rate": 1.0, "status": 503, "code": "no_capacity"})
    with pytest.raises(errors.NoCapacityError):
        load_handler("allocate").lambda_handler(load_event("allocate"), lambda_context)
    rid = load_event("allocate")["request_id"]
    assert lease(aws, rid)["status"]["S"] == "PENDING" and "pending_keys" not in lease(aws, rid)  # clearly refused
    out = load_handler("release").lambda_handler({"request_id": rid, "allocation": None}, lambda_context)
    assert out["status"] == "nothing_to_release" and lease(aws, rid)["status"]["S"] == "FAILED"


def test_allocate_on_a_finished_lease_is_a_conflict(aws, emulator, lambda_context):
    handler = load_handler("allocate").lambda_handler
    out = handler(load_event("allocate"), lambda_context)
    load_handler("release").lambda_handler({"request_id": out["lease_id"], "allocation": out}, lambda_context)
    with pytest.raises(errors.LeaseConflictError):
        handler(load_event("allocate"), lambda_context)


def test_release_without_an_allocation_flags_a_pending_lease(aws, emulator, lambda_context):
    faults(emulator, allocate={"error_rate": 1.0, "status": 500})
    with pytest.raises(errors.UpstreamUnavailableError):
        load_handler("allocate").lambda_handler(load_event("allocate"), lambda_context)
    rid = load_event("allocate")["request_id"]
    out = load_handler("release").lambda_handler({"request_id": rid, "allocation": None}, lambda_context)
    assert out["status"] == "nothing_to_release"
    assert lease(aws, rid)["status"]["S"] == "ABANDONED"


def test_a_failed_release_keeps_the_lease_for_reclaim_and_a_retry_finishes_it(aws, emulator, lambda_context):
    out = load_handler("allocate").lambda_handler(load_event("allocate"), lambda_context)
    faults(emulator, release={"fail_next": 1, "status": 502})
    event = {"request_id": out["lease_id"], "allocation": out}
    with pytest.raises(errors.UpstreamUnavailableError):
        load_handler("release").lambda_handler(event, lambda_context)
    assert lease(aws, out["lease_id"])["status"]["S"] == "RELEASING"
    assert load_handler("release").lambda_handler(event, lambda_context)["status"] == "released"
    assert lease(aws, out["lease_id"])["status"]["S"] == "RELEASED"
    assert allocations(emulator) == []


def test_bad_step_input_is_a_named_error(aws, lambda_context):
    with pytest.raises(errors.StepInputError):
        load_handler("infer").lambda_handler({"request_id": "r"}, lambda_context)


def test_wrong_hostedai_key_is_a_permanent_auth_error(aws, emulator, lambda_context):
    arn = aws.functions["AllocateFunction"].environment["HOSTED_AI_SECRET_ARN"]
    boto3.client("secretsmanager").put_secret_value(SecretId=arn, SecretString=json.dumps({"api_key": "wrong"}))
    with pytest.raises(errors.UpstreamAuthError) as info:
        load_handler("allocate").lambda_handler(load_event("allocate"), lambda_context)
    assert "wrong" not in str(info.value)


def test_health_event(aws, lambda_context):
    response = load_handler("api").lambda_handler(load_event("api_health"), lambda_context)
    assert response["statusCode"] == 200
    assert json.loads(response["body"]) == {"status": "healthy", "version": "0.1.0", "deployment_modes": ["hostedai"]}


def test_api_rejects_a_bad_body_before_starting_anything(aws, lambda_context):
    event = {**load_event("api"), "body": '{"text": ""}'}
    response = load_handler("api").lambda_handler(event, lambda_context)
    assert response["statusCode"] == 422
    assert json.loads(response["body"])["error"]["code"] == "validation_error"


def test_api_unknown_route_is_a_json_404(aws, lambda_context):
    event = json.loads(json.dumps(load_event("api")))  # a tenant's request, as the authorizer passes it on
    event["rawPath"] = event["requestContext"]["http"]["path"] = "/nope"
    response = load_handler("api").lambda_handler(event, lambda_context)
    assert response["statusCode"] == 404
    assert json.loads(response["body"])["error"]["code"] == "not_found"


def test_api_sample_event_carries_a_valid_process_body():
    from harpoon.api import parse_process_request

    event = load_event("api")
    assert event["version"] == "2.0" and event["routeKey"] == "POST /v2/process"
    request = parse_process_request(event["headers"]["content-type"], event["body"].encode())
    assert request.text == "Hello"
