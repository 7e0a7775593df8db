"""The official `openai` Python client, unchanged, against the local stack
with a tenant's key (issue 9): completions, the model list, and its error
classes for Harpoon's refusals."""

from __future__ import annotations

import openai
import pytest

pytestmark = pytest.mark.e2e


@pytest.fixture
def client(stack):
    with openai.OpenAI(base_url=f"{stack.url}/v1", api_key=stack.api_key, max_retries=0, timeout=60) as client:
        yield client


def test_chat_completions_create_with_model_auto(client):
    completion = client.chat.completions.create(
        model="auto", messages=[{"role": "user", "content": "Hello"}], max_tokens=16)
    assert completion.object == "chat.completion" and completion.model == "gemma-270m"
    assert completion.choices[0].message.role == "assistant" and completion.choices[0].message.content
    assert completion.choices[0].finish_reason in ("stop", "length")
    assert completion.usage.completion_tokens <= 16
    # Harpoon's routing decision rides along as an extra field.
    assert completion.model_extra["harpoon"]["classification"]["tier"] == "simple"


def test_the_routing_headers_and_a_complex_prompt(client):
    raw = client.chat.completions.with_raw_response.create(
        model="auto", max_tokens=32,
        messages=[{"role": "user", "content": "Prove that the square root of 2 is irrational, step by step."}])
    assert raw.headers["x-harpoon-model"] == "qwen-30b" and raw.headers["x-harpoon-degraded"] == "false"
    assert raw.parse().model == "qwen-30b"


def test_models_list_is_auto_and_the_catalog(client):
    assert [m.id for m in client.models.list()] == ["auto", "gemma-270m", "qwen-30b"]


def test_refusals_raise_the_clients_own_errors(client, stack):
    with pytest.raises(openai.BadRequestError) as unknown:
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "Hi"}])
    assert (unknown.value.code, unknown.value.param) == ("unknown_model", "model")
    with pytest.raises(openai.BadRequestError) as streamed:
        client.chat.completions.create(model="auto", messages=[{"role": "user", "content": "Hi"}], stream=True)
    assert streamed.value.code == "stream_unsupported"
    with pytest.raises(openai.BadRequestError) as empty:
        client.chat.completions.create(model="auto", messages=[])
    assert empty.value.code == "invalid_messages"
    with openai.OpenAI(base_url=f"{stack.url}/v1", api_key="hpn_not-a-key-of-anyone-at-all", max_retries=0) as other:
        with pytest.raises(openai.AuthenticationError) as refused:
            other.models.list()
    assert refused.value.code == "unauthorized"
