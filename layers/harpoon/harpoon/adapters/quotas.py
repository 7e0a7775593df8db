"""Per-tenant quotas and usage in DynamoDB (UsageTable, key `pk`).

One item per tenant, `quota#<tenant>`, so that a request costs two writes
(one to take a slot, one to give it back and charge what it used; the first
release of a minute adds a refused write, the first of a month a read and
two writes):

- `slots`: a map, one entry per slot not yet given back (a short hash of the
  request id -> the time after which the slot may be taken back).
- `month` and that month's `requests`, `tokens`, `gpu_seconds`, `cost_usd`;
  `prev_month` and `prev_*`, the month before; `tpm_minute` and
  `tpm_tokens`, the current minute's tokens.
- `usage#<tenant>#<YYYY-MM>`: a past month's totals, copied there when the
  next month begins.

A slot is taken with one conditional UpdateItem: the map has room, this
request holds no slot yet, and the minute's tokens and the month's budgets
have room. DynamoDB serialises writes to one item, so concurrent requests
cannot overshoot. A slot whose request never gave it back (the API crashed or
timed out) costs nothing until it blocks the tenant; the acquire that finds
the map full frees the expired entries and tries again, so no sweep is needed.
Tokens and budgets are checked before and charged after the request, so
requests already running when a limit is reached may pass it by what they use.
"""

from __future__ import annotations

import calendar
import hashlib
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from harpoon.tenancy import Quota

# Tries of an acquire that keeps racing other writers of the same item.
CONTENDED_TRIES = 6


class QuotaExceeded(Exception):
    def __init__(self, limit: str, limit_value: float, current: float, retry_after: int) -> None:
        super().__init__(f"{limit} quota reached ({current:g} of {limit_value:g})")
        self.limit, self.limit_value, self.current, self.retry_after = limit, limit_value, current, retry_after


class QuotaBusy(Exception):
    """The tenant's quota item kept changing under every try."""


@dataclass(frozen=True)
class Usage:
    requests: int = 0
    tokens: int = 0
    gpu_seconds: float = 0.0
    cost_usd: float = 0.0
    tpm_minute: int = 0
    tpm_tokens: int = 0


@dataclass(frozen=True)
class Charge:
    tokens: int
    gpu_seconds: float
    cost_usd: float


def month_of(now: float) -> str:
    return time.strftime("%Y-%m", time.gmtime(now))


def seconds_to_next_month(now: float) -> int:
    year, month = time.gmtime(now)[:2]
    year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return max(1, int(calendar.timegm((year, month, 1, 0, 0, 0)) - now) + 1)


def slot_key(request_id: str) -> str:
    # 64 bits: the map holds at most a tier's concurrent slots, so a
    # collision is out of reach, and the item stays small (write units
    # count its size).
    return hashlib.sha256(request_id.encode("utf-8")).hexdigest()[:16]


def _s(value: str) -> dict:
    return {"S": value}


def _n(value: float) -> dict:
    # Plain decimal notation (0.000001, not 1e-06): an exponent trips some
    # DynamoDB implementations' ADD (moto's among them).
    return {"N": format(Decimal(repr(value)), "f") if isinstance(value, float) else str(value)}


def _num(item: dict, name: str) -> float:
    return float(item.get(name, {"N": "0"})["N"])


NAMES = {"#mo": "month", "#req": "requests", "#tok": "tokens"}
TOTAL_NAMES = ("requests", "tokens", "gpu_seconds", "cost_usd")


class QuotaRepository:
    def __init__(self, table_name: str, client: Any, *, clock=time.time) -> None:
        self.table = table_name
        self.ddb = client
        self.clock = clock

    def _key(self, tenant_id: str) -> dict:
        return {"pk": _s(f"quota#{tenant_id}")}

    # --- slots -----------------------------------------------------------------

    def acquire(self, tenant_id: str, request_id: str, quota: Quota, *, hold_seconds: int) -> bool:
        """Take one of the tenant's concurrent-allocation slots for this
        request, or raise QuotaExceeded naming the limit. False: this request
        holds its slot already (a retry with the same request id, while or
        after its first run); that slot is not this call's to give back."""
        key = slot_key(request_id)
        for _ in range(CONTENDED_TRIES):
            now = self.clock()
            try:
                self.ddb.update_item(
                    TableName=self.table, Key=self._key(tenant_id),
                    UpdateExpression="SET slots.#k = :exp, tenant_id = :t",
                    ConditionExpression=(
                        "attribute_exists(slots) AND attribute_not_exists(slots.#k) AND size(slots) < :limit"
                        " AND (attribute_not_exists(tpm_minute) OR tpm_minute <> :m OR tpm_tokens < :tpm)"
                        " AND (attribute_not_exists(#mo) OR #mo <> :mo OR (gpu_seconds < :gs AND cost_usd < :usd))"
                    ),
                    ExpressionAttributeNames={"#k": key, "#mo": "month"},
                    ExpressionAttributeValues={
                        ":exp": _n(int(now) + hold_seconds), ":t": _s(tenant_id),
                        ":limit": _n(quota.concurrent_allocations), ":m": _n(int(now // 60)),
                        ":tpm": _n(quota.tokens_per_minute), ":mo": _s(month_of(now)),
                        ":gs": _n(quota.gpu_hours_per_month * 3600), ":usd": _n(float(quota.usd_per_month)),
                    },
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
                return True
            except self.ddb.exceptions.ConditionalCheckFailedException as exc:
                item = exc.response.get("Item")
            except self.ddb.exceptions.ClientError as exc:
                # The tenant's first request: `slots` does not exist yet.
                if "document path" not in str(exc):
                    raise
                item = None
            if item is None or "slots" not in item:
                self.ddb.update_item(TableName=self.table, Key=self._key(tenant_id),
                                     UpdateExpression="SET slots = if_not_exists(slots, :empty), tenant_id = :t",
                                     ExpressionAttributeValues={":empty": {"M": {}}, ":t": _s(tenant_id)})
                continue
            slots = item["slots"]["M"]
            if key in slots:
                return False
            refusal = self._refusal(item, quota, now)
            if refusal is not None:
                raise refusal
            if len(slots) >= quota.concurrent_allocations:
                expired = {k: v for k, v in slots.items() if float(v["N"]) <= now}
                if not expired:
                    raise QuotaExceeded("concurrent_allocations", quota.concurrent_allocations, len(slots),
                                        retry_after=1)
                self._take_back(tenant_id, expired)
            # Otherwise the item changed between the write and its refusal: try again.
        raise QuotaBusy(f"quota item of {tenant_id} kept changing over {CONTENDED_TRIES} tries")

    def _take_back(self, tenant_id: str, expired: dict) -> None:
        """Free slots whose requests are past their time, each only if it is
        still the entry read (a request that reused the key is left alone)."""
        names = {f"#e{i}": k for i, k in enumerate(expired)}
        values = {f":e{i}": v for i, v in enumerate(expired.values())}
        try:
            self.ddb.update_item(
                TableName=self.table, Key=self._key(tenant_id),
                UpdateExpression="REMOVE " + ", ".join(f"slots.{n}" for n in names),
                ConditionExpression=" AND ".join(f"slots.{n} = :e{i}" for i, n in enumerate(names)),
                ExpressionAttributeNames=names, ExpressionAttributeValues=values,
            )
        except self.ddb.exceptions.ConditionalCheckFailedException:
            pass  # freed or renewed meanwhile: the next try reads again

    def _refusal(self, item: dict, quota: Quota, now: float) -> QuotaExceeded | None:
        """The budget the stored item says is spent, if any."""
        if item.get("month", {}).get("S") == month_of(now):
            if _num(item, "cost_usd") >= quota.usd_per_month:
                return QuotaExceeded("usd_per_month", quota.usd_per_month, _num(item, "cost_usd"),
                                     seconds_to_next_month(now))
            if _num(item, "gpu_seconds") >= quota.gpu_hours_per_month * 3600:
                return QuotaExceeded("gpu_hours_per_month", quota.gpu_hours_per_month,
                                     round(_num(item, "gpu_seconds") / 3600, 4), seconds_to_next_month(now))
        if _num(item, "tpm_minute") == int(now // 60) and _num(item, "tpm_tokens") >= quota.tokens_per_minute:
            return QuotaExceeded("tokens_per_minute", quota.tokens_per_minute, int(_num(item, "tpm_tokens")),
                                 max(1, 60 - int(now) % 60))
        return None

    def release(self, tenant_id: str, request_id: str, *, charge: Charge | None = None,
                charge_if_freed: bool = False) -> bool:
        """Give the slot back and, for a finished request, charge what it used,
        in one write. False if the slot had been given back already: then
        nothing is charged (a retried write), unless `charge_if_freed` (the
        caller makes sure it charges once: an async request finished late,
        whose expired slot another request took back)."""
        if charge is not None:
            return self._charge(tenant_id, charge, slot=slot_key(request_id), charge_if_freed=charge_if_freed)
        try:
            self.ddb.update_item(TableName=self.table, Key=self._key(tenant_id),
                                 UpdateExpression="REMOVE slots.#k", ConditionExpression="attribute_exists(slots.#k)",
                                 ExpressionAttributeNames={"#k": slot_key(request_id)})
        except self.ddb.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def in_flight(self, tenant_id: str) -> int:
        """Slots held now (expired ones, whose requests never gave them back,
        are not counted)."""
        item = self._item(tenant_id)
        now = self.clock()
        return sum(1 for v in item.get("slots", {}).get("M", {}).values() if float(v["N"]) > now)

    # --- usage ----------------------------------------------------------------------

    def charge(self, tenant_id: str, *, tokens: int, gpu_seconds: float, cost_usd: float) -> None:
        """Record one finished request's use in its month and minute."""
        self._charge(tenant_id, Charge(tokens, gpu_seconds, cost_usd), slot=None)

    def _charge(self, tenant_id: str, charge: Charge, *, slot: str | None, charge_if_freed: bool = False) -> bool:
        """Add the charge to the current month and minute and, given `slot`,
        free it in the same write, only while it is held: a write retried
        after its answer was lost (botocore retries timeouts and 5xx) finds
        the slot gone and charges nothing more. True if the slot was held.

        One write when the item's minute is this one; the first release of a
        minute costs a refused write first (the refusal returns the item,
        which says which form applies); a new month first moves the last
        one's totals aside."""
        values = {":one": _n(1), ":t": _n(charge.tokens), ":g": _n(round(charge.gpu_seconds, 3)),
                  ":c": _n(round(charge.cost_usd, 8)), ":tenant": _s(tenant_id)}
        names = dict(NAMES)
        remove = held = ""
        if slot is not None:
            names["#k"] = slot
            remove, held = " REMOVE slots.#k", " AND attribute_exists(slots.#k)"
        add = "ADD #req :one, #tok :t, gpu_seconds :g, cost_usd :c"
        same_minute = (f"{add}, tpm_tokens :t SET tenant_id = :tenant", "#mo = :mo AND tpm_minute = :minute")
        new_minute = (f"{add} SET tenant_id = :tenant, tpm_minute = :minute, tpm_tokens = :t",
                      "#mo = :mo AND (attribute_not_exists(tpm_minute) OR tpm_minute < :minute)")
        totals_only = (f"{add} SET tenant_id = :tenant", "#mo = :mo")  # a later minute has begun: not this one's
        form = same_minute
        later = ""  # a month the item has begun that this clock has not reached yet
        for _ in range(2 * CONTENDED_TRIES):
            now = self.clock()
            month, minute = max(month_of(now), later), int(now // 60)
            expression, condition = form
            try:
                self.ddb.update_item(
                    TableName=self.table, Key=self._key(tenant_id), UpdateExpression=expression + remove,
                    ConditionExpression=condition + held, ExpressionAttributeNames=names,
                    ExpressionAttributeValues={**values, ":mo": _s(month),
                                               **({":minute": _n(minute)} if ":minute" in condition else {})},
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
                return slot is not None
            except self.ddb.exceptions.ConditionalCheckFailedException as exc:
                item = exc.response.get("Item") or {}
            except self.ddb.exceptions.ClientError as exc:
                if "document path" not in str(exc):
                    raise
                return False  # no `slots` map at all: no slot held, nothing to charge it for
            if slot is not None and slot not in item.get("slots", {}).get("M", {}):
                if not charge_if_freed:
                    return False  # given back (and charged) already
                names.pop("#k")
                slot, remove, held = None, "", ""
                continue
            stored = item.get("month", {}).get("S")
            if stored is not None and stored > month:
                later = stored  # charge the item's month (clocks differ at its turn)
            elif stored != month:
                self._new_month(tenant_id, month)
            elif "tpm_minute" not in item or int(item["tpm_minute"]["N"]) < minute:
                form = new_minute
            elif int(item["tpm_minute"]["N"]) == minute:
                form = same_minute
            else:
                form = totals_only
        raise QuotaBusy(f"usage of {tenant_id} not recorded: its quota item kept changing")

    def _new_month(self, tenant_id: str, month: str) -> None:
        """Start `month` at zero, moving the item's month's totals to `prev_*`
        in the same write (fenced on the month read, so no charge falls
        between), then copy them to `usage#<tenant>#<month>`. A copy that
        failed is made again at the next month's turn, from `prev_*`."""
        item = self._item(tenant_id)
        old = item.get("month", {}).get("S")
        if old is not None and old >= month:
            return  # another charge started it meanwhile
        if "prev_month" in item:
            self._archive(tenant_id, item)
        start = "#mo = :mo, #req = :z, #tok = :z, gpu_seconds = :z, cost_usd = :z, tenant_id = :t"
        values = {":mo": _s(month), ":z": _n(0), ":t": _s(tenant_id)}
        if old is None:
            expression, condition = f"SET {start}", "attribute_not_exists(#mo)"
        else:
            expression = ("SET prev_month = #mo, prev_requests = #req, prev_tokens = #tok, "
                          f"prev_gpu_seconds = gpu_seconds, prev_cost_usd = cost_usd, {start}")
            condition, values[":old"] = "#mo = :old", _s(old)
        try:
            result = self.ddb.update_item(
                TableName=self.table, Key=self._key(tenant_id), UpdateExpression=expression,
                ConditionExpression=condition, ExpressionAttributeNames=dict(NAMES),
                ExpressionAttributeValues=values, ReturnValues="ALL_NEW",
            )
        except self.ddb.exceptions.ConditionalCheckFailedException:
            return  # another charge started the month first
        if old is not None:
            try:
                self._archive(tenant_id, result["Attributes"])
            except Exception:  # noqa: BLE001 - prev_* keeps it; the next month's turn copies it
                pass

    def _archive(self, tenant_id: str, item: dict) -> None:
        """Copy the item's `prev_*` month to its own item (idempotent: the
        same values every time)."""
        archive = {"pk": _s(f"usage#{tenant_id}#{item['prev_month']['S']}"), "tenant_id": _s(tenant_id),
                   "month": item["prev_month"]}
        archive.update({name: item[f"prev_{name}"] for name in TOTAL_NAMES if f"prev_{name}" in item})
        self.ddb.put_item(TableName=self.table, Item=archive)

    def usage(self, tenant_id: str, month: str | None = None) -> Usage:
        month = month or month_of(self.clock())
        item = self._item(tenant_id)
        if item.get("prev_month", {}).get("S") == month:
            item = {name: item[f"prev_{name}"] for name in TOTAL_NAMES if f"prev_{name}" in item}
        elif item.get("month", {}).get("S") != month:
            item = self.ddb.get_item(TableName=self.table, ConsistentRead=True,
                                     Key={"pk": _s(f"usage#{tenant_id}#{month}")}).get("Item") or {}
        return Usage(int(_num(item, "requests")), int(_num(item, "tokens")), _num(item, "gpu_seconds"),
                     _num(item, "cost_usd"), int(_num(item, "tpm_minute")), int(_num(item, "tpm_tokens")))

    def _item(self, tenant_id: str) -> dict:
        return self.ddb.get_item(TableName=self.table, Key=self._key(tenant_id), ConsistentRead=True).get("Item") or {}
