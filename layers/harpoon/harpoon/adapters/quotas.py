"""Per-tenant quotas and usage in DynamoDB (UsageTable, key `pk`).

Items:
- `conc#<tenant>`: `in_flight`, the tenant's requests holding a GPU now.
- `slot#<tenant>#<request id>`: one per held slot, with `slot_expires_at`
  (sparse index SlotExpiryIndex). Releasing deletes it and decrements the
  counter in one transaction, so a slot is given back exactly once, by the
  API or, if the API never could (crash, timeout), by the cleanup sweep.
- `usage#<tenant>#<YYYY-MM>`: the month's `requests`, `tokens`,
  `gpu_seconds`, `cost_usd`, and the current minute's tokens
  (`tpm_minute`, `tpm_tokens`).

A slot is taken with one transaction: a conditional increment of the counter
(DynamoDB serialises writes to one item, so concurrent requests cannot
overshoot), a condition check that the month's budgets and the minute's
tokens have room, and the slot item. Tokens and budgets are checked before
and charged after the request, so requests already running when a limit is
reached may pass it by what they use.
"""

from __future__ import annotations

import calendar
import hashlib
from decimal import Decimal
import random
import time
from dataclasses import dataclass
from typing import Any

from harpoon.tenancy import Quota

# Held slots spread over this many index partitions (no hot key at high
# request rates); the cleanup queries each.
SLOT_SHARDS = 8
# DynamoDB cancels one of two transactions that touch the same item at once
# (TransactionConflict; botocore does not retry it): tries before giving up.
CONFLICT_TRIES = 6


class QuotaExceeded(Exception):
    def __init__(self, limit: str, limit_value: float, current: float, retry_after: int) -> None:
        super().__init__(f"{limit} quota reached ({current:g} of {limit_value:g})")
        self.limit, self.limit_value, self.current, self.retry_after = limit, limit_value, current, retry_after


class QuotaBusy(Exception):
    """The tenant's quota items stayed contended through every retry."""


@dataclass(frozen=True)
class Usage:
    requests: int = 0
    tokens: int = 0
    gpu_seconds: float = 0.0
    cost_usd: float = 0.0
    tpm_minute: int = 0
    tpm_tokens: int = 0


def month_of(now: float) -> str:
    return time.strftime("%Y-%m", time.gmtime(now))


def seconds_to_next_month(now: float) -> int:
    year, month = time.gmtime(now)[:2]
    year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return max(1, int(calendar.timegm((year, month, 1, 0, 0, 0)) - now) + 1)


def _s(value: str) -> dict:
    return {"S": value}


def _n(value: float) -> dict:
    # Plain decimal notation (0.000001, not 1e-06): an exponent trips some
    # DynamoDB implementations' ADD (moto's among them).
    return {"N": format(Decimal(repr(value)), "f") if isinstance(value, float) else str(value)}


def slot_shard(tenant_id: str, request_id: str) -> str:
    digest = hashlib.sha256(f"{tenant_id}#{request_id}".encode("utf-8")).digest()
    return f"slots#{digest[0] % SLOT_SHARDS}"


def _codes(exc: Exception) -> list[str | None]:
    return [reason.get("Code") for reason in getattr(exc, "response", {}).get("CancellationReasons", [])]


class QuotaRepository:
    def __init__(self, table_name: str, client: Any, *, clock=time.time) -> None:
        self.table = table_name
        self.ddb = client
        self.clock = clock

    def acquire(self, tenant_id: str, request_id: str, quota: Quota, *, hold_seconds: int) -> bool:
        """Take one of the tenant's concurrent-allocation slots for this
        request, or raise QuotaExceeded naming the limit. False: this request
        holds its slot already (a retry with the same request id, while or
        after its first run); that slot is not this call's to give back."""
        now = self.clock()
        minute = int(now // 60)
        room = (
            "attribute_not_exists(pk) OR ("
            "(attribute_not_exists(tpm_minute) OR tpm_minute <> :m OR tpm_tokens < :tpm)"
            " AND (attribute_not_exists(gpu_seconds) OR gpu_seconds < :gs)"
            " AND (attribute_not_exists(cost_usd) OR cost_usd < :usd))"
        )
        items = [
                {"ConditionCheck": {
                    "TableName": self.table, "Key": {"pk": _s(f"usage#{tenant_id}#{month_of(now)}")},
                    "ConditionExpression": room,
                    "ExpressionAttributeValues": {":m": _n(minute), ":tpm": _n(quota.tokens_per_minute),
                                                  ":gs": _n(quota.gpu_hours_per_month * 3600),
                                                  ":usd": _n(float(quota.usd_per_month))}}},
                {"Update": {
                    "TableName": self.table, "Key": {"pk": _s(f"conc#{tenant_id}")},
                    "UpdateExpression": "SET in_flight = if_not_exists(in_flight, :zero) + :one, tenant_id = :t",
                    "ConditionExpression": "attribute_not_exists(in_flight) OR in_flight < :limit",
                    "ExpressionAttributeValues": {":zero": _n(0), ":one": _n(1), ":t": _s(tenant_id),
                                                  ":limit": _n(quota.concurrent_allocations)}}},
                {"Put": {
                    "TableName": self.table,
                    "Item": {"pk": _s(f"slot#{tenant_id}#{request_id}"), "tenant_id": _s(tenant_id),
                             "request_id": _s(request_id), "slot_shard": _s(slot_shard(tenant_id, request_id)),
                             "slot_expires_at": _n(int(now) + hold_seconds)},
                    "ConditionExpression": "attribute_not_exists(pk)"}},
        ]
        codes = self._transact(items)
        if not codes:
            return True
        if codes[2] == "ConditionalCheckFailed":
            return False
        if codes[0] == "ConditionalCheckFailed":
            raise self._budget_exceeded(tenant_id, quota, now)
        if codes[1] == "ConditionalCheckFailed":
            raise QuotaExceeded("concurrent_allocations", quota.concurrent_allocations, self.in_flight(tenant_id),
                                retry_after=1)
        raise QuotaBusy(f"quota transaction cancelled: {codes}")

    def release(self, tenant_id: str, request_id: str) -> bool:
        """Give the slot back; False if it was given back already."""
        codes = self._transact([
            {"Delete": {"TableName": self.table, "Key": {"pk": _s(f"slot#{tenant_id}#{request_id}")},
                        "ConditionExpression": "attribute_exists(pk)"}},
            {"Update": {"TableName": self.table, "Key": {"pk": _s(f"conc#{tenant_id}")},
                        "UpdateExpression": "SET in_flight = in_flight - :one",
                        "ConditionExpression": "in_flight > :zero",
                        "ExpressionAttributeValues": {":one": _n(1), ":zero": _n(0)}}},
        ])
        if not codes:
            return True
        if codes[0] == "ConditionalCheckFailed":
            return False
        raise QuotaBusy(f"quota slot of {request_id} not given back: {codes}")

    def _transact(self, items: list[dict]) -> list[str | None]:
        """Run the transaction: [] when it committed, else each item's
        cancellation code. Conflicts with a concurrent transaction on the same
        item are retried with jittered backoff, as AWS advises."""
        for attempt in range(CONFLICT_TRIES):
            try:
                self.ddb.transact_write_items(TransactItems=items)
                return []
            except self.ddb.exceptions.TransactionCanceledException as exc:
                codes = _codes(exc)
                if "TransactionConflict" not in codes or attempt == CONFLICT_TRIES - 1:
                    return codes + [None] * (len(items) - len(codes))
            except self.ddb.exceptions.TransactionConflictException:
                if attempt == CONFLICT_TRIES - 1:
                    raise
            time.sleep(random.uniform(0, 0.01 * 2**attempt))
        raise AssertionError("unreachable")

    def charge(self, tenant_id: str, *, tokens: int, gpu_seconds: float, cost_usd: float) -> None:
        """Record one finished request's use in its month and minute."""
        now = self.clock()
        key = {"pk": _s(f"usage#{tenant_id}#{month_of(now)}")}
        values = {":one": _n(1), ":t": _n(tokens), ":g": _n(round(gpu_seconds, 3)), ":c": _n(round(cost_usd, 8)),
                  ":m": _n(int(now // 60)), ":tenant": _s(tenant_id)}
        totals = "ADD requests :one, tokens :t, gpu_seconds :g, cost_usd :c SET tenant_id = :tenant"
        attempts = [
            (totals.replace("ADD ", "ADD tpm_tokens :t, "), "tpm_minute = :m"),  # the same minute
            (totals + ", tpm_minute = :m, tpm_tokens = :t",  # a new minute
             "attribute_not_exists(tpm_minute) OR tpm_minute < :m"),
            (totals, None),  # a later minute has begun meanwhile: totals only
        ]
        for expression, condition in attempts:
            kwargs = {"ConditionExpression": condition} if condition else {}
            for attempt in range(CONFLICT_TRIES):
                try:
                    self.ddb.update_item(TableName=self.table, Key=key, UpdateExpression=expression,
                                         ExpressionAttributeValues=values if condition else
                                         {k: v for k, v in values.items() if k != ":m"}, **kwargs)
                    return
                except self.ddb.exceptions.ConditionalCheckFailedException:
                    break  # the next form of the update
                except self.ddb.exceptions.TransactionConflictException:
                    # An acquire's condition check on this item is in flight.
                    if attempt == CONFLICT_TRIES - 1:
                        raise
                    time.sleep(random.uniform(0, 0.01 * 2**attempt))

    def usage(self, tenant_id: str, month: str | None = None) -> Usage:
        item = self.ddb.get_item(TableName=self.table, ConsistentRead=True,
                                 Key={"pk": _s(f"usage#{tenant_id}#{month or month_of(self.clock())}")}).get("Item")
        if not item:
            return Usage()
        number = lambda name: float(item.get(name, {"N": "0"})["N"])  # noqa: E731
        return Usage(int(number("requests")), int(number("tokens")), number("gpu_seconds"), number("cost_usd"),
                     int(number("tpm_minute")), int(number("tpm_tokens")))

    def in_flight(self, tenant_id: str) -> int:
        item = self.ddb.get_item(TableName=self.table, Key={"pk": _s(f"conc#{tenant_id}")},
                                 ConsistentRead=True).get("Item")
        return int(item["in_flight"]["N"]) if item else 0

    def expired_slots(self, *, as_of: float | None = None) -> list[tuple[str, str]]:
        """(tenant, request id) of every slot whose holder is past its time."""
        now = _n(int(as_of if as_of is not None else self.clock()))
        found = []
        for shard in range(SLOT_SHARDS):
            start = None
            while True:
                page = self.ddb.query(
                    TableName=self.table, IndexName="SlotExpiryIndex",
                    KeyConditionExpression="slot_shard = :s AND slot_expires_at <= :now",
                    ExpressionAttributeValues={":s": _s(f"slots#{shard}"), ":now": now},
                    **({"ExclusiveStartKey": start} if start else {}),
                )
                found += [(item["tenant_id"]["S"], item["request_id"]["S"]) for item in page.get("Items", [])]
                start = page.get("LastEvaluatedKey")
                if not start:
                    break
        return found

    def free_expired(self, *, as_of: float | None = None) -> int:
        """Give back the slots whose request never did (the cleanup's job);
        how many were freed now."""
        freed = 0
        for tenant_id, request_id in self.expired_slots(as_of=as_of):
            try:
                freed += self.release(tenant_id, request_id)
            except Exception:  # noqa: BLE001 - still due: the next sweep tries again
                continue
        return freed

    def _budget_exceeded(self, tenant_id: str, quota: Quota, now: float) -> QuotaExceeded:
        used = self.usage(tenant_id, month_of(now))
        if used.cost_usd >= quota.usd_per_month:
            return QuotaExceeded("usd_per_month", quota.usd_per_month, used.cost_usd, seconds_to_next_month(now))
        if used.gpu_seconds >= quota.gpu_hours_per_month * 3600:
            return QuotaExceeded("gpu_hours_per_month", quota.gpu_hours_per_month, round(used.gpu_seconds / 3600, 4),
                                 seconds_to_next_month(now))
        return QuotaExceeded("tokens_per_minute", quota.tokens_per_minute, used.tpm_tokens,
                             max(1, 60 - int(now) % 60))
