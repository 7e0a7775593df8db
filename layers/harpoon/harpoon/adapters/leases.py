r"""Allocation leases in DynamoDB: Harpoon's ledger of GPUs it holds.

Two kinds of item share the table:

- a **request lease** (lease_id = request id), from intent to release:

      PENDING --allocate ok / warm claim--> ACTIVE --release--> RELEASED
         |                                    |  \--back to the warm pool--> RELEASED (+ a warm lease)
         |                                    \--release failed / reclaimed--> RELEASING --> RELEASED
         |--no GPU can exist--> FAILED
         \--the workflow gave up (or the sweep did) while an answer may be lost--> ABANDONED --> RELEASED

- a **warm lease** (lease_id = "warm#<allocation id>"): an allocation kept
  IDLE for the next request for the same (tenant, pool, model). A claim
  deletes it and makes a request lease ACTIVE with its allocation in one
  transaction, so exactly one claimer wins and the GPU is never in neither.

Every transition is conditional on the state; the sweep's take-over is also
conditional on the version it read and on the lease still being expired (its
fencing token), so it never takes a lease its execution renewed or a warm
lease a request claimed. Where both may still act (a RELEASING lease: the
step's retry and the sweep both release it), the second hears HostedAI's 404,
already gone, and its write changes nothing.

**Lease expiry.** `lease_expires_at` says when the sweep may take a lease
over: for ACTIVE, the end of the time its execution may still use it
(renewed by Infer); for PENDING, the last allocate call plus the time an
answer may still be in flight; for IDLE, the end of its idle time. Items that
may hold a GPU carry `expiry_shard` too, which puts them in the sparse
**ExpiryIndex** (`expiry_shard`, `lease_expires_at`). The sweep queries each
shard for `lease_expires_at <= now`, so it reads only what is due, whatever
the table's size. Settled items leave the index (REMOVE) and get `purge_at`,
the table's TTL attribute: DynamoDB TTL only garbage-collects what is done.

**Pending keys** are the heart of "nothing leaks": the allocate
Idempotency-Keys whose outcome is unknown. A key is added *before* HostedAI
is asked with it and removed only when its outcome is known. `requests`
keeps the exact body sent with each key, so the sweep can ask again with the
same key and learn whether a GPU exists.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

from harpoon.errors import LeaseConflictError, LeaseLostError, RequestAlreadyRunError, RequestInFlightError

PENDING, ACTIVE, IDLE, RELEASING, RELEASED, FAILED, ABANDONED = (
    "PENDING", "ACTIVE", "IDLE", "RELEASING", "RELEASED", "FAILED", "ABANDONED",
)
HOLDING = (ACTIVE, IDLE, RELEASING)  # the lease holds a GPU at HostedAI

EXPIRY_INDEX = "ExpiryIndex"
WARM_INDEX = "WarmIndex"
# Writes to one GSI partition are capped (1,000 WCU/s); spreading the due
# leases over a fixed number of shards keeps any hot partition away. Never
# lower it in place: the sweep would stop reading the shards above it.
EXPIRY_SHARDS = 8
WARM_PREFIX = "warm#"
DEFAULT_TENANT = "default"


@dataclass(frozen=True)
class LeasePolicy:
    """Times that bound how long anything may stay unreclaimed."""

    lease_ttl_seconds: int = 120  # an ACTIVE lease without renewal (>= Infer + Release budgets)
    reconcile_after_seconds: int = 60  # after the last call with a key, its answer can no longer be in flight
    retention_seconds: int = 7 * 24 * 3600  # settled items stay this long for audits, then TTL deletes them
    sweep_retry_seconds: int = 30  # a lease the sweep could not settle is tried again after this (doubling, <= 1 h)

    @property
    def warm_margin_seconds(self) -> int:
        """A warm GPU is handed out only while HostedAI keeps it this much
        longer: the rest of the longest request after Allocate (Infer with
        its retries, then Release with its retries; tests/template checks it
        against the state machine)."""
        return 2 * self.lease_ttl_seconds


@dataclass(frozen=True)
class Lease:
    lease_id: str
    status: str
    model: str
    pool_id: str
    idempotency_key: str | None = None
    tenant_id: str = DEFAULT_TENANT
    allocation_id: str | None = None
    assigned_gpu: str | None = None
    allocation_expires_at: int | None = None  # HostedAI's own expiry of the allocation
    lease_expires_at: int | None = None  # when the sweep may take over (None: settled)
    version: int = 0
    pending_keys: frozenset = frozenset()  # idempotency keys whose outcome is unknown
    requests: dict | None = None  # key -> the allocate body sent with it
    route_reason: str | None = None
    updated_at: int = 0
    last_call_at: int = 0
    created: bool = False  # True only on the begin() call that created it
    execution_id: str | None = None  # the execution that owns it
    warm: bool = False  # its allocation came from the warm pool
    returned_warm: bool = False  # its allocation went back to the warm pool at release
    sweep_attempts: int = 0
    sweep_token: str | None = None  # set by the sweep's take-over: its fencing token

    @property
    def is_warm_lease(self) -> bool:
        return self.lease_id.startswith(WARM_PREFIX)


def same_execution(owner: str | None, caller: str | None) -> bool:
    """Leases written without an execution id (direct calls) are anyone's;
    otherwise only the owning execution may act on them."""
    return owner is None or caller is None or owner == caller


def expiry_shard(lease_id: str) -> str:
    return str(int(hashlib.sha256(lease_id.encode("utf-8")).hexdigest()[:8], 16) % EXPIRY_SHARDS)


def warm_pool_key(tenant_id: str, pool_id: str, model: str) -> str:
    # Tenant first: a GPU that served one tenant is never handed to another.
    return f"{tenant_id}#{pool_id}#{model}"


def _s(value: str) -> dict:
    return {"S": value}


def _n(value: int | float) -> dict:
    return {"N": str(int(value))}


class LeaseRepository:
    def __init__(self, table_name: str, client: Any, clock=time.time, policy: LeasePolicy | None = None) -> None:
        self._table = table_name
        self._ddb = client
        self._clock = clock
        self.policy = policy or LeasePolicy()

    def now(self) -> int:
        return int(self._clock())

    # --- the request path: allocate ---------------------------------------------

    def begin(
        self,
        *,
        lease_id: str,
        model: str,
        pool_id: str,
        idempotency_key: str,
        request: dict,
        execution_id: str | None = None,
        tenant_id: str = DEFAULT_TENANT,
    ) -> Lease:
        """Record the intent to allocate with `idempotency_key` (one write on
        the happy path) and return the lease as stored.

        Idempotent for a retried step: an existing PENDING lease is renewed and
        returned as the earlier attempt left it, and an ACTIVE one too (the
        first run finished but its answer was lost). Any other state, or a
        lease owned by another execution, is a conflict."""
        now = self.now()
        item = {
            "lease_id": _s(lease_id),
            "status": _s(PENDING),
            "tenant_id": _s(tenant_id),
            "model": _s(model),
            "pool_id": _s(pool_id),
            "idempotency_key": _s(idempotency_key),
            "pending_keys": {"SS": [idempotency_key]},
            "requests": {"M": {idempotency_key: _s(json.dumps(request, sort_keys=True))}},
            "created_at": _n(now),
            "updated_at": _n(now),
            "last_call_at": _n(now),
            "expiry_shard": _s(expiry_shard(lease_id)),
            "lease_expires_at": _n(now + self.policy.reconcile_after_seconds),
            "version": _n(1),
        }
        if execution_id:
            item["execution_id"] = _s(execution_id)
        try:
            self._ddb.put_item(TableName=self._table, Item=item, ConditionExpression="attribute_not_exists(lease_id)")
            return _lease(item, created=True)
        except self._ddb.exceptions.ConditionalCheckFailedException:
            pass
        existing = self.get(lease_id)
        if existing is None:
            raise LeaseConflictError(f"lease {lease_id} vanished", details={"lease_id": lease_id})
        live = existing.status in (PENDING, ACTIVE)
        if live and not same_execution(existing.execution_id, execution_id):
            raise RequestInFlightError(
                f"request {lease_id} is being run by another execution", details={"lease_id": lease_id}
            )
        if existing.status == ACTIVE:
            return existing
        if existing.status == PENDING:
            # Renew it, fenced on the version read: if the sweep took it over
            # in between, this attempt must not go on as if it owned it.
            try:
                self._update(lease_id, "SET updated_at = :now, lease_expires_at = :exp ADD #v :one", {},
                             {":exp": _n(now + self.policy.reconcile_after_seconds), ":ver": _n(existing.version)},
                             condition="#s = :pending AND #v = :ver")
            except LeaseConflictError:
                raise RequestAlreadyRunError(
                    f"request {lease_id} was taken over by the cleanup", details={"lease_id": lease_id}
                ) from None
            return existing
        raise RequestAlreadyRunError(
            f"request {lease_id} was already run (its lease is {existing.status})", details={"lease_id": lease_id}
        )

    def expect(self, lease_id: str, *, idempotency_key: str, request: dict) -> None:
        """About to ask HostedAI with this key (again): its outcome is unknown
        until the answer is recorded, and may be in flight until
        `reconcile_after_seconds` after this call."""
        self._update(
            lease_id,
            "SET requests.#k = :req, updated_at = :now, last_call_at = :now, lease_expires_at = :exp "
            "ADD pending_keys :keys, #v :one",
            {"#k": idempotency_key},
            {":req": _s(json.dumps(request, sort_keys=True)), ":keys": {"SS": [idempotency_key]},
             ":exp": _n(self.now() + self.policy.reconcile_after_seconds)},
            condition="#s = :pending",
        )

    def retarget(self, lease_id: str, *, model: str, idempotency_key: str, request: dict, reason: str) -> None:
        """Move a PENDING lease to a fallback model, about to be asked with its own key."""
        self._update(
            lease_id,
            "SET model = :m, idempotency_key = :key, route_reason = :r, requests.#k = :req, updated_at = :now, "
            "last_call_at = :now, lease_expires_at = :exp ADD pending_keys :keys, #v :one",
            {"#k": idempotency_key},
            {
                ":m": _s(model),
                ":key": _s(idempotency_key),
                ":r": _s(reason[:500]),
                ":req": _s(json.dumps(request, sort_keys=True)),
                ":keys": {"SS": [idempotency_key]},
                ":exp": _n(self.now() + self.policy.reconcile_after_seconds),
            },
            condition="#s = :pending",
        )

    def settle_key(self, lease_id: str, idempotency_key: str) -> None:
        """This key's outcome is known and holds no GPU."""
        self._update(lease_id, "SET updated_at = :now DELETE pending_keys :keys ADD #v :one", {},
                     {":keys": {"SS": [idempotency_key]}}, condition=None)

    def activate(self, lease_id: str, *, allocation_id: str, assigned_gpu: str, allocation_expires_at: int,
                 idempotency_key: str) -> int:
        """PENDING -> ACTIVE with the allocation this key returned; returns the
        lease's expiry. Also succeeds when already ACTIVE with this allocation
        (a write retried after it landed)."""
        expires = self.now() + self.policy.lease_ttl_seconds
        try:
            self._ddb.update_item(
                TableName=self._table,
                Key={"lease_id": _s(lease_id)},
                UpdateExpression="SET #s = :active, allocation_id = :a, assigned_gpu = :g, allocation_expires_at = :ae, "
                "lease_expires_at = :exp, updated_at = :now DELETE pending_keys :keys ADD #v :one",
                ConditionExpression="#s = :pending OR (#s = :active AND allocation_id = :a)",
                ExpressionAttributeNames={"#s": "status", "#v": "version"},
                ExpressionAttributeValues={
                    ":active": _s(ACTIVE), ":pending": _s(PENDING), ":a": _s(allocation_id), ":g": _s(assigned_gpu),
                    ":ae": _n(allocation_expires_at), ":exp": _n(expires), ":now": _n(self.now()),
                    ":keys": {"SS": [idempotency_key]}, ":one": _n(1),
                },
            )
        except self._ddb.exceptions.ConditionalCheckFailedException:
            raise LeaseConflictError(
                f"lease {lease_id} is not PENDING; cannot record allocation {allocation_id}", details={"lease_id": lease_id}
            ) from None
        return expires

    # --- the warm pool ---------------------------------------------------------------

    def warm_candidates(self, *, tenant_id: str, pool_id: str, model: str, usable_until: int, limit: int = 5) -> list[Lease]:
        """IDLE warm leases whose allocation lives at least until
        `usable_until`, freshest first. Read from the index (eventually
        consistent): a candidate may already be gone, which the claim's
        condition finds out."""
        items = self._ddb.query(
            TableName=self._table,
            IndexName=WARM_INDEX,
            KeyConditionExpression="warm_pool = :p AND allocation_expires_at >= :u",
            ExpressionAttributeValues={":p": _s(warm_pool_key(tenant_id, pool_id, model)), ":u": _n(usable_until)},
            ScanIndexForward=False,
            Limit=limit,
        ).get("Items", [])
        return [_lease(item) for item in items]

    def claim_warm(self, lease_id: str, warm: Lease, *, idempotency_key: str, route_reason: str | None) -> int | None:
        """Move a warm allocation to this PENDING request lease, atomically:
        the warm lease is deleted (only if still IDLE) and the request lease
        becomes ACTIVE with its allocation. Returns the lease's expiry, or
        None if another claimer (or the sweep) got it first."""
        now = self.now()
        expires = now + self.policy.lease_ttl_seconds
        update = ("SET #s = :active, allocation_id = :a, assigned_gpu = :g, allocation_expires_at = :ae, model = :m, "
                  "lease_expires_at = :exp, updated_at = :now, warm = :t")
        values = {
            ":active": _s(ACTIVE), ":pending": _s(PENDING), ":a": _s(warm.allocation_id), ":g": _s(warm.assigned_gpu),
            ":ae": _n(warm.allocation_expires_at), ":m": _s(warm.model), ":exp": _n(expires), ":now": _n(now),
            ":t": {"BOOL": True}, ":keys": {"SS": [idempotency_key]}, ":one": _n(1),
        }
        if route_reason:
            update += ", route_reason = :r"
            values[":r"] = _s(route_reason[:500])
        try:
            self._ddb.transact_write_items(TransactItems=[
                {"Delete": {
                    "TableName": self._table, "Key": {"lease_id": _s(warm.lease_id)},
                    "ConditionExpression": "#s = :idle",
                    "ExpressionAttributeNames": {"#s": "status"},
                    "ExpressionAttributeValues": {":idle": _s(IDLE)},
                }},
                {"Update": {
                    "TableName": self._table, "Key": {"lease_id": _s(lease_id)},
                    # The key begin() recorded was never sent: settle it in the same write.
                    "UpdateExpression": update + " DELETE pending_keys :keys ADD #v :one",
                    "ConditionExpression": "#s = :pending",
                    "ExpressionAttributeNames": {"#s": "status", "#v": "version"},
                    "ExpressionAttributeValues": values,
                }},
            ])
        except self._ddb.exceptions.TransactionCanceledException:
            return None
        return expires

    def return_to_warm(self, lease_id: str, *, execution_id: str | None, tenant_id: str, pool_id: str, model: str,
                       allocation_id: str, assigned_gpu: str, allocation_expires_at: int, idle_until: int) -> bool:
        """ACTIVE -> RELEASED with its allocation handed to a new IDLE warm
        lease, in one transaction. False (nothing written) if the lease is
        not this execution's ACTIVE lease with no key pending."""
        now = self.now()
        warm_id = WARM_PREFIX + allocation_id
        condition = "#s = :active AND allocation_id = :a AND attribute_not_exists(pending_keys)"
        values = {":active": _s(ACTIVE), ":a": _s(allocation_id), ":released": _s(RELEASED), ":now": _n(now),
                  ":purge": _n(now + self.policy.retention_seconds), ":t": {"BOOL": True}, ":one": _n(1)}
        if execution_id:
            condition += " AND (attribute_not_exists(execution_id) OR execution_id = :e)"
            values[":e"] = _s(execution_id)
        try:
            self._ddb.transact_write_items(TransactItems=[
                {"Update": {
                    "TableName": self._table, "Key": {"lease_id": _s(lease_id)},
                    "UpdateExpression": "SET #s = :released, updated_at = :now, purge_at = :purge, returned_warm = :t "
                    "REMOVE expiry_shard, lease_expires_at ADD #v :one",
                    "ConditionExpression": condition,
                    "ExpressionAttributeNames": {"#s": "status", "#v": "version"},
                    "ExpressionAttributeValues": values,
                }},
                {"Put": {
                    "TableName": self._table,
                    "Item": {
                        "lease_id": _s(warm_id), "status": _s(IDLE), "tenant_id": _s(tenant_id), "model": _s(model),
                        "pool_id": _s(pool_id), "allocation_id": _s(allocation_id), "assigned_gpu": _s(assigned_gpu),
                        "allocation_expires_at": _n(allocation_expires_at),
                        "warm_pool": _s(warm_pool_key(tenant_id, pool_id, model)),
                        "expiry_shard": _s(expiry_shard(warm_id)), "lease_expires_at": _n(idle_until),
                        "returned_by": _s(lease_id), "created_at": _n(now), "updated_at": _n(now), "version": _n(1),
                    },
                    "ConditionExpression": "attribute_not_exists(lease_id)",
                }},
            ])
        except self._ddb.exceptions.TransactionCanceledException:
            return False
        return True

    # --- the request path: infer and release -------------------------------------------

    def renew(self, lease_id: str, *, execution_id: str | None) -> int:
        """Extend an ACTIVE lease by its TTL (the heartbeat before a long
        call) and return the new expiry. LeaseLostError if it is no longer
        this execution's ACTIVE lease: the sweep reclaimed it, so its GPU
        must not be used."""
        expires = self.now() + self.policy.lease_ttl_seconds
        condition = "#s = :active"
        values: dict = {":active": _s(ACTIVE), ":exp": _n(expires)}
        if execution_id:
            condition += " AND (attribute_not_exists(execution_id) OR execution_id = :e)"
            values[":e"] = _s(execution_id)
        try:
            self._update(lease_id, "SET lease_expires_at = :exp, updated_at = :now ADD #v :one", {}, values,
                         condition=condition)
        except LeaseConflictError:
            raise LeaseLostError(
                f"lease {lease_id} is no longer held by this execution (reclaimed after it expired)",
                details={"lease_id": lease_id},
            ) from None
        return expires

    def mark_failed(self, lease_id: str, reason: str) -> bool:
        """PENDING -> FAILED: this request will get no GPU (pending keys, if
        any, stay for the sweep)."""
        return self._settle(lease_id, (PENDING,), FAILED, reason)

    def mark_abandoned(self, lease_id: str) -> bool:
        """PENDING -> ABANDONED: the workflow gave up with keys still pending.
        Its expiry is left as is: the last call's answer may still be in flight."""
        try:
            self._update(lease_id, "SET #s = :to, updated_at = :now ADD #v :one", {},
                         {":to": _s(ABANDONED)}, condition="#s = :pending")
        except LeaseConflictError:
            return False
        return True

    def mark_released(self, lease_id: str) -> bool:
        """-> RELEASED from a state that held the allocation; False if not."""
        return self._settle(lease_id, (ACTIVE, RELEASING), RELEASED, None)

    def mark_releasing(self, lease_id: str, reason: str, *, retry_after: int) -> bool:
        """A release failed: RELEASING, due for the sweep after `retry_after` s."""
        try:
            self._update(lease_id, "SET #s = :to, updated_at = :now, reason = :why, lease_expires_at = :exp "
                         "ADD #v :one", {},
                         {":to": _s(RELEASING), ":why": _s(reason[:500]), ":exp": _n(self.now() + retry_after),
                          ":f0": _s(ACTIVE), ":f1": _s(RELEASING)},
                         condition="#s IN (:f0, :f1)")
        except LeaseConflictError:
            return False
        return True

    def get(self, lease_id: str) -> Lease | None:
        item = self._ddb.get_item(TableName=self._table, Key={"lease_id": _s(lease_id)}, ConsistentRead=True).get(
            "Item"
        )
        return _lease(item) if item else None

    # --- the sweep ---------------------------------------------------------------------

    def census(self) -> dict[tuple[str, str], int]:
        """(pool, status) -> how many leases hold or may hold a GPU now: the
        ExpiryIndex's whole content (live leases only, settled ones leave it).
        Its cost grows with the GPUs held (read capacity counts whole items:
        the index projects ALL), not with the table; run once per sweep."""
        counts: dict[tuple[str, str], int] = {}
        paginator = self._ddb.get_paginator("query")
        for shard in range(EXPIRY_SHARDS):
            for page in paginator.paginate(
                TableName=self._table, IndexName=EXPIRY_INDEX, KeyConditionExpression="expiry_shard = :s",
                ExpressionAttributeValues={":s": _s(str(shard))}, ProjectionExpression="#st, pool_id",
                ExpressionAttributeNames={"#st": "status"},
            ):
                for item in page.get("Items", []):
                    key = (item.get("pool_id", {}).get("S", "unknown"), item["status"]["S"])
                    counts[key] = counts.get(key, 0) + 1
        return counts

    def due(self, now: int, *, shard: str, consumed: list | None = None):
        """Leases of one shard whose expiry has passed, read from the sparse
        ExpiryIndex: only what is due is read. `consumed` collects each page's
        (items read, capacity units) for the sweep's report."""
        paginator = self._ddb.get_paginator("query")
        pages = paginator.paginate(
            TableName=self._table,
            IndexName=EXPIRY_INDEX,
            KeyConditionExpression="expiry_shard = :s AND lease_expires_at <= :now",
            ExpressionAttributeValues={":s": _s(shard), ":now": _n(now)},
            ReturnConsumedCapacity="TOTAL",
        )
        for page in pages:
            if consumed is not None:
                consumed.append((page.get("ScannedCount", 0), (page.get("ConsumedCapacity") or {}).get("CapacityUnits", 0.0)))
            for item in page.get("Items", []):
                yield _lease(item)

    def take_over(self, lease: Lease, *, as_of: int) -> Lease | None:
        """The sweep's claim on a lease due at `as_of`, fenced on the version
        it read and on the lease still being due (a warm lease deleted and
        written again for the same allocation starts again at version 1):
        PENDING becomes ABANDONED, a lease holding a GPU becomes RELEASING,
        and its expiry moves past this attempt (doubling on each one), so a
        concurrent sweep or a crash mid-way leaves it for a later tick. None
        if the lease moved on since it was read (its execution renewed it, a
        claimer took a warm one, another sweep got there first)."""
        now = self.now()
        to_state = ABANDONED if lease.status == PENDING else RELEASING if lease.status in HOLDING else lease.status
        retry = min(self.policy.sweep_retry_seconds * 2 ** min(lease.sweep_attempts, 7), 3600)
        token = uuid.uuid4().hex
        try:
            self._update(
                lease.lease_id,
                # A warm lease leaves the warm pool at once: no claimer can take it now.
                "SET #s = :to, lease_expires_at = :exp, sweep_token = :tok, reclaimed_at = :now REMOVE warm_pool "
                "ADD #v :one, sweep_attempts :one",
                {}, {":to": _s(to_state), ":exp": _n(now + retry), ":tok": _s(token), ":ver": _n(lease.version),
                     ":was": _s(lease.status), ":asof": _n(as_of)},
                condition="#s = :was AND #v = :ver AND lease_expires_at <= :asof",
            )
        except LeaseConflictError:
            return None
        return Lease(**{**lease.__dict__, "status": to_state, "version": lease.version + 1, "sweep_token": token})

    def settle_key_by_sweep(self, lease_id: str, idempotency_key: str) -> None:
        """The sweep learnt this key's outcome; `updated_at` (the executions'
        last activity) is left alone."""
        self._update(lease_id, "DELETE pending_keys :keys ADD #v :one", {}, {":keys": {"SS": [idempotency_key]}},
                     condition=None)

    def finish(self, lease: Lease, reason: str) -> bool:
        """The sweep settled everything this lease held: it leaves the expiry
        index and is kept `retention_seconds` for audits (warm leases are
        deleted: their allocation has its own request lease's history)."""
        taken = "#s = :claimed AND sweep_token = :tok"
        values = {":claimed": _s(lease.status), ":tok": _s(lease.sweep_token or "")}
        if lease.is_warm_lease:
            try:
                self._ddb.delete_item(
                    TableName=self._table, Key={"lease_id": _s(lease.lease_id)},
                    ConditionExpression=taken, ExpressionAttributeNames={"#s": "status"},
                    ExpressionAttributeValues=values,
                )
            except self._ddb.exceptions.ConditionalCheckFailedException:
                return False
            return True
        to_state = FAILED if lease.status == FAILED else RELEASED
        try:
            self._update(
                lease.lease_id,
                "SET #s = :to, reason = :why, purge_at = :purge, reclaimed_by = :by "
                "REMOVE expiry_shard, lease_expires_at ADD #v :one",
                {}, {":to": _s(to_state), ":why": _s(reason[:500]), ":by": _s("cleanup"),
                     ":purge": _n(self.now() + self.policy.retention_seconds), **values},
                condition=f"{taken} AND attribute_not_exists(pending_keys)",
            )
        except LeaseConflictError:
            return False
        return True

    # --- internals -------------------------------------------------------------------

    def _settle(self, lease_id: str, from_states: tuple[str, ...], to_state: str, reason: str | None) -> bool:
        """A request-path move to a final state. With no key pending, the lease
        leaves the expiry index at once (the common case: one write); with
        keys pending it stays, due once the last call's answer can no longer
        be in flight, for the sweep to ask again."""
        values: dict = {":to": _s(to_state), ":purge": _n(self.now() + self.policy.retention_seconds)}
        allowed = []
        for i, state in enumerate(from_states):
            values[f":f{i}"] = _s(state)
            allowed.append(f":f{i}")
        update = "SET #s = :to, updated_at = :now"
        if reason is not None:
            update += ", reason = :why"
            values[":why"] = _s(reason[:500])
        in_state = f"#s IN ({', '.join(allowed)})"
        try:
            self._update(lease_id, update + ", purge_at = :purge REMOVE expiry_shard, lease_expires_at ADD #v :one",
                         {}, values, condition=f"{in_state} AND attribute_not_exists(pending_keys)")
            return True
        except LeaseConflictError:
            pass
        values.pop(":purge")
        values[":rec"] = _n(self.policy.reconcile_after_seconds)
        try:
            self._update(lease_id, update + ", lease_expires_at = if_not_exists(last_call_at, :now) + :rec ADD #v :one",
                         {}, values,
                         condition=f"{in_state} AND attribute_exists(pending_keys)")
        except LeaseConflictError:
            return False
        return True

    def _update(self, lease_id: str, expression: str, names: dict, values: dict, *, condition: str | None) -> None:
        names = {"#v": "version", **names}
        values = {":one": _n(1), **values}
        if ":now" in expression:
            values[":now"] = _n(self.now())
        if condition is not None:
            names["#s"] = "status"
            if ":pending" in condition:
                values[":pending"] = _s(PENDING)
            condition = f"attribute_exists(lease_id) AND {condition}"
        else:
            condition = "attribute_exists(lease_id)"
        try:
            self._ddb.update_item(
                TableName=self._table,
                Key={"lease_id": _s(lease_id)},
                UpdateExpression=expression,
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except self._ddb.exceptions.ConditionalCheckFailedException:
            raise LeaseConflictError(f"lease {lease_id} is not in the expected state", details={"lease_id": lease_id}) from None


def _int(item: dict, name: str) -> int | None:
    return int(item[name]["N"]) if name in item else None


def _lease(item: dict, *, created: bool = False) -> Lease:
    return Lease(
        lease_id=item["lease_id"]["S"],
        status=item["status"]["S"],
        model=item["model"]["S"],
        pool_id=item["pool_id"]["S"],
        idempotency_key=item.get("idempotency_key", {}).get("S"),
        tenant_id=item.get("tenant_id", {}).get("S", DEFAULT_TENANT),
        allocation_id=item.get("allocation_id", {}).get("S"),
        assigned_gpu=item.get("assigned_gpu", {}).get("S"),
        allocation_expires_at=_int(item, "allocation_expires_at"),
        lease_expires_at=_int(item, "lease_expires_at"),
        version=_int(item, "version") or 0,
        pending_keys=frozenset(item.get("pending_keys", {}).get("SS", [])),
        requests={k: json.loads(v["S"]) for k, v in item.get("requests", {}).get("M", {}).items()},
        route_reason=item.get("route_reason", {}).get("S"),
        updated_at=_int(item, "updated_at") or 0,
        last_call_at=_int(item, "last_call_at") or 0,
        created=created,
        execution_id=item.get("execution_id", {}).get("S"),
        warm=item.get("warm", {}).get("BOOL", False),
        returned_warm=item.get("returned_warm", {}).get("BOOL", False),
        sweep_attempts=_int(item, "sweep_attempts") or 0,
        sweep_token=item.get("sweep_token", {}).get("S"),
    )
