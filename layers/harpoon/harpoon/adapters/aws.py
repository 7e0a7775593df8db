"""AWS clients, built once per container on first use (never at import).

Built with botocore, not boto3: boto3.client() makes the very same botocore
client, but importing boto3 (s3transfer, resources) costs a cold start tens of
milliseconds for nothing a low-level client uses. One botocore session per
container, as boto3's default session was.

botocore honours AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_<SERVICE>, which is how the
local stack and the tests point the same code at moto: there is no local-only
branch here.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any


@lru_cache(maxsize=1)
def session() -> Any:
    import botocore.session

    return botocore.session.get_session()


@lru_cache(maxsize=None)
def client(service: str, read_timeout: float = 10.0, max_attempts: int = 3) -> Any:
    from botocore.config import Config

    config = Config(
        connect_timeout=2,
        read_timeout=read_timeout,
        retries={"mode": "standard", "max_attempts": max_attempts},
    )
    return session().create_client(service, config=config)
