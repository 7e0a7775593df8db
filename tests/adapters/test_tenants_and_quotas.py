"""TenantRepository and QuotaRepository on moto, with the tables exactly as
the template declares them. Concurrency runs threads released together
against moto with DynamoDB's per-item write atomicity (local.ddb_atomic)."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

from harpoon.adapters.quotas import QuotaExceeded, QuotaRepository, seconds_to_next_month
from harpoon.adapters.tenants import Identity, TenantError, TenantRepository
from harpoon.tenancy import Quota, hash_key
from local.ddb_atomic import serialise_writes
from tests.fakes import Clock, at_once, template_table

# 2026-11-26 12:00:30 UTC: 30 s into a minute.
NOW = 1_795_694_430.0


@pytest.fixture
def clock():
    return Clock(NOW)


@pytest.fixture
def tables(aws_credentials, clock):
    serialise_writes()
    with mock_aws():
        template_table("TenantsTable", "tenants")
        template_table("UsageTable", "usage")
        client = boto3.client("dynamodb")
        yield TenantRepository("tenants", client, clock=clock), QuotaRepository("usage", client, clock=clock)


def items(table: str) -> list[dict]:
    return boto3.client("dynamodb").scan(TableName=table)["Items"]


# --- tenants -------------------------------------------------------------------


def test_a_created_tenant_is_found_by_its_key_and_only_the_hash_is_stored(tables):
    tenants, _ = tables
    tenant, key = tenants.create("acme", "pro")
    assert tenant.tenant_id == "acme" and tenant.status == "active" and key.startswith("hpn_")
    assert tenants.identity(key) == Identity("acme", "pro", "active")
    assert tenants.identity(key + "x") is None
    stored = repr(items("tenants"))
    assert key not in stored and hash_key(key) in stored


def test_creating_a_tenant_twice_or_reusing_a_key_is_refused(tables):
    tenants, _ = tables
    chosen = "hpn_" + "k" * 24
    tenants.create("acme", "pro", api_key=chosen)
    with pytest.raises(TenantError, match="exists already"):
        tenants.create("acme", "basic")
    with pytest.raises(TenantError, match="in use by another tenant"):
        tenants.create("other", "basic", api_key=chosen)
    assert [t.tenant_id for t in tenants.list()] == ["acme"]


def test_bad_ids_and_tiers_are_refused_before_any_write(tables):
    tenants, _ = tables
    with pytest.raises(ValueError):
        tenants.create("Not OK", "pro")
    with pytest.raises(ValueError):
        tenants.create("ok", "gold")
    assert items("tenants") == []


@pytest.mark.parametrize("weak", ["hpn_short", "secret-but-no-prefix-000000000000", "hpn_" + "x" * 23, "hpn_" + "é" * 30])
def test_a_key_given_by_hand_must_be_hard_to_guess(tables, weak):
    tenants, _ = tables
    with pytest.raises(ValueError, match="24 to 200 random characters"):
        tenants.create("acme", "pro", api_key=weak)
    tenants.create("acme", "pro")
    with pytest.raises(ValueError):
        tenants.rotate_key("acme", api_key=weak)


def test_a_rotation_racing_a_disable_never_revives_the_tenant(tables, monkeypatch):
    tenants, _ = tables
    tenants.create("acme", "pro")
    real_require = tenants._require

    def read_then_disable(tenant_id):
        item = real_require(tenant_id)  # rotate has read the tenant as active ...
        TenantRepository("tenants", boto3.client("dynamodb")).set_status(tenant_id, "disabled")  # ... then this
        return item

    monkeypatch.setattr(tenants, "_require", read_then_disable)
    with pytest.raises(TenantError, match="changed meanwhile"):
        tenants.rotate_key("acme")
    monkeypatch.setattr(tenants, "_require", real_require)
    assert tenants.get("acme").status == "disabled"
    assert all(item["status"]["S"] == "disabled" for item in items("tenants"))


def test_rotating_a_key_retires_the_old_one_at_once(tables):
    tenants, _ = tables
    _, old = tenants.create("acme", "pro")
    new = tenants.rotate_key("acme")
    assert tenants.identity(old) is None
    assert tenants.identity(new) == Identity("acme", "pro", "active")
    assert len(items("tenants")) == 2  # the tenant and its one key


def test_disabling_reaches_the_key_and_enabling_restores_it(tables):
    tenants, _ = tables
    _, key = tenants.create("acme", "basic")
    assert tenants.set_status("acme", "disabled").status == "disabled"
    assert tenants.identity(key).status == "disabled"
    tenants.set_status("acme", "active")
    assert tenants.identity(key).status == "active"
    with pytest.raises(TenantError, match="no tenant 'ghost'"):
        tenants.set_status("ghost", "disabled")


def test_list_shows_tenants_not_keys(tables):
    tenants, _ = tables
    for name in ("b-team", "a-team"):
        tenants.create(name, "free")
    listed = tenants.list()
    assert [t.tenant_id for t in listed] == ["a-team", "b-team"]
    assert all(t.key_hint.endswith("...") for t in listed)


# --- quotas --------------------------------------------------------------------

TEN = Quota(concurrent_allocations=10, tokens_per_minute=1_000, gpu_hours_per_month=1, usd_per_month=5)


def test_fifty_concurrent_acquires_never_overshoot_the_limit(tables):
    _, quotas = tables

    def take(i):
        try:
            quotas.acquire("acme", f"req-{i}", TEN, hold_seconds=300)
            return "ok"
        except QuotaExceeded as exc:
            return exc.limit

    outcomes = at_once(50, take)
    assert outcomes.count("ok") == 10
    assert outcomes.count("concurrent_allocations") == 40
    assert quotas.in_flight("acme") == 10
    assert sum(1 for item in items("usage") if item["pk"]["S"].startswith("slot#acme#")) == 10


def test_a_released_slot_is_given_back_exactly_once(tables):
    _, quotas = tables
    one = Quota(1, 1_000, 1, 5)
    quotas.acquire("acme", "req-1", one, hold_seconds=300)
    with pytest.raises(QuotaExceeded) as refused:
        quotas.acquire("acme", "req-2", one, hold_seconds=300)
    assert (refused.value.limit, refused.value.limit_value, refused.value.current, refused.value.retry_after) == (
        "concurrent_allocations", 1, 1, 1)
    assert quotas.release("acme", "req-1") is True
    assert quotas.release("acme", "req-1") is False  # twice: nothing more
    assert quotas.in_flight("acme") == 0
    quotas.acquire("acme", "req-2", one, hold_seconds=300)


def test_tenants_have_separate_counters(tables):
    _, quotas = tables
    one = Quota(1, 1_000, 1, 5)
    quotas.acquire("acme", "req-1", one, hold_seconds=300)
    quotas.acquire("globex", "req-1", one, hold_seconds=300)  # same request id, another tenant
    assert quotas.in_flight("acme") == quotas.in_flight("globex") == 1
    assert quotas.release("globex", "req-1") and quotas.in_flight("acme") == 1


def test_a_request_that_holds_its_slot_already_is_told_so_and_takes_no_second(tables):
    _, quotas = tables
    one = Quota(1, 1_000, 1, 5)
    assert quotas.acquire("acme", "req-1", one, hold_seconds=300) is True
    # The retry after a 504 (same request id): not its slot to give back.
    assert quotas.acquire("acme", "req-1", one, hold_seconds=300) is False
    assert quotas.in_flight("acme") == 1


def test_tokens_per_minute_are_checked_before_and_charged_after(tables, clock):
    _, quotas = tables
    quotas.charge("acme", tokens=1_000, gpu_seconds=1.0, cost_usd=0.001)
    with pytest.raises(QuotaExceeded) as refused:
        quotas.acquire("acme", "req-1", TEN, hold_seconds=300)
    assert refused.value.limit == "tokens_per_minute" and refused.value.current == 1_000
    assert refused.value.retry_after == 30  # the minute's end
    clock.now += 30  # the next minute: the window starts again
    quotas.acquire("acme", "req-1", TEN, hold_seconds=300)
    quotas.charge("acme", tokens=7, gpu_seconds=0.5, cost_usd=0.0005)
    used = quotas.usage("acme")
    assert (used.requests, used.tokens, used.tpm_tokens) == (2, 1_007, 7)
    assert used.gpu_seconds == pytest.approx(1.5) and used.cost_usd == pytest.approx(0.0015)


def test_tiny_charges_are_sent_without_an_exponent(tables):
    _, quotas = tables
    quotas.charge("acme", tokens=1, gpu_seconds=0.025, cost_usd=1e-06)  # repr() would send "1e-06"
    quotas.charge("acme", tokens=1, gpu_seconds=0.025, cost_usd=1e-06)
    assert quotas.usage("acme").cost_usd == pytest.approx(2e-06)


def test_a_late_charge_for_an_earlier_minute_never_rewinds_the_window(tables, clock):
    _, quotas = tables
    quotas.charge("acme", tokens=5, gpu_seconds=0, cost_usd=0)
    clock.now += 60
    quotas.charge("acme", tokens=3, gpu_seconds=0, cost_usd=0)
    clock.now -= 60  # a request of the earlier minute charges last
    quotas.charge("acme", tokens=2, gpu_seconds=0, cost_usd=0)
    used = quotas.usage("acme")
    assert (used.tokens, used.tpm_minute, used.tpm_tokens) == (10, int(NOW // 60) + 1, 3)


@pytest.mark.parametrize(("gpu_seconds", "cost", "limit"), [(3600, 0.1, "gpu_hours_per_month"), (10, 5.0, "usd_per_month")])
def test_spent_budgets_refuse_until_next_month(tables, gpu_seconds, cost, limit):
    _, quotas = tables
    quotas.charge("acme", tokens=1, gpu_seconds=gpu_seconds, cost_usd=cost)
    with pytest.raises(QuotaExceeded) as refused:
        quotas.acquire("acme", "req-1", TEN, hold_seconds=300)
    assert refused.value.limit == limit
    assert refused.value.retry_after == seconds_to_next_month(NOW)
    assert quotas.in_flight("acme") == 0  # the refused transaction took nothing


def test_next_month_is_counted_in_utc():
    assert seconds_to_next_month(NOW) == 4 * 86400 + 12 * 3600 - 30 + 1  # to 2026-12-01 00:00:00 UTC
    assert seconds_to_next_month(1_798_761_599.0) == 2  # 2026-12-31 23:59:59 -> 2027-01-01


class Contended:
    """A DynamoDB client whose first `conflicts` write calls meet a concurrent
    transaction on the same item (TransactionConflict), which moto never
    produces."""

    def __init__(self, client, conflicts: int) -> None:
        self._client, self.conflicts, self.calls = client, conflicts, 0
        self.exceptions = client.exceptions

    def __getattr__(self, name):
        return getattr(self._client, name)

    def transact_write_items(self, **kwargs):
        self.calls += 1
        if self.calls <= self.conflicts:
            reasons = [{"Code": "None"}, {"Code": "TransactionConflict"}] + [{"Code": "None"}] * (
                len(kwargs["TransactItems"]) - 2)
            raise self.exceptions.TransactionCanceledException(
                {"Error": {"Code": "TransactionCanceledException", "Message": "conflict"},
                 "CancellationReasons": reasons}, "TransactWriteItems")
        return self._client.transact_write_items(**kwargs)

    def update_item(self, **kwargs):
        self.calls += 1
        if self.calls <= self.conflicts:
            raise self.exceptions.TransactionConflictException(
                {"Error": {"Code": "TransactionConflictException", "Message": "conflict"}}, "UpdateItem")
        return self._client.update_item(**kwargs)


def test_a_conflicting_transaction_is_retried_not_mistaken_for_a_limit(tables, clock, monkeypatch):
    from harpoon.adapters import quotas as module

    monkeypatch.setattr(module.time, "sleep", lambda _s: None)
    contended = Contended(boto3.client("dynamodb"), conflicts=2)
    quotas = QuotaRepository("usage", contended, clock=clock)
    assert quotas.acquire("acme", "req-1", TEN, hold_seconds=300) is True and contended.calls == 3
    contended.conflicts += 2
    assert quotas.release("acme", "req-1") is True and quotas.in_flight("acme") == 0
    contended.conflicts = contended.calls + 1
    quotas.charge("acme", tokens=5, gpu_seconds=1, cost_usd=0.1)  # a plain update meets one too
    assert quotas.usage("acme").tokens == 5


def test_a_tenant_contended_past_every_retry_is_busy_not_over_quota(tables, clock, monkeypatch):
    from harpoon.adapters import quotas as module

    monkeypatch.setattr(module.time, "sleep", lambda _s: None)
    quotas = QuotaRepository("usage", Contended(boto3.client("dynamodb"), conflicts=100), clock=clock)
    with pytest.raises(module.QuotaBusy):
        quotas.acquire("acme", "req-1", TEN, hold_seconds=300)


def test_the_cleanup_finds_expired_slots_in_every_shard(tables, clock):
    _, quotas = tables
    many = Quota(100, 1_000, 1, 5)
    for i in range(40):
        quotas.acquire("acme", f"req-{i}", many, hold_seconds=60)
    shards = {item["slot_shard"]["S"] for item in items("usage") if item["pk"]["S"].startswith("slot#")}
    assert len(shards) > 1  # spread over the index partitions
    clock.now += 61
    assert quotas.free_expired() == 40 and quotas.in_flight("acme") == 0


def test_the_cleanup_frees_slots_past_their_time_and_only_those(tables, clock):
    _, quotas = tables
    quotas.acquire("acme", "old", TEN, hold_seconds=60)
    quotas.acquire("acme", "new", TEN, hold_seconds=600)
    assert quotas.free_expired() == 0
    clock.now += 61
    assert quotas.expired_slots() == [("acme", "old")]
    assert quotas.free_expired() == 1
    assert quotas.in_flight("acme") == 1 and quotas.release("acme", "new")
