"""Runtime settings, read from the environment on first use (never at import),
so tests and the local stack can set variables before anything reads them.

Every variable is set by template.yaml; the defaults here exist only for
values with a sensible default. A missing required one raises
ConfigurationError naming the variable.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import NamedTuple

from harpoon.errors import ConfigurationError


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    try:
        return float(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be a number, got {raw!r}") from None


# Immutable like a frozen dataclass, and several times cheaper to build at import (cold starts).
class Settings(NamedTuple):
    leases_table: str | None
    hosted_ai_base_url: str | None
    hosted_ai_pool_id: str
    hosted_ai_secret_arn: str | None
    hosted_ai_connect_timeout: float
    hosted_ai_timeout: float
    hosted_ai_inference_timeout: float
    lease_duration_seconds: int
    state_machine_arn: str | None
    state_machine_type: str
    sync_timeout_seconds: float
    classifier_threshold: float
    secret_max_age_seconds: int
    breakers_table: str | None
    idempotency_table: str | None
    lease_ttl_seconds: int
    lease_renew_below_seconds: int
    warm_idle_seconds: int
    lease_retention_seconds: int
    sweep_retry_seconds: int
    sweep_horizon_allowed: bool
    reconcile_after_seconds: float
    idempotency_ttl_seconds: int
    breaker_failure_threshold: int
    breaker_minimum_calls: int
    breaker_failure_rate: float
    breaker_window_seconds: float
    breaker_cooldown_seconds: float
    breaker_max_cooldown_seconds: float
    breaker_cache_seconds: float
    tenants_table: str | None
    usage_table: str | None
    auth_cache_seconds: float
    slot_hold_seconds: int
    async_state_machine_arn: str | None
    requests_table: str | None
    async_result_ttl_seconds: int

    def require(self, field: str) -> str:
        """The value of a setting that this caller cannot work without."""
        value = getattr(self, field)
        if not value:
            raise ConfigurationError(
                f"setting {field} is not configured (environment variable {field.upper()})"
            )
        return value


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    machine_type = os.environ.get("STATE_MACHINE_TYPE", "EXPRESS").upper()
    if machine_type not in ("EXPRESS", "STANDARD"):
        raise ConfigurationError(f"STATE_MACHINE_TYPE must be EXPRESS or STANDARD, got {machine_type!r}")
    return Settings(
        leases_table=os.environ.get("LEASES_TABLE") or None,
        hosted_ai_base_url=(os.environ.get("HOSTED_AI_BASE_URL") or "").rstrip("/") or None,
        hosted_ai_pool_id=os.environ.get("HOSTED_AI_POOL_ID") or "gpu-pool-1",
        hosted_ai_secret_arn=os.environ.get("HOSTED_AI_SECRET_ARN") or None,
        hosted_ai_connect_timeout=_float("HOSTED_AI_CONNECT_TIMEOUT", 2.0),
        hosted_ai_timeout=_float("HOSTED_AI_TIMEOUT", 10.0),
        hosted_ai_inference_timeout=_float("HOSTED_AI_INFERENCE_TIMEOUT", 25.0),
        lease_duration_seconds=int(_float("LEASE_DURATION_SECONDS", 300)),
        state_machine_arn=os.environ.get("STATE_MACHINE_ARN") or None,
        state_machine_type=machine_type,
        sync_timeout_seconds=_float("SYNC_TIMEOUT_SECONDS", 25.0),
        classifier_threshold=_float("CLASSIFIER_THRESHOLD", 0.5),
        secret_max_age_seconds=int(_float("SECRET_MAX_AGE_SECONDS", 300)),
        breakers_table=os.environ.get("BREAKERS_TABLE") or None,
        idempotency_table=os.environ.get("IDEMPOTENCY_TABLE") or None,
        lease_ttl_seconds=int(_float("LEASE_TTL_SECONDS", 120)),
        lease_renew_below_seconds=int(_float("LEASE_RENEW_BELOW_SECONDS", 110)),
        warm_idle_seconds=max(0, int(_float("WARM_IDLE_SECONDS", 0))),
        lease_retention_seconds=int(_float("LEASE_RETENTION_SECONDS", 7 * 24 * 3600)),
        sweep_retry_seconds=max(1, int(_float("SWEEP_RETRY_SECONDS", 30))),
        sweep_horizon_allowed=(os.environ.get("SWEEP_ALLOW_HORIZON") or "").lower() in ("1", "true", "yes"),
        reconcile_after_seconds=_float("RECONCILE_AFTER_SECONDS", 60),
        idempotency_ttl_seconds=int(_float("IDEMPOTENCY_TTL_SECONDS", 3600)),
        breaker_failure_threshold=int(_float("BREAKER_FAILURE_THRESHOLD", 5)),
        breaker_minimum_calls=int(_float("BREAKER_MINIMUM_CALLS", 5)),
        breaker_failure_rate=_float("BREAKER_FAILURE_RATE", 0.5),
        breaker_window_seconds=_float("BREAKER_WINDOW_SECONDS", 60),
        breaker_cooldown_seconds=_float("BREAKER_COOLDOWN_SECONDS", 30),
        breaker_max_cooldown_seconds=_float("BREAKER_MAX_COOLDOWN_SECONDS", 300),
        breaker_cache_seconds=_float("BREAKER_CACHE_SECONDS", 2),
        tenants_table=os.environ.get("TENANTS_TABLE") or None,
        usage_table=os.environ.get("USAGE_TABLE") or None,
        auth_cache_seconds=_float("AUTH_CACHE_SECONDS", 30),
        # Longer than the workflow can live (its TimeoutSeconds, 290 s) plus
        # the API's wait: a slot a request never gave back frees after it.
        slot_hold_seconds=int(_float("SLOT_HOLD_SECONDS", 330)),
        async_state_machine_arn=os.environ.get("ASYNC_STATE_MACHINE_ARN") or None,
        requests_table=os.environ.get("REQUESTS_TABLE") or None,
        async_result_ttl_seconds=int(_float("ASYNC_RESULT_TTL_SECONDS", 86400)),
    )
