"""Dependencies of the steps, built once per container on first use."""

from __future__ import annotations

from functools import lru_cache

from harpoon.adapters import aws
from harpoon.adapters.hostedai import HostedAIClient, Timeouts
from harpoon.adapters.leases import LeaseRepository
from harpoon.adapters.secrets import get_hosted_ai_api_key
from harpoon.settings import get_settings


@lru_cache(maxsize=1)
def leases() -> LeaseRepository:
    return LeaseRepository(get_settings().require("leases_table"), aws.client("dynamodb"))


@lru_cache(maxsize=1)
def hostedai() -> HostedAIClient:
    settings = get_settings()
    secret_arn = settings.require("hosted_ai_secret_arn")
    return HostedAIClient(
        settings.require("hosted_ai_base_url"),
        api_key=lambda refresh=False: get_hosted_ai_api_key(
            secret_arn, max_age=settings.secret_max_age_seconds, force_fetch=refresh
        ),
        timeouts=Timeouts(
            connect=settings.hosted_ai_connect_timeout,
            default=settings.hosted_ai_timeout,
            inference=settings.hosted_ai_inference_timeout,
        ),
    )


def reset() -> None:
    """Forget built dependencies (tests change the environment between cases)."""
    leases.cache_clear()
    hostedai.cache_clear()
    aws.client.cache_clear()
    get_settings.cache_clear()
