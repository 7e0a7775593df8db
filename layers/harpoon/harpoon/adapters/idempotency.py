"""Client idempotency for POST /v2/process, on Powertools' idempotency utility
(DynamoDB persistence with payload validation).

The same Idempotency-Key with the same (validated) body returns the first
successful answer without new GPU work; the same key with another body is a
conflict; a key whose first request is still running is a conflict too.
Failures are not stored: Powertools deletes the record when the wrapped call
raises, so a client may retry a failed request with the same key.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

REPLAY_MARKER = "_idempotent_replay"


class IdempotencyMismatch(Exception):
    """The key was used before with a different body."""


class IdempotencyInProgress(Exception):
    """The key's first request has not finished yet."""


@lru_cache(maxsize=1)
def _persistence(table_name: str):
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

    from harpoon.adapters import aws

    return DynamoDBPersistenceLayer(table_name=table_name, boto3_client=aws.client("dynamodb"))


def run_once(
    *,
    table_name: str,
    key: str,
    body: dict,
    run: Callable[[], dict],
    expires_after_seconds: int,
    lambda_context=None,
) -> tuple[dict, bool]:
    """(answer, replayed): run() once per key; later calls get its answer."""
    from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function
    from aws_lambda_powertools.utilities.idempotency.exceptions import (
        IdempotencyAlreadyInProgressError,
        IdempotencyValidationError,
    )

    config = IdempotencyConfig(
        event_key_jmespath="key",
        payload_validation_jmespath="body",
        expires_after_seconds=expires_after_seconds,
        response_hook=lambda response, _record: {**response, REPLAY_MARKER: True},
    )
    if lambda_context is not None:
        # In-progress records then expire with the invocation, so a crashed
        # request does not block its key until expires_after_seconds.
        config.register_lambda_context(lambda_context)

    @idempotent_function(data_keyword_argument="request", persistence_store=_persistence(table_name), config=config)
    def once(request: dict) -> dict:
        return run()

    try:
        answer = once(request={"key": key, "body": body})
    except IdempotencyValidationError:
        raise IdempotencyMismatch(key) from None
    except IdempotencyAlreadyInProgressError:
        raise IdempotencyInProgress(key) from None
    replayed = bool(answer.pop(REPLAY_MARKER, False))
    return answer, replayed
