"""Tenant ids, keys, tiers, and the authorizer's verdicts (with fakes)."""

from __future__ import annotations

import pytest

from harpoon.adapters.tenants import Identity
from harpoon.authorizer import IdentityCache, authorize
from harpoon.tenancy import TIERS, check_tenant_id, hash_key, key_from_headers, key_hint, new_api_key, quota_for


def test_keys_come_from_x_api_key_or_a_bearer_token():
    assert key_from_headers({"x-api-key": " k1 "}) == "k1"
    assert key_from_headers({"authorization": "Bearer k2"}) == "k2"
    assert key_from_headers({"Authorization": "bearer   k3"}) == "k3"
    assert key_from_headers({"x-api-key": "k1", "authorization": "Bearer k2"}) == "k1"


@pytest.mark.parametrize("headers", [None, {}, {"x-api-key": "  "}, {"authorization": "Basic dXNlcjpw"},
                                     {"authorization": "Bearer "}, {"authorization": "k-without-scheme"}])
def test_no_usable_key_is_none(headers):
    assert key_from_headers(headers) is None


def test_new_keys_are_random_prefixed_and_only_hashed():
    first, second = new_api_key(), new_api_key()
    assert first != second and first.startswith("hpn_") and len(first) > 40
    assert hash_key(first) == hash_key(first) != hash_key(second) and len(hash_key(first)) == 64
    assert key_hint(first) == first[:8] + "..." and first[8:] not in key_hint(first)


@pytest.mark.parametrize("tenant_id", ["acme", "a", "team-42", "x" * 32])
def test_good_tenant_ids(tenant_id):
    assert check_tenant_id(tenant_id) == tenant_id


@pytest.mark.parametrize("tenant_id", ["", "Acme", "-a", "a#b", "a b", "x" * 33, "ünï"])
def test_bad_tenant_ids_say_what_is_allowed(tenant_id):
    with pytest.raises(ValueError, match="lower-case letters, digits"):
        check_tenant_id(tenant_id)


def test_tiers_are_the_seeds_and_pro_is_its_example_tenant():
    assert list(TIERS) == ["free", "basic", "pro", "enterprise"]
    pro = quota_for("pro")
    assert (pro.concurrent_allocations, pro.tokens_per_minute, pro.gpu_hours_per_month, pro.usd_per_month) == (
        10, 100_000, 1000, 1000)
    assert [TIERS[t].concurrent_allocations for t in TIERS] == sorted(TIERS[t].concurrent_allocations for t in TIERS)
    with pytest.raises(ValueError, match="unknown tier 'gold'"):
        quota_for("gold")


class Lookup:
    def __init__(self, known: dict[str, Identity]) -> None:
        self.known, self.calls = known, 0

    def __call__(self, key: str) -> Identity | None:
        self.calls += 1
        return self.known.get(key)


def _event(**headers) -> dict:
    return {"version": "2.0", "type": "REQUEST", "headers": headers}


def test_a_good_key_maps_to_its_tenant_and_tier():
    lookup = Lookup({"k": Identity("acme", "pro", "active")})
    verdict = authorize(_event(**{"x-api-key": "k"}), lookup, IdentityCache(30))
    assert verdict == {"isAuthorized": True, "context": {"tenant_id": "acme", "tier": "pro"}}


@pytest.mark.parametrize(("headers", "error"), [
    ({}, "missing_api_key"),
    ({"x-api-key": "nope"}, "invalid_api_key"),
    ({"authorization": "Bearer off"}, "tenant_disabled"),
])
def test_refusals_carry_the_reason_for_the_api_to_answer_401(headers, error):
    lookup = Lookup({"off": Identity("gone", "free", "disabled")})
    verdict = authorize(_event(**headers), lookup, IdentityCache(30))
    # isAuthorized stays true: an HTTP API cannot shape a refusal, so the API
    # function answers the 401 (harpoon.api.require_tenant).
    assert verdict["isAuthorized"] is True and verdict["context"]["auth_error"] == error
    assert "tier" not in verdict["context"]


def test_lookups_are_cached_hits_and_misses_until_the_ttl():
    now = [0.0]
    cache = IdentityCache(30, clock=lambda: now[0])
    lookup = Lookup({"k": Identity("acme", "pro", "active")})
    for key in ("k", "k", "bad", "bad"):
        authorize(_event(**{"x-api-key": key}), lookup, cache)
    assert lookup.calls == 2
    now[0] = 31.0
    authorize(_event(**{"x-api-key": "k"}), lookup, cache)
    assert lookup.calls == 3


def test_an_unreachable_table_is_a_503_verdict_not_a_crash():
    def broken(_key):
        raise ConnectionError("dynamodb down")

    verdict = authorize(_event(**{"x-api-key": "k"}), broken, IdentityCache(30))
    assert verdict["context"] == {"auth_error": "auth_unavailable"}
