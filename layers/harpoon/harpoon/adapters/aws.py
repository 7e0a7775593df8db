"""AWS clients, built once per container on first use (never at import).

boto3 honours AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_<SERVICE>, which is how the
local stack and the tests point the same code at moto: there is no local-only
branch here.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any


@lru_cache(maxsize=None)
def client(service: str, read_timeout: float = 10.0, max_attempts: int = 3) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(
        connect_timeout=2,
        read_timeout=read_timeout,
        retries={"mode": "standard", "max_attempts": max_attempts},
    )
    return boto3.client(service, config=config)
