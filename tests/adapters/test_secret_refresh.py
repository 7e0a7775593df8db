"""The HostedAI key as the functions get it (harpoon.deps -> Powertools
parameters -> Secrets Manager, on moto) against the HostedAI emulator.

tests/unit/test_hostedai_client.py proves the client's own rule with a fake
key callable (a 401 asks for the key once more with refresh=True). Here the
whole chain is real: the secret is read once and cached; a 401 after the key
was rotated costs exactly one refused call and one forced read of the
secret, then the new key serves from the cache; without a 401 the cache
serves every call and Secrets Manager is not asked again.

Secrets Manager reads are counted with a botocore event hook
(before-parameter-build.secrets-manager.GetSecretValue) registered for every botocore
session, since Powertools builds its client on a session of its own.
"""

from __future__ import annotations

import json
import os

import boto3
import botocore.handlers
import pytest

from harpoon import deps, errors
from tests.conftest import API_KEY, load_event, load_handler

ROTATED = "rotated-hostedai-key-9876543210"
SMALL = {"min_tflops": 5.0, "min_vram_mb": 2048}


@pytest.fixture
def secret_reads(monkeypatch) -> list[str]:
    """The SecretId of every GetSecretValue call made from now on."""
    reads: list[str] = []

    def count(params, **_):
        reads.append(params["SecretId"])

    hook = ("before-parameter-build.secrets-manager.GetSecretValue", count)
    monkeypatch.setattr(botocore.handlers, "BUILTIN_HANDLERS", [*botocore.handlers.BUILTIN_HANDLERS, hook])
    return reads


@pytest.fixture
def secret_arn(aws) -> str:
    """The secret the functions read (the template's HOSTED_AI_SECRET_ARN)."""
    return os.environ["HOSTED_AI_SECRET_ARN"]


def rotate(monkeypatch, emulator, secret_arn: str, secret_string: str, key: str) -> None:
    """The key is rotated: a new version of the secret, and HostedAI accepts
    only the new key from now on (restored after the test)."""
    boto3.client("secretsmanager").put_secret_value(SecretId=secret_arn, SecretString=secret_string)
    monkeypatch.setattr(emulator.emulator, "api_key", key)


def calls(emulator) -> dict[str, int]:
    """HostedAI calls per endpoint, refused ones (401) included."""
    return dict(emulator.emulator.stats()["calls"])


def round_trip(client, request_id: str) -> None:
    allocation = client.allocate(pool_id="gpu-pool-1", requirements=SMALL, duration_seconds=60,
                                 idempotency_key=f"{request_id}-key", metadata={"request_id": request_id})
    result = client.infer(allocation_id=allocation.allocation_id, model="gemma-270m", prompt="Hello", max_tokens=8)
    assert result.tokens_used > 0
    assert client.release(allocation.allocation_id) is True


def test_without_a_401_the_cached_key_serves_every_call(aws, emulator, secret_reads, secret_arn):
    client = deps.hostedai()
    before = calls(emulator)
    for n in range(3):
        round_trip(client, f"req-cached-{n}")
    assert secret_reads == [secret_arn]  # read once, for nine HostedAI calls
    after = calls(emulator)
    assert {e: after[e] - before[e] for e in ("allocate", "inference", "release")} == {
        "allocate": 3, "inference": 3, "release": 3}  # no call was refused and repeated


@pytest.mark.parametrize("secret_string", [ROTATED, json.dumps({"api_key": ROTATED})], ids=["bare key", "json object"])
def test_a_rotated_key_costs_one_401_and_one_forced_read_then_the_cache_serves_it(
        aws, emulator, secret_reads, secret_arn, monkeypatch, secret_string):
    client = deps.hostedai()
    allocation = client.allocate(pool_id="gpu-pool-1", requirements=SMALL, duration_seconds=60,
                                 idempotency_key="req-rotate-1-key")
    assert secret_reads == [secret_arn]  # the old key, now cached

    rotate(monkeypatch, emulator, secret_arn, secret_string, ROTATED)
    before = calls(emulator)
    assert client.release(allocation.allocation_id) is True  # the old key is refused, the new one works
    assert calls(emulator)["release"] - before["release"] == 2  # one 401, then the success
    assert secret_reads == [secret_arn] * 2  # exactly one forced read

    # From now on the refreshed cache serves the new key: no 401, no read.
    before = calls(emulator)
    for n in range(2):
        round_trip(client, f"req-rotate-after-{n}")
    after = calls(emulator)
    assert {e: after[e] - before[e] for e in ("allocate", "inference", "release")} == {
        "allocate": 2, "inference": 2, "release": 2}
    assert secret_reads == [secret_arn] * 2


def test_the_step_handlers_pick_up_a_rotated_key(aws, emulator, secret_reads, secret_arn, monkeypatch, lambda_context):
    """The same through the Allocate, Infer and Release handlers of one
    container: Infer meets the rotation, Release uses the refreshed cache."""
    event = load_event("allocate")
    allocated = load_handler("allocate").lambda_handler(event, lambda_context)
    assert secret_reads == [secret_arn]

    rotate(monkeypatch, emulator, secret_arn, ROTATED, ROTATED)
    before = calls(emulator)
    infer_event = {**load_event("infer"), "allocation_id": allocated["allocation_id"]}
    inferred = load_handler("infer").lambda_handler(infer_event, lambda_context)
    assert inferred["tokens_generated"] > 0
    released = load_handler("release").lambda_handler(
        {"request_id": event["request_id"], "allocation": allocated}, lambda_context)
    assert released["status"] == "released"
    after = calls(emulator)
    assert (after["inference"] - before["inference"], after["release"] - before["release"]) == (2, 1)
    assert secret_reads == [secret_arn] * 2
    assert emulator.emulator.list_allocations() == []


def test_a_key_refused_after_the_forced_read_is_an_auth_error_that_names_no_key(aws, emulator, secret_reads, secret_arn,
                                                                                  monkeypatch):
    """HostedAI rotated but the secret was not updated: one forced read, the
    same key again, refused: a permanent UpstreamAuthError. Neither key is in
    the error (its message, details or what the workflow would record)."""
    client = deps.hostedai()
    monkeypatch.setattr(emulator.emulator, "api_key", ROTATED)
    before = calls(emulator)
    with pytest.raises(errors.UpstreamAuthError) as info:
        client.allocate(pool_id="gpu-pool-1", requirements=SMALL, duration_seconds=60,
                        idempotency_key="req-refused-key")
    assert calls(emulator)["allocate"] - before["allocate"] == 2
    assert secret_reads == [secret_arn] * 2  # the first read, then one forced read
    exc = info.value
    recorded = json.dumps({"type": type(exc).__name__, "message": str(exc), "repr": repr(exc), "details": exc.details},
                          default=str)
    assert "401" in recorded
    assert API_KEY not in recorded and ROTATED not in recorded
