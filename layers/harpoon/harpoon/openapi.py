"""The OpenAPI 3.1 document served at GET /openapi.json (no API key needed).

The request body's schema is generated from the pydantic model the API
validates with, so the two cannot drift; the rest is written here by hand.
Built once per container, on first use.
"""

from __future__ import annotations

from functools import lru_cache

from harpoon import __version__
from harpoon.models import (
    MAX_BODY_BYTES,
    MAX_JSON_DEPTH,
    MAX_STOP_SEQUENCES,
    MAX_TEXT_BYTES,
    MAX_TOKENS_LIMIT,
    ProcessRequest,
)

REF = "#/components/schemas/{model}"


def _ref(name: str) -> dict:
    return {"$ref": REF.format(model=name)}


def _obj(properties: dict, *, required: list[str] | None = None, **extra) -> dict:
    return {"type": "object", "properties": properties, "required": required or list(properties), **extra}


NULLABLE_STRING = {"type": ["string", "null"]}
NUMBER_OR_NULL = {"type": ["number", "null"]}

# Every error status POST /v2/process can answer, with the codes behind it.
# The body is always {"error": {"code", "message", "details"}}.
ERRORS = {
    "400": "Bad request: invalid_json, json_too_deep, invalid_body, unsupported_deployment, unknown_model, "
           "conflicting_model_choice, requirements_not_met, invalid_idempotency_key.",
    "401": "unauthorized: no API key, an unknown one, or a disabled tenant's (details.reason says which).",
    "409": "idempotency_key_reused (same key, another body) or idempotency_in_progress (the first is still running).",
    "413": f"payload_too_large (body over {MAX_BODY_BYTES} bytes) or text_too_large (text over {MAX_TEXT_BYTES} "
           "UTF-8 bytes).",
    "415": "unsupported_media_type: the body must be sent as Content-Type: application/json.",
    "422": "validation_error: a field is missing, of the wrong type or out of range (details.problems names each).",
    "429": "quota_exceeded: the tenant's tier allows no more now (details.limit names the limit).",
    "500": "internal_error: the request failed inside Harpoon.",
    "502": "upstream_error: HostedAI failed after retries.",
    "503": "no_capacity, circuit_open, upstream_busy, workflow_unavailable, service_unavailable or auth_unavailable.",
    "504": "workflow_timeout: the request did not finish in time; its GPU is still released.",
}
RETRY_AFTER_STATUSES = {"409", "429", "503"}


def _schemas() -> dict:
    request = ProcessRequest.model_json_schema(ref_template=REF)
    nested = request.pop("$defs", {})  # Requirements: a component of its own
    classification = _obj({
        "tier": {"type": "string", "enum": ["simple", "complex"]},
        "is_complex": {"type": "boolean"},
        "score": {"type": "number", "minimum": 0, "maximum": 1},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
        "reasons": {"type": "array", "items": {"type": "string"}},
    })
    route = _obj({
        "model": {"type": "string", "description": "The model that served."},
        "requested_model": {"type": "string", "description": "The model chosen before any fallback."},
        "degraded": {"type": "boolean", "description": "True when a fallback served."},
        "reason": {**NULLABLE_STRING, "description": "Why a fallback was taken."},
        "basis": {"type": "string", "enum": ["classifier", "explicit", "requirements"]},
        "explanation": NULLABLE_STRING,
    })
    allocation = _obj({
        "allocation_id": {"type": "string"}, "assigned_gpu": {"type": "string"}, "pool_id": {"type": "string"},
        "warm": {"type": "boolean", "description": "A warm GPU was reused: no HostedAI allocate call."},
    })
    inference = _obj({
        "text": {"type": "string"}, "model_used": {"type": "string"},
        "tokens_generated": {"type": "integer"}, "generation_time_ms": {"type": "number"},
    })
    release = _obj({
        "status": {"type": "string", "enum": ["released", "already_gone", "kept_warm", "nothing_to_release",
                                              "pending_reclaim", "unknown"]},
        "released": {"type": "boolean"},
    })
    timings = _obj({step: NUMBER_OR_NULL for step in ("classify", "allocate", "infer", "release")}
                   | {"total": {"type": "number"}})
    return {
        "ProcessRequest": request,
        **nested,
        "ProcessResponse": _obj({
            "request_id": {"type": "string"},
            "classification": classification,
            "route": route,
            "allocation": allocation,
            "inference": inference,
            "deployment_used": {"type": "string", "const": "hostedai"},
            "release": release,
            "timings_ms": timings,
        }),
        "Health": _obj({
            "status": {"type": "string", "const": "healthy"},
            "version": {"type": "string"},
            "deployment_modes": {"type": "array", "items": {"type": "string"}},
        }),
        "Error": _obj({"error": _obj({
            "code": {"type": "string", "description": "Stable, machine-readable."},
            "message": {"type": "string", "description": "For people: what is wrong and what to do."},
            "details": {"type": "object", "description": "Facts about the error (field, limits, request_id ...)."},
        })}),
        "AsyncAccepted": _obj({
            "request_id": {"type": "string"},
            "status": {"type": "string", "const": "running"},
            "status_url": {"type": "string", "description": "GET it for the result (this tenant's key only)."},
        }),
        "AsyncRequest": _obj({
            "request_id": {"type": "string"},
            "status": {"type": "string", "enum": ["running", "succeeded", "failed"]},
            "status_url": {"type": "string"},
            "result": {**_ref("ProcessResponse"), "description": "succeeded: the body the sync call answers."},
            "error": {"type": "object", "description": "failed: the error the sync call answers "
                                                       "({code, message, details})."},
            "http_status": {"type": "integer", "description": "failed: the status the sync call answers."},
        }, required=["request_id", "status", "status_url"]),
        **_openai_schemas(),
    }


def _openai_schemas() -> dict:
    text_part = _obj({"type": {"type": "string", "const": "text"}, "text": {"type": "string"}})
    message = _obj({
        "role": {"type": "string", "enum": ["system", "developer", "user", "assistant"]},
        "content": {"oneOf": [{"type": "string"}, {"type": "array", "items": text_part}]},
        "name": {"type": "string"},
    }, required=["role", "content"])
    optional_int = {"type": ["integer", "null"], "minimum": 1, "maximum": MAX_TOKENS_LIMIT}
    return {
        "ChatCompletionRequest": _obj({
            "model": {"type": "string", "description": '"auto" (the classifier decides) or a catalog model id.'},
            "messages": {"type": "array", "minItems": 1, "items": message,
                         "description": "A lone user message is the prompt as it is; a conversation becomes "
                                        "\"Role: content\" paragraphs ending with \"Assistant:\"."},
            "max_tokens": optional_int, "max_completion_tokens": optional_int,
            "temperature": {"type": ["number", "null"], "minimum": 0, "maximum": 2},
            "top_p": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
            "stop": {"oneOf": [{"type": "string", "minLength": 1},
                               {"type": "array", "maxItems": MAX_STOP_SEQUENCES,
                                "items": {"type": "string", "minLength": 1}}, {"type": "null"}]},
            "user": {"type": "string"},
            "stream": {"type": "boolean", "description": "true is answered 400 stream_unsupported (not yet)."},
            "n": {"type": "integer", "const": 1},
        }, required=["model", "messages"]),
        "ChatCompletion": _obj({
            "id": {"type": "string"}, "object": {"type": "string", "const": "chat.completion"},
            "created": {"type": "integer"},
            "model": {"type": "string", "description": "The catalog model that served."},
            "choices": {"type": "array", "items": _obj({
                "index": {"type": "integer"},
                "message": _obj({"role": {"type": "string", "const": "assistant"}, "content": {"type": "string"},
                                 "refusal": {"type": "null"}}),
                "finish_reason": {"type": "string", "enum": ["stop", "length"]},
                "logprobs": {"type": "null"},
            })},
            "usage": _obj({"prompt_tokens": {"type": "integer", "description": "Estimated: 4 UTF-8 bytes a token."},
                           "completion_tokens": {"type": "integer"}, "total_tokens": {"type": "integer"}}),
            "system_fingerprint": {"type": "null"},
            "harpoon": {"type": "object", "description": "Harpoon's routing decision: request_id, classification, "
                                                         "route, allocation, release, timings_ms (as /v2/process)."},
        }),
        "ModelList": _obj({"object": {"type": "string", "const": "list"}, "data": {"type": "array", "items": _obj({
            "id": {"type": "string"}, "object": {"type": "string", "const": "model"},
            "created": {"type": "integer"}, "owned_by": {"type": "string"}}, required=["id", "object", "created",
                                                                                      "owned_by"])}}),
        "OpenAIError": _obj({"error": _obj({
            "message": {"type": "string"},
            "type": {"type": "string", "enum": ["invalid_request_error", "authentication_error", "permission_error",
                                                "rate_limit_error", "server_error"]},
            "param": NULLABLE_STRING,
            "code": {"type": "string", "description": "Harpoon's error code (as in /v2/process)."},
        })}),
    }


def _header(description: str, schema: dict | None = None) -> dict:
    return {"description": description, "schema": schema or {"type": "string"}}


def _error_response(status: str, schema: str = "Error") -> dict:
    response = {"description": ERRORS[status], "content": {"application/json": {"schema": _ref(schema)}}}
    if status in RETRY_AFTER_STATUSES:
        response["headers"] = {"Retry-After": _header("Seconds to wait before retrying.", {"type": "integer"})}
    if status == "401":
        response["headers"] = {"WWW-Authenticate": _header('Bearer realm="harpoon"')}
    return response


def _json(schema: dict) -> dict:
    return {"application/json": {"schema": schema}}


@lru_cache(maxsize=1)
def document() -> dict:
    """The OpenAPI document, as a plain dict (built on the first call)."""
    process = {
        "summary": "Classify, allocate a HostedAI GPU, infer, release",
        "operationId": "process",
        "parameters": [{
            "name": "Prefer", "in": "header", "required": False,
            "description": "respond-async: answer 202 at once and run on the STANDARD workflow (or \"mode\": "
                           "\"async\" in the body, which wins over the header).",
            "schema": {"type": "string"},
        }, {
            "name": "Idempotency-Key", "in": "header", "required": False,
            "description": "The same key and body return the first answer without new GPU work; "
                           "the same key with another body is 409.",
            "schema": {"type": "string", "pattern": "^[!-~]{1,255}$"},
        }],
        "requestBody": {
            "required": True,
            "description": f"At most {MAX_BODY_BYTES} bytes, nested at most {MAX_JSON_DEPTH} levels deep.",
            "content": _json(_ref("ProcessRequest")),
        },
        "responses": {
            "200": {
                "description": "The answer, and how it was produced.",
                "headers": {
                    "X-Request-Id": _header("The request's id (as in the body's request_id)."),
                    "Idempotent-Replayed": _header("\"true\" when this answer is a replay for an Idempotency-Key."),
                },
                "content": _json(_ref("ProcessResponse")),
            },
            "202": {
                "description": "Async: started; poll status_url.",
                "headers": {"Location": _header("The status URL."), "X-Request-Id": _header("The request's id.")},
                "content": _json(_ref("AsyncAccepted")),
            },
            **{status: _error_response(status) for status in ERRORS},
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Harpoon",
            "version": __version__,
            "description": "Serverless AI orchestration: classify the request, allocate a HostedAI vGPU, infer, "
                           "release it. Errors are always {\"error\": {\"code\", \"message\", \"details\"}}.",
        },
        "security": [{"apiKey": []}, {"bearer": []}],
        "paths": {
            "/health": {"get": {
                "summary": "Liveness (no API key)", "operationId": "health", "security": [],
                "responses": {"200": {"description": "Healthy.", "content": _json(_ref("Health"))}},
            }},
            "/openapi.json": {"get": {
                "summary": "This document (no API key)", "operationId": "openapi", "security": [],
                "responses": {"200": {"description": "OpenAPI 3.1.", "content": _json({"type": "object"})}},
            }},
            "/v2/process": {"post": process},
            "/v2/requests/{request_id}": {"get": {
                "summary": "An async request's status and, once finished, its result or error",
                "operationId": "requestStatus",
                "parameters": [{"name": "request_id", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {
                    "200": {"description": "running, succeeded (result) or failed (error, http_status).",
                            "content": _json(_ref("AsyncRequest"))},
                    "401": _error_response("401"),
                    "404": {"description": "request_not_found: no such request for this tenant, or expired.",
                            "content": _json(_ref("Error"))},
                },
            }},
            "/v1/chat/completions": {"post": {
                "summary": "OpenAI-compatible chat completion (the same path as /v2/process)",
                "operationId": "chatCompletions",
                "parameters": [p for p in process["parameters"] if p["name"] == "Idempotency-Key"],
                "requestBody": {"required": True, "content": _json(_ref("ChatCompletionRequest"))},
                "responses": {
                    "200": {
                        "description": "A chat.completion, with Harpoon's routing decision in `harpoon`.",
                        "headers": {
                            "X-Request-Id": _header("The request's id."),
                            "x-harpoon-model": _header("The catalog model that served."),
                            "x-harpoon-degraded": _header("\"true\" when a fallback model served."),
                        },
                        "content": _json(_ref("ChatCompletion")),
                    },
                    **{status: _error_response(status, "OpenAIError") for status in ERRORS},
                },
            }},
            "/v1/models": {"get": {
                "summary": "OpenAI-compatible model list: \"auto\" and the catalog", "operationId": "listModels",
                "responses": {"200": {"description": "The models.", "content": _json(_ref("ModelList"))},
                              "401": _error_response("401", "OpenAIError")},
            }},
        },
        "components": {
            "schemas": _schemas(),
            "securitySchemes": {
                "apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"},
                "bearer": {"type": "http", "scheme": "bearer", "description": "The same API key as a bearer token."},
            },
        },
    }
