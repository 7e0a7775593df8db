"""Tenants: ids, tiers and their quotas, API keys. Pure: no AWS here.

API keys are 256-bit random tokens shown once at creation; only their SHA-256
is stored. A fast unsalted hash is right for keys of that entropy (nothing to
brute-force, unlike a password) and lets the authorizer find a key with one
GetItem.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass

KEY_PREFIX = "hpn_"
# Lower-case, no '#': tenant ids are embedded in record keys (warm pool
# tenant#pool#model) and in request ids (execution names, at most 80 chars).
TENANT_ID_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")
ACTIVE, DISABLED = "active", "disabled"


@dataclass(frozen=True)
class Quota:
    concurrent_allocations: int
    tokens_per_minute: int
    gpu_hours_per_month: float
    usd_per_month: float


# The seed's tiers. Pro is the seed's example tenant (10 concurrent
# allocations, 100k tokens per minute, 1000 GPU-hours, 1000 USD); budgets are
# per calendar month (UTC).
TIERS: dict[str, Quota] = {
    "free": Quota(concurrent_allocations=1, tokens_per_minute=5_000, gpu_hours_per_month=2, usd_per_month=5),
    "basic": Quota(concurrent_allocations=3, tokens_per_minute=20_000, gpu_hours_per_month=100, usd_per_month=100),
    "pro": Quota(concurrent_allocations=10, tokens_per_minute=100_000, gpu_hours_per_month=1000, usd_per_month=1000),
    "enterprise": Quota(concurrent_allocations=50, tokens_per_minute=1_000_000, gpu_hours_per_month=10_000,
                        usd_per_month=10_000),
}


def quota_for(tier: str) -> Quota:
    try:
        return TIERS[tier]
    except KeyError:
        raise ValueError(f"unknown tier {tier!r}; tiers: {', '.join(TIERS)}") from None


def check_tenant_id(tenant_id: str) -> str:
    if not isinstance(tenant_id, str) or not TENANT_ID_PATTERN.fullmatch(tenant_id):
        raise ValueError(
            f"tenant id {tenant_id!r} must be 1-32 characters: lower-case letters, digits and '-', "
            "starting with a letter or digit"
        )
    return tenant_id


def new_api_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


# A key given by hand (a script's, the demo tenant's) must still be hard to
# guess: only its unsalted SHA-256 is stored.
GIVEN_KEY_PATTERN = re.compile(KEY_PREFIX + r"[A-Za-z0-9_-]{24,200}")


def check_api_key(api_key: str) -> str:
    if not GIVEN_KEY_PATTERN.fullmatch(api_key or ""):
        raise ValueError(f"an API key must be {KEY_PREFIX!r} and 24 to 200 random characters of A-Z, a-z, 0-9, "
                         "'_' and '-' (leave it out to get a random one)")
    return api_key


def hash_key(api_key: str) -> str:
    return hashlib.sha256(api_key.encode("utf-8")).hexdigest()


def key_hint(api_key: str) -> str:
    """What a listing may show of a key: enough to tell two keys apart."""
    return api_key[: len(KEY_PREFIX) + 4] + "..."


def key_from_headers(headers: dict[str, str] | None) -> str | None:
    """The API key of a request: `x-api-key`, else `Authorization: Bearer`.
    Header names arrive lower-cased from API Gateway (payload 2.0)."""
    headers = {k.lower(): v for k, v in (headers or {}).items()}
    key = (headers.get("x-api-key") or "").strip()
    if key:
        return key
    scheme, _, token = (headers.get("authorization") or "").strip().partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None
