"""The HostedAI client against a fake transport: requests it sends, and the
typed error each answer becomes (transient vs permanent)."""

import json

import httpx
import pytest

from harpoon import errors
from harpoon.adapters.hostedai import HostedAIClient, Timeouts


def client_for(handler) -> HostedAIClient:
    return HostedAIClient("http://hostedai.test/", api_key=lambda refresh=False: "sekret", transport=httpx.MockTransport(handler),
                          timeouts=Timeouts(connect=1, default=2, inference=3))


def test_allocate_sends_the_contract_with_bearer_and_idempotency_key():
    seen = {}

    def handler(request: httpx.Request):
        seen["request"] = request
        return httpx.Response(201, json={"allocation_id": "a-1", "assigned_gpu": "gpu-0", "status": "active",
                                         "expires_at": "2026-11-26T15:00:00Z"})

    allocation = client_for(handler).allocate(pool_id="p", requirements={"min_tflops": 5.0}, duration_seconds=60,
                                              idempotency_key="k-1", metadata={"request_id": "r"})
    request = seen["request"]
    assert request.method == "POST" and request.url.path == "/v1/allocate"
    assert request.headers["Authorization"] == "Bearer sekret"
    assert request.headers["Idempotency-Key"] == "k-1"
    assert request.headers["X-Request-Id"] == "r"  # the correlation id, from the metadata
    assert json.loads(request.content) == {"pool_id": "p", "requirements": {"min_tflops": 5.0},
                                           "duration_seconds": 60, "preemptible": False, "metadata": {"request_id": "r"}}
    assert allocation.allocation_id == "a-1" and allocation.assigned_gpu == "gpu-0"


def test_release_sends_the_request_id_it_releases_for():
    seen = []

    def handler(request: httpx.Request):
        seen.append((request.method, request.url.path, request.headers.get("x-request-id")))
        return httpx.Response(204)

    client = client_for(handler)
    assert client.release("a-1", request_id="req-acme-1") is True
    assert client.release("a-2") is True
    assert seen == [("DELETE", "/v1/allocate/a-1", "req-acme-1"), ("DELETE", "/v1/allocate/a-2", None)]


def test_inference_uses_the_inference_timeout_and_parses_the_answer():
    seen = {}

    def handler(request):
        seen["timeout"] = request.extensions["timeout"]
        seen["body"] = json.loads(request.content)
        seen["request_id"] = request.headers.get("x-request-id")
        return httpx.Response(200, json={"text": "hi", "tokens_used": 3, "duration_ms": 12.5, "model_used": "m"})

    result = client_for(handler).infer(allocation_id="a", model="m", prompt="p", max_tokens=7, request_id="req-1")
    assert seen["timeout"]["read"] == 3 and seen["request_id"] == "req-1"
    assert seen["body"] == {"allocation_id": "a", "model": "m", "prompt": "p", "parameters": {"max_tokens": 7}}
    assert (result.text, result.tokens_used, result.duration_ms, result.model_used) == ("hi", 3, 12.5, "m")


@pytest.mark.parametrize(
    ("status", "body", "error", "transient"),
    [
        (429, {"error": "slow down", "code": "rate_limited"}, errors.UpstreamRateLimitedError, True),
        (500, {"error": "boom"}, errors.UpstreamUnavailableError, True),
        (502, None, errors.UpstreamUnavailableError, True),
        (503, {"error": "no GPU", "code": "no_capacity"}, errors.NoCapacityError, True),
        (503, {"error": "down", "code": "unavailable"}, errors.UpstreamUnavailableError, True),
        (504, {"error": "late"}, errors.UpstreamUnavailableError, True),
        (400, {"error": "bad"}, errors.UpstreamRejectedError, False),
        (401, {"error": "who"}, errors.UpstreamAuthError, False),
        (403, {"error": "no"}, errors.UpstreamAuthError, False),
        (404, {"error": "gone"}, errors.UpstreamRejectedError, False),
        (409, {"error": "mismatch"}, errors.UpstreamRejectedError, False),
        (422, {"error": "unsatisfiable"}, errors.UpstreamRejectedError, False),
    ],
)
def test_status_codes_map_to_typed_errors(status, body, error, transient):
    def handler(request):
        headers = {"Retry-After": "3"} if status in (429, 503) else {}
        return httpx.Response(status, json=body, headers=headers) if body else httpx.Response(status, text="<html>")

    with pytest.raises(error) as info:
        client_for(handler).allocate(pool_id="p", requirements={}, duration_seconds=60, idempotency_key="k")
    assert isinstance(info.value, errors.TransientUpstreamError) is transient
    assert isinstance(info.value, errors.PermanentUpstreamError) is (not transient)
    assert info.value.status == status
    assert "sekret" not in str(info.value)
    if status in (429, 503):
        assert info.value.retry_after == 3.0


def test_timeouts_and_connection_errors_are_transient():
    def timeout(request):
        raise httpx.ReadTimeout("slow", request=request)

    def refused(request):
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(errors.UpstreamTimeoutError):
        client_for(timeout).infer(allocation_id="a", model="m", prompt="p", max_tokens=1)
    def dropped(request):
        raise httpx.RemoteProtocolError("Server disconnected without sending a response.", request=request)

    def connect_timeout(request):
        raise httpx.ConnectTimeout("no route", request=request)

    with pytest.raises(errors.UpstreamConnectionError):
        client_for(refused).release("a")
    with pytest.raises(errors.UpstreamConnectionError):  # never connected: certainly not sent
        client_for(connect_timeout).release("a")
    with pytest.raises(errors.UpstreamUnavailableError):  # sent, answer lost: the outcome is unknown
        client_for(dropped).allocate(pool_id="p", requirements={}, duration_seconds=1, idempotency_key="k")


def test_release_treats_404_as_already_gone():
    answers = iter([httpx.Response(204), httpx.Response(404, json={"error": "gone"})])
    client = client_for(lambda request: next(answers))
    assert client.release("a") is True
    assert client.release("a") is False


def test_a_success_without_the_contract_fields_is_a_permanent_error():
    with pytest.raises(errors.UpstreamRejectedError):
        client_for(lambda r: httpx.Response(200, json={"oops": 1})).allocate(
            pool_id="p", requirements={}, duration_seconds=1, idempotency_key="k")
    with pytest.raises(errors.UpstreamRejectedError):
        client_for(lambda r: httpx.Response(200, text="not json")).infer(
            allocation_id="a", model="m", prompt="p", max_tokens=1)


def test_a_401_refetches_the_key_once_then_succeeds():
    keys = iter(["old", "rotated"])
    fetched = []

    def api_key(refresh=False):
        fetched.append(refresh)
        return next(keys)

    def handler(request):
        if request.headers["Authorization"] == "Bearer rotated":
            return httpx.Response(204)
        return httpx.Response(401, json={"error": "bad key"})

    client = HostedAIClient("http://h", api_key=api_key, transport=httpx.MockTransport(handler))
    assert client.release("a") is True
    assert fetched == [False, True]


def test_a_401_after_refresh_is_a_permanent_auth_error():
    calls = []

    def handler(request):
        calls.append(request)
        return httpx.Response(401, json={"error": "bad key"})

    with pytest.raises(errors.UpstreamAuthError):
        client_for(handler).infer(allocation_id="a", model="m", prompt="p", max_tokens=1)
    assert len(calls) == 2
