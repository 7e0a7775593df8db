"""TenantRepository and QuotaRepository on moto, with the tables exactly as
the template declares them. Concurrency runs threads released together
against moto with DynamoDB's per-item write atomicity (local.ddb_atomic)."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

from harpoon.adapters.quotas import Charge, QuotaExceeded, QuotaRepository, seconds_to_next_month
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
    [item] = [item for item in items("usage") if item["pk"]["S"] == "quota#acme"]
    assert len(item["slots"]["M"]) == 10


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
    assert quotas.in_flight("acme") == 0  # the refused update took nothing


def test_next_month_is_counted_in_utc():
    assert seconds_to_next_month(NOW) == 4 * 86400 + 12 * 3600 - 30 + 1  # to 2026-12-01 00:00:00 UTC
    assert seconds_to_next_month(1_798_761_599.0) == 2  # 2026-12-31 23:59:59 -> 2027-01-01


class Counting:
    """A DynamoDB client that counts its calls by operation."""

    def __init__(self, client) -> None:
        self._client, self.calls = client, []
        self.exceptions = client.exceptions

    def __getattr__(self, name):
        def call(**kwargs):
            self.calls.append(name)
            return getattr(self._client, name)(**kwargs)
        return call


def test_a_request_costs_two_writes_and_no_read(tables, clock):
    counting = Counting(boto3.client("dynamodb"))
    quotas = QuotaRepository("usage", counting, clock=clock)
    quotas.acquire("acme", "req-0", TEN, hold_seconds=300)  # the tenant's first: creates its item and month
    quotas.release("acme", "req-0", charge=Charge(tokens=10, gpu_seconds=1.0, cost_usd=0.001))
    counting.calls.clear()
    assert quotas.acquire("acme", "req-1", TEN, hold_seconds=300) is True
    assert quotas.release("acme", "req-1", charge=Charge(tokens=5, gpu_seconds=0.5, cost_usd=0.0005)) is True
    assert counting.calls == ["update_item", "update_item"]
    assert quotas.in_flight("acme") == 0
    used = quotas.usage("acme")
    assert (used.requests, used.tokens, used.tpm_tokens) == (2, 15, 15)
    assert used.gpu_seconds == pytest.approx(1.5)
    # Given back already (a write botocore retried after its answer was lost): not charged twice.
    assert quotas.release("acme", "req-1", charge=Charge(tokens=5, gpu_seconds=0.5, cost_usd=0.0005)) is False
    assert quotas.usage("acme").requests == 2


class Racing:
    """A client whose first `races` acquires are refused although the item
    they get back shows room: another writer changed it in between."""

    def __init__(self, client, races: int) -> None:
        self._client, self.races = client, races
        self.exceptions = client.exceptions

    def __getattr__(self, name):
        return getattr(self._client, name)

    def update_item(self, **kwargs):
        if "size(slots)" in kwargs.get("ConditionExpression", "") and self.races > 0:
            self.races -= 1
            item = self._client.get_item(TableName=kwargs["TableName"], Key=kwargs["Key"]).get("Item")
            raise self.exceptions.ConditionalCheckFailedException(
                {"Error": {"Code": "ConditionalCheckFailedException", "Message": "race"}, "Item": item},
                "UpdateItem")
        return self._client.update_item(**kwargs)


def test_an_acquire_that_lost_a_race_tries_again_and_is_busy_only_if_it_never_wins(tables, clock):
    from harpoon.adapters.quotas import QuotaBusy

    quotas = QuotaRepository("usage", Racing(boto3.client("dynamodb"), races=3), clock=clock)
    assert quotas.acquire("acme", "req-1", TEN, hold_seconds=300) is True
    assert quotas.in_flight("acme") == 1
    quotas = QuotaRepository("usage", Racing(boto3.client("dynamodb"), races=100), clock=clock)
    with pytest.raises(QuotaBusy):
        quotas.acquire("acme", "req-2", TEN, hold_seconds=300)
    assert quotas.in_flight("acme") == 1


def test_a_slot_never_given_back_is_taken_back_by_the_acquire_it_blocks(tables, clock):
    _, quotas = tables
    two = Quota(2, 1_000, 1, 5)
    quotas.acquire("acme", "lost", two, hold_seconds=60)  # its API crashed: never released
    quotas.acquire("acme", "live", two, hold_seconds=600)
    with pytest.raises(QuotaExceeded):
        quotas.acquire("acme", "next", two, hold_seconds=600)  # not expired yet: still counts
    clock.now += 61
    assert quotas.in_flight("acme") == 1  # the expired one is not counted
    assert quotas.acquire("acme", "next", two, hold_seconds=600) is True
    assert quotas.release("acme", "lost") is False  # taken back
    assert quotas.release("acme", "live") is True and quotas.release("acme", "next") is True


def test_a_new_month_archives_the_last_one_and_starts_its_budgets_again(tables, clock):
    _, quotas = tables
    quotas.charge("acme", tokens=1, gpu_seconds=10, cost_usd=5.0)  # November's budget spent
    with pytest.raises(QuotaExceeded):
        quotas.acquire("acme", "req-1", TEN, hold_seconds=300)
    clock.now += seconds_to_next_month(NOW)  # December
    assert quotas.acquire("acme", "req-1", TEN, hold_seconds=300) is True
    quotas.release("acme", "req-1", charge=Charge(tokens=2, gpu_seconds=1, cost_usd=0.5))
    november, december = quotas.usage("acme", "2026-11"), quotas.usage("acme")
    assert (november.requests, november.cost_usd) == (1, 5.0)
    assert (december.requests, december.tokens, december.cost_usd) == (1, 2, 0.5)
    assert quotas.in_flight("acme") == 0


def test_a_charge_from_a_clock_still_in_the_last_month_goes_to_the_new_one(tables, clock):
    _, quotas = tables
    clock.now += seconds_to_next_month(NOW)
    quotas.charge("acme", tokens=1, gpu_seconds=1, cost_usd=0.1)  # December begun
    clock.now -= 5  # a Lambda whose clock is a little behind
    quotas.charge("acme", tokens=1, gpu_seconds=1, cost_usd=0.1)
    assert quotas.usage("acme", "2026-12").requests == 2
    assert quotas.usage("acme", "2026-11").requests == 0


class Meddling:
    """A client that runs `meddle()` once, just before the first call of
    `operation` whose arguments satisfy `when`: another writer getting in
    between a read (or a refusal) and the write that follows it."""

    def __init__(self, client, operation: str, when, meddle) -> None:
        self._client, self._operation, self._when, self._meddle = client, operation, when, meddle
        self.exceptions = client.exceptions

    def __getattr__(self, name):
        method = getattr(self._client, name)
        if name != self._operation:
            return method

        def call(**kwargs):
            if self._meddle and self._when(kwargs):
                meddle, self._meddle = self._meddle, None
                meddle()
            return method(**kwargs)
        return call


def test_a_charge_landing_while_a_new_month_begins_is_kept_in_its_month(tables, clock):
    _, quotas = tables
    quotas.charge("acme", tokens=1, gpu_seconds=1, cost_usd=0.1)  # November
    late = QuotaRepository("usage", boto3.client("dynamodb"), clock=lambda: NOW)  # a clock still in November
    december = QuotaRepository("usage", Meddling(
        boto3.client("dynamodb"), "update_item", lambda kw: "prev_month" in kw["UpdateExpression"],
        lambda: late.charge("acme", tokens=2, gpu_seconds=2, cost_usd=0.2)), clock=clock)
    clock.now += seconds_to_next_month(NOW)
    december.charge("acme", tokens=4, gpu_seconds=4, cost_usd=0.4)
    november = quotas.usage("acme", "2026-11")
    assert (november.requests, november.tokens) == (2, 3) and november.cost_usd == pytest.approx(0.3)
    assert (quotas.usage("acme").requests, quotas.usage("acme").tokens) == (1, 4)
    [archived] = [i for i in items("usage") if i["pk"]["S"] == "usage#acme#2026-11"]
    assert archived["requests"]["N"] == "2"


def test_two_releases_racing_into_a_new_minute_both_count_in_it(tables, clock):
    _, quotas = tables
    quotas.charge("acme", tokens=1, gpu_seconds=0, cost_usd=0)
    clock.now += 60
    other = QuotaRepository("usage", boto3.client("dynamodb"), clock=clock)
    racing = QuotaRepository("usage", Meddling(
        boto3.client("dynamodb"), "update_item", lambda kw: "tpm_minute = :minute," in kw["UpdateExpression"],
        lambda: other.charge("acme", tokens=3, gpu_seconds=0, cost_usd=0)), clock=clock)
    racing.charge("acme", tokens=4, gpu_seconds=0, cost_usd=0)  # its new-minute write loses to the other's
    used = quotas.usage("acme")
    assert (used.tpm_minute, used.tpm_tokens, used.tokens) == (int(clock.now // 60), 7, 8)


def test_a_finish_decided_elsewhere_is_charged_even_if_its_slot_was_taken_back(tables, clock):
    _, quotas = tables
    quotas.acquire("acme", "req-1", TEN, hold_seconds=300)
    quotas.release("acme", "req-1")  # taken back (say: expired, and a full tenant's acquire freed it)
    assert quotas.release("acme", "req-1", charge=Charge(tokens=3, gpu_seconds=1, cost_usd=0.1)) is False
    assert quotas.usage("acme").requests == 0  # a retried write: not charged
    assert quotas.release("acme", "req-1", charge=Charge(tokens=3, gpu_seconds=1, cost_usd=0.1),
                          charge_if_freed=True) is False
    assert quotas.usage("acme").requests == 1
