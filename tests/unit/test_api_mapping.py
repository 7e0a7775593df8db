"""Body validation and outcome mapping of the API, without AWS."""

import contextlib
import json

import pytest

from harpoon.adapters.workflow import WorkflowResult
from harpoon.api import ApiError, parse_process_request, success_body, workflow_failure
from harpoon.models import MAX_TEXT_BYTES

JSON = "application/json"


def body(**fields) -> bytes:
    return json.dumps(fields).encode()


@pytest.mark.parametrize("deployment", ["HostedAI", "hostedai", "hosted_ai", "HOSTED_AI", "hOsTeDaI", None])
def test_every_spelling_of_hostedai_is_accepted(deployment):
    request = parse_process_request(JSON, body(text="Hello", deployment=deployment))
    assert request.text == "Hello"


@pytest.mark.parametrize(
    ("content_type", "raw", "status", "code"),
    [
        (None, body(text="hi"), 415, "unsupported_media_type"),
        ("text/plain", body(text="hi"), 415, "unsupported_media_type"),
        (JSON, b"{not json", 400, "invalid_json"),
        (JSON, b"[1, 2]", 400, "invalid_body"),
        (JSON, body(text="hi", deployment="native"), 400, "unsupported_deployment"),
        (JSON, body(text="hi", deployment=3), 400, "unsupported_deployment"),
        (JSON, body(), 422, "validation_error"),
        (JSON, body(text=""), 422, "validation_error"),
        (JSON, body(text=12), 422, "validation_error"),
        (JSON, body(text="hi", max_tokens=100000), 422, "validation_error"),
        (JSON, body(text="x" * (MAX_TEXT_BYTES + 1)), 413, "text_too_large"),
        (JSON, b" " * (MAX_TEXT_BYTES * 7), 413, "payload_too_large"),
    ],
)
def test_bad_input_gets_a_4xx_that_names_the_problem(content_type, raw, status, code):
    with pytest.raises(ApiError) as info:
        parse_process_request(content_type, raw)
    assert (info.value.status, info.value.code) == (status, code)
    assert info.value.message


def test_unsupported_deployment_lists_accepted_values():
    with pytest.raises(ApiError) as info:
        parse_process_request(JSON, body(text="hi", deployment="native"))
    assert "HostedAI" in info.value.message and info.value.details["accepted"]


def test_validation_error_names_the_field():
    with pytest.raises(ApiError) as info:
        parse_process_request(JSON, body(text="hi", max_tokens="many"))
    assert info.value.details["problems"][0]["field"] == "max_tokens"
    assert "max_tokens" in info.value.message


def test_text_limit_counts_utf8_bytes_not_characters():
    emoji = "\U0001f600" * (MAX_TEXT_BYTES // 4)  # exactly the limit in bytes
    assert parse_process_request(JSON, body(text=emoji)).text == emoji
    with pytest.raises(ApiError):
        parse_process_request(JSON, body(text=emoji + "\u00e9"))


def failed(error, cause=None, status="FAILED"):
    return WorkflowResult(status=status, output=None, error=error, cause=cause, execution_arn="arn")


@pytest.mark.parametrize(
    ("error", "status"),
    [
        ("NoCapacityError", 503),
        ("UpstreamRateLimitedError", 503),
        ("UpstreamUnavailableError", 502),
        ("UpstreamTimeoutError", 502),
        ("UpstreamConnectionError", 502),
        ("UpstreamRejectedError", 502),
        ("UpstreamAuthError", 502),
        ("StepTimeoutError", 504),
        ("WorkflowError", 500),
        ("Sandbox.Timedout", 504),
        ("StepInputError", 500),
        ("Lambda.ServiceException", 503),
        ("Runtime.ExitError", 503),
        ("LeaseLostError", 503),
        ("ValueError", 500),
    ],
)
def test_workflow_errors_map_to_http(error, status):
    api_error = workflow_failure(failed(error, json.dumps({"errorMessage": "detail", "stackTrace": ["secret frame"]})), "req-1")
    assert api_error.status == status
    assert "secret frame" not in api_error.message
    if status == 503:
        assert int(api_error.headers["Retry-After"]) > 0


def test_timed_out_execution_is_504():
    assert workflow_failure(failed(None, status="TIMED_OUT"), "r").status == 504


def test_success_body_has_the_documented_fields():
    output = {
        "request_id": "req-1",
        "classify": {"classification": {"tier": "simple", "is_complex": False, "score": 0.1, "confidence": 0.8, "reasons": ["x"]},
                     "route": {"model": "gemma-270m", "degraded": False, "reason": None}, "max_tokens": 256, "elapsed_ms": 1.0},
        "allocation": {"lease_id": "req-1", "allocation_id": "a", "assigned_gpu": "g", "pool_id": "p", "model": "gemma-270m",
                       "expires_at": None, "elapsed_ms": 2.0},
        "inference": {"text": "t", "model_used": "gemma-270m", "tokens_generated": 4, "generation_time_ms": 3.0, "elapsed_ms": 4.0},
        "release": {"status": "released", "released": True, "elapsed_ms": 5.0},
    }
    result = success_body(output, 20.0)
    assert set(result) >= {"request_id", "classification", "route", "allocation", "inference", "deployment_used", "timings_ms"}
    assert result["allocation"] == {"allocation_id": "a", "assigned_gpu": "g", "pool_id": "p", "warm": False}
    assert result["timings_ms"] == {"classify": 1.0, "allocate": 2.0, "infer": 4.0, "release": 5.0, "total": 20.0}
    assert result["deployment_used"] == "hostedai"


def test_open_circuits_answer_503_with_the_breakers_retry_after():
    cause = json.dumps({"errorMessage": "qwen-30b: circuit open; gemma-270m: circuit open (retry after 17 s)"})
    api_error = workflow_failure(failed("CircuitOpenError", cause), "r")
    assert (api_error.status, api_error.code, api_error.headers["Retry-After"]) == (503, "circuit_open", "17")
    assert api_error.details["retry_after_seconds"] == 17
    assert api_error.message == "no model can serve this request now: qwen-30b: circuit open; gemma-270m: circuit open (retry after 17 s)"


def test_a_request_run_by_another_execution_is_409_in_progress():
    api_error = workflow_failure(failed("RequestInFlightError", json.dumps({"errorMessage": "running"})), "r")
    assert (api_error.status, api_error.code, api_error.headers["Retry-After"]) == (409, "idempotency_in_progress", "1")


def test_an_idempotent_request_that_already_ran_runs_again_under_a_new_id(monkeypatch):
    from harpoon import api
    from harpoon.models import ProcessRequest

    seen = []

    class Runner:
        def run(self, name, payload, timeout_seconds):
            seen.append((name, payload["request_id"]))
            if len(seen) == 1:  # EXPRESS: the first run of this id already ended
                return WorkflowResult("FAILED", None, "RequestAlreadyRunError", "{}", "arn")
            return WorkflowResult("SUCCEEDED", {"request_id": name, **_OUTPUT}, None, None, "arn")

    monkeypatch.setattr(api, "_runner", lambda: Runner())
    monkeypatch.setattr(api, "quota_slot", lambda tenant, request_id: contextlib.nullcontext(api.SlotHolder()))
    monkeypatch.setattr(api, "emit_usage", lambda tenant, body, charge: None)
    body = api.run_request(ProcessRequest(text="hi"), 0.0, api.Caller("t1", "pro"), "req-abc")
    assert seen == [("req-abc", "req-abc"), ("req-abc-2", "req-abc-2")]
    assert body["request_id"] == "req-abc-2"


_OUTPUT = {
    "classify": {"classification": {"tier": "simple", "is_complex": False, "score": 0.1, "confidence": 0.8, "reasons": ["x"]},
                 "route": {"model": "gemma-270m", "degraded": False, "reason": None}, "max_tokens": 256, "elapsed_ms": 1.0},
    "allocation": {"lease_id": "l", "allocation_id": "a", "assigned_gpu": "g", "pool_id": "p", "model": "gemma-270m",
                   "degraded": False, "reason": None, "expires_at": None, "elapsed_ms": 2.0},
    "inference": {"text": "t", "model_used": "gemma-270m", "tokens_generated": 4, "generation_time_ms": 3.0, "elapsed_ms": 4.0},
    "release": {"status": "released", "released": True, "elapsed_ms": 5.0},
}


def _choice(body: dict) -> dict:
    from harpoon.api import resolve_model_choice

    return resolve_model_choice(parse_process_request("application/json", json.dumps(body).encode()))


def test_model_choice_auto_explicit_and_requirements():
    assert _choice({"text": "hi"}) == {"model": "auto", "requirements": None}
    assert _choice({"text": "hi", "model": "qwen-30b"}) == {"model": "qwen-30b", "requirements": None}
    assert _choice({"text": "hi", "requirements": {"min_tflops": 10}}) == {
        "model": "qwen-30b", "requirements": {"min_tflops": 10.0, "min_vram_mb": 0}}
    assert _choice({"text": "hi", "model": "auto", "requirements": {"min_vram_mb": 1024}})["model"] == "gemma-270m"


@pytest.mark.parametrize("body, code, says", [
    ({"text": "hi", "model": "gpt-9"}, "unknown_model", "not in the catalog"),
    ({"text": "hi", "requirements": {"min_tflops": 100}}, "requirements_not_met", "no catalog model meets min_tflops=100"),
    ({"text": "hi", "requirements": {"min_vram_mb": 81920}}, "requirements_not_met", "min_vram_mb=81920"),
    ({"text": "hi", "model": "gemma-270m", "requirements": {"min_tflops": 1}}, "conflicting_model_choice", "not both"),
])
def test_a_model_choice_that_cannot_be_served_is_a_400_that_says_why(body, code, says):
    with pytest.raises(ApiError) as info:
        _choice(body)
    assert (info.value.status, info.value.code) == (400, code) and says in info.value.message


@pytest.mark.parametrize("body", [{"text": "hi", "requirements": {"min_tflops": -1}},
                                  {"text": "hi", "requirements": {"min_vram_mb": "lots"}},
                                  {"text": "hi", "requirements": {"gpus": 2}}, {"text": "hi", "model": 7}])
def test_malformed_model_choices_are_422(body):
    with pytest.raises(ApiError) as info:
        parse_process_request("application/json", json.dumps(body).encode())
    assert info.value.status == 422
