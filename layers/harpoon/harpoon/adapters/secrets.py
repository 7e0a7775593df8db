"""The HostedAI API key, read from Secrets Manager at run time.

Powertools parameters caches it in memory for ``max_age`` seconds (its default
of 5 s would call Secrets Manager on nearly every request). The secret may be
the bare key or a JSON object with an ``api_key`` field.
"""

from __future__ import annotations

import json

from harpoon.errors import ConfigurationError


def get_hosted_ai_api_key(secret_arn: str, *, max_age: int, force_fetch: bool = False) -> str:
    from aws_lambda_powertools.utilities import parameters  # lazy: keeps classify/api cold starts lean

    raw = parameters.get_secret(secret_arn, max_age=max_age, force_fetch=force_fetch)
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8")
    return parse_api_key(raw)


def parse_api_key(raw: str) -> str:
    value = (raw or "").strip()
    if value.startswith("{"):
        try:
            value = str(json.loads(value).get("api_key", "")).strip()
        except (ValueError, AttributeError):
            raise ConfigurationError("HostedAI secret is JSON but not an object with api_key") from None
    if not value:
        raise ConfigurationError("HostedAI secret is empty")
    return value
