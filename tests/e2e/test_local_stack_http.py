"""Harpoon over HTTP, as a user meets it after `make local`."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest

pytestmark = pytest.mark.e2e

COMPLEX = ("Prove step by step that the square root of 2 is irrational, then write a Python function "
           "that checks the proof numerically and explain its complexity.")


def test_health(client):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "healthy", "version": "0.1.0", "deployment_modes": ["hostedai"]}


def test_hello_is_answered_by_the_small_model_and_the_gpu_is_released(client, stack):
    response = client.post("/v2/process", json={"text": "Hello", "deployment": "HostedAI"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert response.headers["x-request-id"] == body["request_id"]
    assert body["classification"]["tier"] == "simple" and body["classification"]["is_complex"] is False
    assert 0 <= body["classification"]["score"] <= 1 and 0 <= body["classification"]["confidence"] <= 1
    assert body["classification"]["reasons"]
    assert {k: body["route"][k] for k in ("model", "requested_model", "degraded", "reason", "basis")} == {
        "model": "gemma-270m", "requested_model": "gemma-270m", "degraded": False, "reason": None, "basis": "classifier"}
    assert body["route"]["explanation"].startswith("classifier: simple (score ")
    assert set(body["allocation"]) == {"allocation_id", "assigned_gpu", "pool_id", "warm"}
    assert body["inference"]["model_used"] == "gemma-270m" and body["inference"]["tokens_generated"] > 0
    assert len(body["inference"]["text"].split()) > 5
    assert body["deployment_used"] == "hostedai"
    assert set(body["timings_ms"]) == {"classify", "allocate", "infer", "release", "total"}
    assert stack.leaked() == []
    assert any("POST /v2/process 200" in line and "model=gemma-270m" in line for line in stack.lines)


def test_complex_prompt_goes_to_the_large_model(client, stack):
    response = client.post("/v2/process", json={"text": COMPLEX, "max_tokens": 64})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["classification"]["tier"] == "complex" and body["route"]["model"] == "qwen-30b"
    assert body["inference"]["tokens_generated"] <= 64
    assert stack.leaked() == []


def test_inference_failure_is_a_502_and_still_releases(client, stack):
    stack.faults(inference={"error_rate": 1.0, "status": 400})  # permanent: no retry waits
    response = client.post("/v2/process", json={"text": "Hello"})
    assert response.status_code == 502
    error = response.json()["error"]
    assert error["code"] == "upstream_error" and error["details"]["error"] == "UpstreamRejectedError"
    assert stack.leaked() == []


def test_transient_inference_failure_is_retried_transparently(client, stack):
    stack.faults(inference={"fail_next": 1, "status": 503})
    response = client.post("/v2/process", json={"text": "Hello"})
    assert response.status_code == 200, response.text
    assert stack.leaked() == []


@pytest.mark.parametrize(
    ("body", "headers", "status", "code"),
    [
        (json.dumps({"deployment": "HostedAI"}), {"content-type": "application/json"}, 422, "validation_error"),
        (json.dumps({"text": ""}), {"content-type": "application/json"}, 422, "validation_error"),
        (json.dumps({"text": "x" * 40000}), {"content-type": "application/json"}, 413, "text_too_large"),
        (json.dumps({"text": 42}), {"content-type": "application/json"}, 422, "validation_error"),
        (json.dumps({"text": "hi", "max_tokens": "ten"}), {"content-type": "application/json"}, 422, "validation_error"),
        (json.dumps({"text": "hi", "deployment": "native"}), {"content-type": "application/json"}, 400, "unsupported_deployment"),
        ('{"text": "hi"', {"content-type": "application/json"}, 400, "invalid_json"),
        ("text=hi", {"content-type": "application/x-www-form-urlencoded"}, 415, "unsupported_media_type"),
        ("", {"content-type": "application/json"}, 400, "invalid_json"),
    ],
)
def test_bad_bodies_get_a_4xx_json_error(client, stack, body, headers, status, code):
    response = client.post("/v2/process", content=body, headers=headers)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code and error["message"] and "details" in error
    assert stack.leaked() == []


def test_unknown_route_is_404(client):
    assert client.get("/v1/nothing").status_code == 404


def test_concurrent_requests_all_succeed_and_release(client, stack):
    texts = ["Hello", COMPLEX, "What is the capital of France?", "Thanks!"] * 2

    def call(text):
        return client.post("/v2/process", json={"text": text, "max_tokens": 32})

    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(call, texts))
    assert [r.status_code for r in responses] == [200] * len(texts), [r.text for r in responses if r.status_code != 200]
    # Cold allocations are one per request; a warm one may serve several, one
    # after another (its claim is exclusive: see the 50-claimer test).
    cold = [r.json()["allocation"]["allocation_id"] for r in responses if not r.json()["allocation"]["warm"]]
    assert len(set(cold)) == len(cold)
    assert stack.leaked() == []


def test_chunked_request_body_is_read(client):
    def chunks():
        yield b'{"text": '
        yield b'"Hello"}'

    response = client.post("/v2/process", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 200, response.text


def test_a_second_request_reuses_the_warm_gpu_of_the_first(client, stack):
    first = client.post("/v2/process", json={"text": "Hello"}).json()
    assert first["release"]["status"] == "kept_warm"
    second = client.post("/v2/process", json={"text": "Hi there"}).json()
    assert second["allocation"]["warm"] is True  # no HostedAI allocate call for it
    assert stack.leaked() == []
