"""Dependencies of the steps, built once per container on first use."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

from harpoon.adapters import aws
from harpoon.settings import get_settings

if TYPE_CHECKING:
    from harpoon.adapters.leases import LeaseRepository

# Each builder imports its adapter: a function imports only the ones it uses
# (the authorizer and the API use no leases, classify none of these).


@lru_cache(maxsize=1)
def leases() -> LeaseRepository:
    from harpoon.adapters.leases import LeasePolicy, LeaseRepository

    settings = get_settings()
    policy = LeasePolicy(
        lease_ttl_seconds=settings.lease_ttl_seconds,
        reconcile_after_seconds=int(settings.reconcile_after_seconds),
        retention_seconds=settings.lease_retention_seconds,
        sweep_retry_seconds=settings.sweep_retry_seconds,
    )
    return LeaseRepository(settings.require("leases_table"), aws.client("dynamodb"), policy=policy)


@lru_cache(maxsize=1)
def hostedai():
    from harpoon.adapters.hostedai import HostedAIClient, Timeouts  # httpx: only the steps that call HostedAI
    from harpoon.adapters.secrets import get_hosted_ai_api_key

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


@lru_cache(maxsize=1)
def breaker():
    from harpoon.adapters.breakers import BreakerRepository
    from harpoon.domain.breaker import BreakerConfig, CircuitBreaker

    settings = get_settings()
    config = BreakerConfig(
        failure_threshold=settings.breaker_failure_threshold,
        minimum_calls=settings.breaker_minimum_calls,
        failure_rate=settings.breaker_failure_rate,
        window=settings.breaker_window_seconds,
        cooldown=settings.breaker_cooldown_seconds,
        max_cooldown=settings.breaker_max_cooldown_seconds,
        cache_seconds=settings.breaker_cache_seconds,
        # A probe lasts at most one allocate call, connect included.
        probe_ttl=settings.hosted_ai_timeout + settings.hosted_ai_connect_timeout + 5,
    )
    repo = BreakerRepository(settings.require("breakers_table"), aws.client("dynamodb"))
    return CircuitBreaker(repo, config, on_transition=_log_transition)


@lru_cache(maxsize=1)
def tenants():
    from harpoon.adapters.tenants import TenantRepository

    return TenantRepository(get_settings().require("tenants_table"), aws.client("dynamodb"))


@lru_cache(maxsize=1)
def identity_cache():
    from harpoon.authorizer import IdentityCache

    return IdentityCache(get_settings().auth_cache_seconds)


@lru_cache(maxsize=1)
def quotas():
    from harpoon.adapters.quotas import QuotaRepository

    return QuotaRepository(get_settings().require("usage_table"), aws.client("dynamodb"))


def _log_transition(breaker_id: str, old: str, new: str) -> None:
    from aws_lambda_powertools import Logger

    from harpoon.metrics import emit

    Logger().warning("circuit breaker transition", extra={"breaker": breaker_id, "from": old, "to": new})
    pool, _, model = breaker_id.partition("#")
    emit("BreakerTransitions", 1, model=model, pool=pool, outcome=str(new).lower(), metadata={"from": str(old).lower()})


def reset() -> None:
    """Forget built dependencies (tests change the environment between cases)."""
    leases.cache_clear()
    hostedai.cache_clear()
    breaker.cache_clear()
    tenants.cache_clear()
    identity_cache.cache_clear()
    quotas.cache_clear()
    aws.client.cache_clear()
    aws.session.cache_clear()
    get_settings.cache_clear()
