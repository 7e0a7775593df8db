"""Tenants and their API keys in DynamoDB (TenantsTable, key `pk`).

Two kinds of item:
- `tenant#<id>`: tenant_id, tier, status, key_hash, key_hint, created_at;
- `key#<sha256 of the key>`: tenant_id, tier, status. The authorizer reads
  only these: one GetItem per lookup, no index, no scan.
Every change that touches both (create, rotate, disable) is one transaction,
so a key item never outlives or disagrees with its tenant.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from harpoon.tenancy import (
    ACTIVE,
    DISABLED,
    check_api_key,
    check_tenant_id,
    hash_key,
    key_hint,
    new_api_key,
    quota_for,
)


class TenantError(Exception):
    """A tenant operation that cannot be done (exists already, unknown, ...)."""


@dataclass(frozen=True)
class Identity:
    """What a key resolves to."""

    tenant_id: str
    tier: str
    status: str


@dataclass(frozen=True)
class Tenant:
    tenant_id: str
    tier: str
    status: str
    key_hint: str
    created_at: int


def _s(value: str) -> dict:
    return {"S": value}


class TenantRepository:
    def __init__(self, table_name: str, client: Any, *, clock=time.time) -> None:
        self.table = table_name
        self.ddb = client
        self.clock = clock

    def create(self, tenant_id: str, tier: str, *, api_key: str | None = None) -> tuple[Tenant, str]:
        """A new tenant and its API key (the only time the key is shown)."""
        check_tenant_id(tenant_id)
        quota_for(tier)
        key = check_api_key(api_key) if api_key else new_api_key()
        digest, now = hash_key(key), int(self.clock())
        tenant = Tenant(tenant_id, tier, ACTIVE, key_hint(key), now)
        try:
            self.ddb.transact_write_items(TransactItems=[
                {"Put": {"TableName": self.table, "Item": self._tenant_item(tenant, digest),
                         "ConditionExpression": "attribute_not_exists(pk)"}},
                {"Put": {"TableName": self.table, "Item": self._key_item(digest, tenant_id, tier, ACTIVE),
                         "ConditionExpression": "attribute_not_exists(pk)"}},
            ])
        except self.ddb.exceptions.TransactionCanceledException as exc:
            reasons = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
            if reasons[:1] == ["ConditionalCheckFailed"]:
                raise TenantError(f"tenant {tenant_id!r} exists already") from None
            if reasons[1:2] == ["ConditionalCheckFailed"]:
                raise TenantError("that API key is in use by another tenant; choose another") from None
            raise TenantError(f"tenant {tenant_id!r} was not created ({reasons}); run the command again") from None
        return tenant, key

    def identity(self, api_key: str) -> Identity | None:
        item = self.ddb.get_item(TableName=self.table, Key={"pk": _s("key#" + hash_key(api_key))}).get("Item")
        if not item:
            return None
        return Identity(item["tenant_id"]["S"], item["tier"]["S"], item["status"]["S"])

    def get(self, tenant_id: str) -> Tenant | None:
        item = self.ddb.get_item(TableName=self.table, Key={"pk": _s("tenant#" + tenant_id)},
                                 ConsistentRead=True).get("Item")
        return self._tenant(item) if item else None

    def list(self) -> list[Tenant]:
        tenants, start = [], None
        while True:
            kwargs = {"ExclusiveStartKey": start} if start else {}
            page = self.ddb.scan(TableName=self.table, FilterExpression="begins_with(pk, :p)",
                                 ExpressionAttributeValues={":p": _s("tenant#")}, **kwargs)
            tenants += [self._tenant(item) for item in page.get("Items", [])]
            start = page.get("LastEvaluatedKey")
            if not start:
                return sorted(tenants, key=lambda t: t.tenant_id)

    def rotate_key(self, tenant_id: str, *, api_key: str | None = None) -> str:
        """A new key for the tenant; the old one stops working at once (and at
        the authorizer within its cache time)."""
        item = self._require(tenant_id)
        old = item["key_hash"]["S"]
        key = check_api_key(api_key) if api_key else new_api_key()
        digest = hash_key(key)
        # The new key item copies the tier and status read here: the tenant
        # must still have both, or a disable in between would be undone.
        self._transact(tenant_id, [
            {"Update": {"TableName": self.table, "Key": {"pk": _s("tenant#" + tenant_id)},
                        "UpdateExpression": "SET key_hash = :new, key_hint = :hint, rotated_at = :now",
                        "ConditionExpression": "key_hash = :old AND #st = :status AND tier = :tier",
                        "ExpressionAttributeNames": {"#st": "status"},
                        "ExpressionAttributeValues": {":new": _s(digest), ":hint": _s(key_hint(key)),
                                                      ":now": {"N": str(int(self.clock()))}, ":old": _s(old),
                                                      ":status": item["status"], ":tier": item["tier"]}}},
            {"Delete": {"TableName": self.table, "Key": {"pk": _s("key#" + old)}}},
            {"Put": {"TableName": self.table,
                     "Item": self._key_item(digest, tenant_id, item["tier"]["S"], item["status"]["S"]),
                     "ConditionExpression": "attribute_not_exists(pk)"}},
        ])
        return key

    def set_status(self, tenant_id: str, status: str) -> Tenant:
        if status not in (ACTIVE, DISABLED):
            raise TenantError(f"status must be {ACTIVE} or {DISABLED}")
        item = self._require(tenant_id)
        values = {":s": _s(status), ":h": item["key_hash"]}
        self._transact(tenant_id, [
            {"Update": {"TableName": self.table, "Key": {"pk": _s("tenant#" + tenant_id)},
                        "UpdateExpression": "SET #st = :s", "ConditionExpression": "key_hash = :h",
                        "ExpressionAttributeNames": {"#st": "status"}, "ExpressionAttributeValues": values}},
            {"Update": {"TableName": self.table, "Key": {"pk": {"S": "key#" + item["key_hash"]["S"]}},
                        "UpdateExpression": "SET #st = :s", "ConditionExpression": "attribute_exists(pk)",
                        "ExpressionAttributeNames": {"#st": "status"}, "ExpressionAttributeValues": {":s": _s(status)}}},
        ])
        return self._tenant(self._require(tenant_id))

    # --- helpers -----------------------------------------------------------

    def _require(self, tenant_id: str) -> dict:
        item = self.ddb.get_item(TableName=self.table, Key={"pk": _s("tenant#" + tenant_id)},
                                 ConsistentRead=True).get("Item")
        if not item:
            raise TenantError(f"no tenant {tenant_id!r}")
        return item

    def _transact(self, tenant_id: str, items: list[dict]) -> None:
        try:
            self.ddb.transact_write_items(TransactItems=items)
        except self.ddb.exceptions.TransactionCanceledException:
            raise TenantError(f"tenant {tenant_id!r} changed meanwhile; run the command again") from None

    @staticmethod
    def _tenant_item(tenant: Tenant, digest: str) -> dict:
        return {"pk": _s("tenant#" + tenant.tenant_id), "tenant_id": _s(tenant.tenant_id), "tier": _s(tenant.tier),
                "status": _s(tenant.status), "key_hash": _s(digest), "key_hint": _s(tenant.key_hint),
                "created_at": {"N": str(tenant.created_at)}}

    @staticmethod
    def _key_item(digest: str, tenant_id: str, tier: str, status: str) -> dict:
        return {"pk": _s("key#" + digest), "tenant_id": _s(tenant_id), "tier": _s(tier), "status": _s(status)}

    @staticmethod
    def _tenant(item: dict) -> Tenant:
        return Tenant(item["tenant_id"]["S"], item["tier"]["S"], item["status"]["S"], item["key_hint"]["S"],
                      int(item["created_at"]["N"]))
