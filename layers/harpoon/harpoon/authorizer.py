"""The HTTP API's Lambda authorizer (payload 2.0, simple responses).

An HTTP API cannot shape an authorizer's refusal: `isAuthorized: false` is
always a bare 403 `{"message":"Forbidden"}`. Harpoon promises a 401 with its
own JSON error saying what is wrong, so the authorizer passes its verdict in
the context and the API function refuses (harpoon.api, before any route
runs): `{tenant_id, tier}` for a good key, `{auth_error}` otherwise. Only the
gateway can set that context; a client cannot.

Lookups are cached in the container for AUTH_CACHE_SECONDS (hits and misses
alike, so a flood of bad keys does not reach DynamoDB). API Gateway's own
cache is off: it keys on identity sources that must all be present, and a key
may come in either of two headers.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from harpoon.tenancy import ACTIVE, hash_key, key_from_headers

MISSING, INVALID, DISABLED_KEY, UNAVAILABLE = "missing_api_key", "invalid_api_key", "tenant_disabled", "auth_unavailable"
CACHE_LIMIT = 10_000


class IdentityCache:
    def __init__(self, ttl_seconds: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl, self.clock = ttl_seconds, clock
        self._entries: dict[str, tuple[float, object]] = {}

    def get(self, digest: str, load: Callable[[], object]) -> object:
        now = self.clock()
        hit = self._entries.get(digest)
        if hit is not None and hit[0] > now:
            return hit[1]
        value = load()
        if len(self._entries) >= CACHE_LIMIT:
            self._entries.pop(next(iter(self._entries)))  # the oldest entry
        self._entries[digest] = (now + self.ttl, value)
        return value


def authorize(event: dict, lookup: Callable[[str], object], cache: IdentityCache, log=None) -> dict:
    """`lookup(api_key)` returns an Identity (tenant_id, tier, status) or None."""
    key = key_from_headers(event.get("headers"))
    if key is None:
        return _verdict({"auth_error": MISSING})
    try:
        identity = cache.get(hash_key(key), lambda: lookup(key))
    except Exception as exc:  # noqa: BLE001 - the table is unreachable: 503, not a 500 with no body
        if log is not None:
            log.warning("tenant lookup failed", extra={"error": type(exc).__name__})
        return _verdict({"auth_error": UNAVAILABLE})
    if identity is None:
        return _verdict({"auth_error": INVALID})
    if identity.status != ACTIVE:
        return _verdict({"auth_error": DISABLED_KEY, "tenant_id": identity.tenant_id})
    return _verdict({"tenant_id": identity.tenant_id, "tier": identity.tier})


def _verdict(context: dict) -> dict:
    return {"isAuthorized": True, "context": context}
