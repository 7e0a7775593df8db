"""OpenAI's chat completions shape over Harpoon: POST /v1/chat/completions
and GET /v1/models.

One code path: a chat request becomes the body of POST /v2/process (the same
validation, quotas, idempotency and workflow), and its answer becomes a
`chat.completion`, with Harpoon's routing decision in an extra `harpoon`
field. `model` is "auto" (the classifier decides) or a catalog id. Errors
keep Harpoon's status codes in OpenAI's shape:
{"error": {"message", "type", "param", "code"}}.

The messages become one prompt: a lone user message is sent as it is (so the
endpoint routes and answers exactly as /v2/process does); a conversation is
sent as "Role: content" paragraphs ending with "Assistant:", and the whole
of it is what the classifier reads.
"""

from __future__ import annotations

import time

ROLES = {"system": "System", "developer": "System", "user": "User", "assistant": "Assistant"}
# Read here: passed on to the workflow (model, messages, the token limit and
# sampling), or checked (stream, n); `user` is accepted and not used.
PASSED = {"model", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p", "stop", "user", "stream",
          "n"}
# Accepted, with no effect on a completion Harpoon serves.
IGNORED = {"frequency_penalty", "presence_penalty", "seed", "metadata", "store", "stream_options", "service_tier",
           "parallel_tool_calls", "logit_bias", "logprobs", "top_logprobs", "reasoning_effort", "prompt_cache_key",
           "safety_identifier", "verbosity"}
# These values ask for what Harpoon does anyway.
HARMLESS = {"response_format": {"type": "text"}, "tool_choice": "none"}
# Asking for these gets a 400 (Harpoon serves text completions without tools).
UNSUPPORTED = {"tools", "tool_choice", "functions", "function_call", "response_format", "audio", "modalities",
               "prediction", "web_search_options"}


class ChatRequestError(Exception):
    """A chat request Harpoon cannot take: 400 with OpenAI's `param`."""

    def __init__(self, code: str, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.param = code, message, param


def process_body(data: dict) -> dict:
    """The body of POST /v2/process this chat request stands for, or
    ChatRequestError. Types and ranges of the passed fields are left to
    ProcessRequest's validation (its 422 names OpenAI's fields: see param_of)."""
    unsupported = sorted(k for k in data if k in UNSUPPORTED and data[k] not in (None, [], False, HARMLESS.get(k)))
    if unsupported:
        raise ChatRequestError("unsupported_parameter",
                               f"{', '.join(unsupported)} not supported: Harpoon serves plain text completions",
                               unsupported[0])
    unknown = sorted(k for k in data if k not in PASSED | IGNORED | UNSUPPORTED)
    if unknown:
        raise ChatRequestError("unknown_parameter", f"unknown parameter(s): {', '.join(unknown)}", unknown[0])
    if data.get("stream") not in (None, False):
        raise ChatRequestError("stream_unsupported",
                               "stream: true is not supported yet; send stream: false (or leave it out)", "stream")
    if data.get("n") not in (None, 1):
        raise ChatRequestError("unsupported_parameter", "n must be 1: Harpoon returns one choice", "n")
    if "model" not in data:
        raise ChatRequestError("missing_parameter", 'model is required: "auto" or a catalog model id', "model")
    body = {"text": prompt_of(data.get("messages")), "model": data["model"]}
    max_tokens = data.get("max_completion_tokens")
    if max_tokens is None:
        max_tokens = data.get("max_tokens")
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    for name in ("temperature", "top_p"):
        if data.get(name) is not None:
            body[name] = data[name]
    stop = data.get("stop")
    if stop is not None:
        body["stop"] = [stop] if isinstance(stop, str) else stop
    return body


def prompt_of(messages: object) -> str:
    if not isinstance(messages, list) or not messages:
        raise ChatRequestError("invalid_messages", "messages must be a non-empty array of {role, content}",
                               "messages")
    turns = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise ChatRequestError("invalid_messages", f"messages[{i}] must be an object", f"messages[{i}]")
        role = message.get("role")
        if not isinstance(role, str) or role not in ROLES:
            raise ChatRequestError(
                "invalid_messages", f"messages[{i}].role must be one of {sorted(ROLES)}, got {role!r}"
                + (" (Harpoon serves no tools)" if role in ("tool", "function") else ""), f"messages[{i}].role")
        turns.append((role, _text_of(message.get("content"), i)))
    if not any(role == "user" for role, _ in turns):
        raise ChatRequestError("invalid_messages", "messages must contain a user message", "messages")
    if len(turns) == 1:
        return turns[0][1]
    return "\n\n".join(f"{ROLES[role]}: {text}" for role, text in turns) + "\n\nAssistant:"


def _text_of(content: object, i: int) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for j, part in enumerate(content):
            if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                raise ChatRequestError("invalid_messages",
                                       f"messages[{i}].content[{j}] must be a text part; Harpoon takes text only",
                                       f"messages[{i}].content[{j}]")
            texts.append(part["text"])
        return "\n".join(texts)
    raise ChatRequestError("invalid_messages", f"messages[{i}].content must be a string or an array of text parts",
                           f"messages[{i}].content")


# ProcessRequest's field -> the chat request's.
_PARAMS = {"text": "messages", "max_tokens": "max_tokens"}


def param_of(field: str | None) -> str | None:
    if not field:
        return None
    head, _, rest = field.partition(".")
    return _PARAMS.get(head, head) + (f".{rest}" if rest else "")


def completion(body: dict, *, max_tokens: int, prompt_tokens: int, created: int | None = None) -> dict:
    """The chat.completion for a /v2/process success body. `max_tokens`: the
    limit the generation ran under (to tell "length" from "stop")."""
    inference = body["inference"]
    generated = int(inference["tokens_generated"])
    return {
        "id": f"chatcmpl-{body['request_id']}",
        "object": "chat.completion",
        "created": int(time.time()) if created is None else created,
        "model": body["route"]["model"],  # the catalog model that served (a fallback says so in harpoon.route)
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": inference["text"], "refusal": None},
            "finish_reason": "length" if generated >= max_tokens else "stop",
            "logprobs": None,
        }],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": generated,
                  "total_tokens": prompt_tokens + generated},
        "system_fingerprint": None,
        "harpoon": {key: body[key] for key in ("request_id", "classification", "route", "allocation", "release",
                                               "timings_ms")},
    }


_TYPES = {401: "authentication_error", 403: "permission_error", 429: "rate_limit_error"}


def error_body(status: int, code: str, message: str, details: dict) -> dict:
    """Harpoon's error in OpenAI's shape (the status code stays Harpoon's)."""
    field = details.get("field") or details.get("param")
    problems = details.get("problems")
    if not field and problems:
        field = problems[0].get("field")
    kind = _TYPES.get(status) or ("server_error" if status >= 500 else "invalid_request_error")
    return {"error": {"message": message, "type": kind, "param": param_of(field), "code": code}}


def models(catalog) -> dict:
    """GET /v1/models: "auto" and the catalog. Harpoon's catalog has no
    creation dates: `created` is 0."""
    entries = [{"id": "auto", "object": "model", "created": 0, "owned_by": "harpoon",
                "description": "the classifier picks the model per request"}]
    for spec in catalog.models.values():
        entries.append({"id": spec.id, "object": "model", "created": 0, "owned_by": "harpoon",
                        "max_tokens": spec.max_tokens, "min_tflops": spec.min_tflops, "vram_mb": spec.vram_mb})
    return {"object": "list", "data": entries}
