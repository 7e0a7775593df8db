"""POST /v1/chat/completions and GET /v1/models through the API function and
the real state machine (moto's engine, the HostedAI emulator): the same path
as /v2/process, in OpenAI's shapes."""

from __future__ import annotations

import json

import pytest

from tests.conftest import load_event, load_handler


def call(lambda_context, method: str, path: str, body: object = None, *, tenant: str | None = "demo",
         headers: dict | None = None) -> dict:
    event = json.loads(json.dumps(load_event("api")))
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["requestContext"]["http"]["method"] = method
    event["routeKey"] = event["requestContext"]["routeKey"] = f"{method} {path}"
    event["body"] = None if body is None else (body if isinstance(body, str) else json.dumps(body))
    event["headers"].update(headers or {})
    if tenant is None:
        event["requestContext"].pop("authorizer")
    else:
        event["requestContext"]["authorizer"]["lambda"]["tenant_id"] = tenant
    return load_handler("api").lambda_handler(event, lambda_context)


def chat(lambda_context, **fields) -> dict:
    return call(lambda_context, "POST", "/v1/chat/completions",
                {"model": "auto", "messages": [{"role": "user", "content": "Hello"}], **fields})


def test_a_chat_completion_is_served_and_says_how_it_was_routed(engine, emulator, lambda_context):
    response = chat(lambda_context, max_tokens=16)
    assert response["statusCode"] == 200, response
    done = json.loads(response["body"])
    assert done["object"] == "chat.completion" and done["model"] == "gemma-270m"
    assert done["id"] == f"chatcmpl-{done['harpoon']['request_id']}"
    [choice] = done["choices"]
    assert choice["message"]["role"] == "assistant" and choice["message"]["content"]
    assert choice["finish_reason"] in ("stop", "length")
    assert done["usage"]["completion_tokens"] <= 16
    assert done["harpoon"]["classification"]["tier"] == "simple"
    headers = response["headers"]
    assert headers["x-harpoon-model"] == "gemma-270m" and headers["x-harpoon-degraded"] == "false"
    assert headers["X-Request-Id"] == done["harpoon"]["request_id"]


def test_a_catalog_model_and_a_conversation_serve_too(engine, emulator, lambda_context):
    response = call(lambda_context, "POST", "/v1/chat/completions", {
        "model": "qwen-30b", "max_completion_tokens": 8, "stop": "zzz", "temperature": 0.1,
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]})
    assert response["statusCode"] == 200, response
    done = json.loads(response["body"])
    assert done["model"] == "qwen-30b" and done["harpoon"]["route"]["basis"] == "explicit"


def error_of(response: dict) -> tuple[int, dict]:
    return response["statusCode"], json.loads(response["body"])["error"]


@pytest.mark.parametrize("fields, status, code, param", [
    ({"model": "gpt-4o"}, 400, "unknown_model", "model"),
    ({"messages": []}, 400, "invalid_messages", "messages"),
    ({"messages": [{"role": "user", "content": ""}]}, 422, "validation_error", "messages"),
    ({"stream": True}, 400, "stream_unsupported", "stream"),
    ({"temperature": 3}, 422, "validation_error", "temperature"),
    ({"max_tokens": 100_000}, 422, "validation_error", "max_tokens"),
])
def test_errors_are_in_openai_shape_with_harpoons_status(engine, emulator, lambda_context, fields, status, code,
                                                         param):
    got_status, error = error_of(chat(lambda_context, **fields))
    assert (got_status, error["code"], error["param"]) == (status, code, param)
    assert error["type"] == "invalid_request_error" and error["message"]


def test_a_missing_key_and_a_bad_body_are_in_openai_shape_too(engine, lambda_context):
    status, error = error_of(call(lambda_context, "POST", "/v1/chat/completions", {"model": "auto"}, tenant=None))
    assert (status, error["type"], error["code"]) == (401, "authentication_error", "unauthorized")
    status, error = error_of(call(lambda_context, "POST", "/v1/chat/completions", "{not json"))
    assert (status, error["code"]) == (400, "invalid_json")
    status, error = error_of(call(lambda_context, "POST", "/v1/chat/completions", {"model": "auto"},
                                  headers={"content-type": "text/plain"}))
    assert (status, error["code"]) == (415, "unsupported_media_type")


def test_the_model_list_is_auto_and_the_catalog(lambda_context):
    response = call(lambda_context, "GET", "/v1/models")
    assert response["statusCode"] == 200
    assert [m["id"] for m in json.loads(response["body"])["data"]] == ["auto", "gemma-270m", "qwen-30b"]
    assert call(lambda_context, "GET", "/v1/models", tenant=None)["statusCode"] == 401


def test_v2_errors_keep_harpoons_own_shape(engine, lambda_context):
    response = call(lambda_context, "POST", "/v2/process", {"text": ""})
    assert set(json.loads(response["body"])["error"]) == {"code", "message", "details"}
