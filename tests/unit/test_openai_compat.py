"""harpoon.openai_compat: OpenAI's chat request to /v2/process's body and
back, and Harpoon's errors in OpenAI's shape."""

from __future__ import annotations

import pytest

from harpoon.catalog import load_catalog
from harpoon.openai_compat import ChatRequestError, completion, error_body, models, process_body, prompt_of


def user(text):
    return {"role": "user", "content": text}


def test_a_lone_user_message_is_the_prompt_as_it_is():
    body = process_body({"model": "auto", "messages": [user("Hello")]})
    assert body == {"text": "Hello", "model": "auto"}


def test_a_conversation_becomes_role_paragraphs_ending_with_the_assistant():
    prompt = prompt_of([{"role": "system", "content": "Be brief."}, user("Hi"),
                        {"role": "assistant", "content": "Hello!"},
                        {"role": "user", "content": [{"type": "text", "text": "Prove"}, {"type": "text", "text": "it"}]}])
    assert prompt == "System: Be brief.\n\nUser: Hi\n\nAssistant: Hello!\n\nUser: Prove\nit\n\nAssistant:"


def test_sampling_fields_are_passed_and_a_stop_string_becomes_a_list():
    body = process_body({"model": "qwen-30b", "messages": [user("x")], "max_completion_tokens": 64,
                         "max_tokens": 9, "temperature": 0.3, "top_p": 0.8, "stop": "END", "user": "u-1",
                         "seed": 4, "stream": False, "n": 1})
    assert body == {"text": "x", "model": "qwen-30b", "max_tokens": 64, "temperature": 0.3, "top_p": 0.8,
                    "stop": ["END"]}


def test_parameters_asking_for_what_harpoon_does_anyway_are_accepted():
    body = process_body({"model": "auto", "messages": [user("x")], "response_format": {"type": "text"},
                         "tool_choice": "none", "max_completion_tokens": None, "max_tokens": 7,
                         "prompt_cache_key": "k"})
    assert body == {"text": "x", "model": "auto", "max_tokens": 7}


@pytest.mark.parametrize("data, code, param", [
    ({"model": "auto", "messages": [user("x")], "stream": True}, "stream_unsupported", "stream"),
    ({"model": "auto", "messages": [user("x")], "tools": [{"type": "function"}]}, "unsupported_parameter", "tools"),
    ({"model": "auto", "messages": [user("x")], "n": 2}, "unsupported_parameter", "n"),
    ({"model": "auto", "messages": [user("x")], "temprature": 1}, "unknown_parameter", "temprature"),
    ({"messages": [user("x")]}, "missing_parameter", "model"),
    ({"model": "auto", "messages": []}, "invalid_messages", "messages"),
    ({"model": "auto", "messages": "Hello"}, "invalid_messages", "messages"),
    ({"model": "auto", "messages": [{"role": "system", "content": "x"}]}, "invalid_messages", "messages"),
    ({"model": "auto", "messages": [{"role": "tool", "content": "x"}]}, "invalid_messages", "messages[0].role"),
    ({"model": "auto", "messages": [{"role": {}, "content": "x"}]}, "invalid_messages", "messages[0].role"),  # fuzz
    ({"model": "auto", "messages": [{"role": "user", "content": 3}]}, "invalid_messages", "messages[0].content"),
    ({"model": "auto", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]},
     "invalid_messages", "messages[0].content[0]"),
    ({"model": "auto", "messages": ["hi"]}, "invalid_messages", "messages[0]"),
])
def test_requests_harpoon_cannot_take_say_why_and_name_the_parameter(data, code, param):
    with pytest.raises(ChatRequestError) as refused:
        process_body(data)
    assert (refused.value.code, refused.value.param) == (code, param)


@pytest.mark.parametrize("status, details, kind, param", [
    (400, {"field": "model", "accepted": []}, "invalid_request_error", "model"),
    (413, {"field": "text"}, "invalid_request_error", "messages"),
    (422, {"problems": [{"field": "temperature", "problem": "too big"}]}, "invalid_request_error", "temperature"),
    (401, {"reason": "missing_api_key"}, "authentication_error", None),
    (429, {"limit": "concurrent_allocations"}, "rate_limit_error", None),
    (503, {}, "server_error", None),
])
def test_errors_keep_their_status_in_openai_shape(status, details, kind, param):
    body = error_body(status, "some_code", "what went wrong", details)
    assert body == {"error": {"message": "what went wrong", "type": kind, "param": param, "code": "some_code"}}


def success(tokens: int) -> dict:
    return {"request_id": "req-t-1", "classification": {"tier": "simple"},
            "route": {"model": "gemma-270m", "degraded": False}, "allocation": {}, "release": {}, "timings_ms": {},
            "inference": {"text": "Hi there", "tokens_generated": tokens}}


def test_a_completion_says_length_only_when_the_limit_was_reached():
    done = completion(success(5), max_tokens=16, prompt_tokens=2, created=7)
    assert done["id"] == "chatcmpl-req-t-1" and done["object"] == "chat.completion" and done["created"] == 7
    assert done["model"] == "gemma-270m"
    assert done["choices"] == [{"index": 0, "message": {"role": "assistant", "content": "Hi there", "refusal": None},
                                "finish_reason": "stop", "logprobs": None}]
    assert done["usage"] == {"prompt_tokens": 2, "completion_tokens": 5, "total_tokens": 7}
    assert done["harpoon"]["route"]["model"] == "gemma-270m"
    assert completion(success(16), max_tokens=16, prompt_tokens=2)["choices"][0]["finish_reason"] == "length"


def test_the_model_list_is_auto_and_the_catalog():
    listed = models(load_catalog())
    assert listed["object"] == "list"
    assert [m["id"] for m in listed["data"]] == ["auto", *load_catalog().models]
