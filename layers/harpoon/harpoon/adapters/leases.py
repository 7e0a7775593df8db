r"""Allocation leases in DynamoDB: Harpoon's ledger of GPUs it holds.

One item per request (lease_id = request id). Every transition is a
conditional write on the current status, so two executions (or a step and a
later cleanup) can never both act on one lease:

    PENDING --allocate ok--> ACTIVE --release ok--> RELEASED
       |                        \--release failed--> RELEASE_FAILED --release ok--> RELEASED
       |--no GPU can exist--> FAILED
       \--the workflow gave up while an answer may be lost--> ABANDONED

`pending_keys` is the heart of "nothing leaks": the allocate Idempotency-Keys
whose outcome is unknown. A key is added *before* HostedAI is asked with it
(so a crash at any point leaves it), and removed only when its outcome is
known: HostedAI answered with an allocation (now `allocation_id`) or clearly
refused the first call made with it. `requests` keeps the exact parameters
sent with each key, so the cleanup can ask again with the same key and learn
whether a GPU exists, whatever the lease's status.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from harpoon.errors import LeaseConflictError, RequestAlreadyRunError, RequestInFlightError

PENDING, ACTIVE, RELEASED, RELEASE_FAILED, FAILED, ABANDONED = (
    "PENDING",
    "ACTIVE",
    "RELEASED",
    "RELEASE_FAILED",
    "FAILED",
    "ABANDONED",
)


@dataclass(frozen=True)
class Lease:
    lease_id: str
    status: str
    model: str
    pool_id: str
    idempotency_key: str
    allocation_id: str | None = None
    assigned_gpu: str | None = None
    expires_at: int | None = None
    version: int = 0
    pending_keys: frozenset = frozenset()  # idempotency keys whose outcome is unknown
    requests: dict | None = None  # key -> the allocate body sent with it (pool, model, requirements, duration)
    route_reason: str | None = None
    duration_seconds: int = 300
    updated_at: int = 0
    created: bool = False  # True only on the begin() call that created it
    execution_id: str | None = None  # the execution that owns it


def same_execution(owner: str | None, caller: str | None) -> bool:
    """Leases written without an execution id (older code, direct calls) are
    anyone's; otherwise only the owning execution may act on them."""
    return owner is None or caller is None or owner == caller


def _s(value: str) -> dict:
    return {"S": value}


def _n(value: int | float) -> dict:
    return {"N": str(value)}


class LeaseRepository:
    def __init__(self, table_name: str, client: Any, clock=time.time) -> None:
        self._table = table_name
        self._ddb = client
        self._clock = clock

    # --- the request path --------------------------------------------------------

    def begin(
        self,
        *,
        lease_id: str,
        model: str,
        pool_id: str,
        idempotency_key: str,
        request: dict,
        duration_seconds: int,
        execution_id: str | None = None,
    ) -> Lease:
        """Record the intent to allocate with `idempotency_key` (one write on
        the happy path) and return the lease as stored.

        Idempotent for a retried step: an existing PENDING lease is returned as
        the earlier attempt left it (its current model, pending keys), and an
        ACTIVE one too (the first run finished but its answer was lost). Any
        other state, or a lease owned by another execution, is a conflict."""
        now = int(self._clock())
        item = {
            "lease_id": _s(lease_id),
            "status": _s(PENDING),
            "model": _s(model),
            "pool_id": _s(pool_id),
            "idempotency_key": _s(idempotency_key),
            "pending_keys": {"SS": [idempotency_key]},
            "requests": {"M": {idempotency_key: _s(json.dumps(request, sort_keys=True))}},
            "duration_seconds": _n(duration_seconds),
            "created_at": _n(now),
            "updated_at": _n(now),
            "expires_at": _n(now + duration_seconds),
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
        if live and same_execution(existing.execution_id, execution_id):
            return existing
        if live:
            raise RequestInFlightError(
                f"request {lease_id} is being run by another execution", details={"lease_id": lease_id}
            )
        raise RequestAlreadyRunError(
            f"request {lease_id} was already run (its lease is {existing.status})", details={"lease_id": lease_id}
        )

    def expect(self, lease_id: str, *, idempotency_key: str, request: dict) -> None:
        """About to ask HostedAI with this key (again): its outcome is unknown
        until the answer is recorded."""
        self._update(
            lease_id,
            "SET requests.#k = :req, updated_at = :now ADD pending_keys :keys, #v :one",
            {"#k": idempotency_key},
            {":req": _s(json.dumps(request, sort_keys=True)), ":keys": {"SS": [idempotency_key]}},
            condition="#s = :pending",
        )

    def retarget(self, lease_id: str, *, model: str, idempotency_key: str, request: dict, reason: str) -> None:
        """Move a PENDING lease to a fallback model, about to be asked with its own key."""
        self._update(
            lease_id,
            "SET model = :m, idempotency_key = :key, route_reason = :r, requests.#k = :req, updated_at = :now "
            "ADD pending_keys :keys, #v :one",
            {"#k": idempotency_key},
            {
                ":m": _s(model),
                ":key": _s(idempotency_key),
                ":r": _s(reason[:500]),
                ":req": _s(json.dumps(request, sort_keys=True)),
                ":keys": {"SS": [idempotency_key]},
            },
            condition="#s = :pending",
        )

    def settle_key(self, lease_id: str, idempotency_key: str, *, by_cleanup: bool = False) -> None:
        """This key's outcome is known and holds no GPU. The cleanup's own
        writes leave `updated_at` (the executions' last activity) alone."""
        touch = "" if by_cleanup else "SET updated_at = :now "
        self._update(
            lease_id, f"{touch}DELETE pending_keys :keys ADD #v :one", {},
            {":keys": {"SS": [idempotency_key]}}, condition=None,
        )

    def activate(self, lease_id: str, *, allocation_id: str, assigned_gpu: str, expires_at: int, idempotency_key: str) -> None:
        """PENDING -> ACTIVE with the allocation this key returned. Also succeeds
        when already ACTIVE with this allocation (a write retried after it landed)."""
        try:
            self._ddb.update_item(
                TableName=self._table,
                Key={"lease_id": _s(lease_id)},
                UpdateExpression="SET #s = :active, allocation_id = :a, assigned_gpu = :g, expires_at = :e, "
                "updated_at = :now DELETE pending_keys :keys ADD #v :one",
                ConditionExpression="#s = :pending OR (#s = :active AND allocation_id = :a)",
                ExpressionAttributeNames={"#s": "status", "#v": "version"},
                ExpressionAttributeValues={
                    ":active": _s(ACTIVE), ":pending": _s(PENDING), ":a": _s(allocation_id), ":g": _s(assigned_gpu),
                    ":e": _n(expires_at), ":now": _n(int(self._clock())), ":keys": {"SS": [idempotency_key]},
                    ":one": _n(1),
                },
            )
        except self._ddb.exceptions.ConditionalCheckFailedException:
            raise LeaseConflictError(
                f"lease {lease_id} is not PENDING; cannot record allocation {allocation_id}", details={"lease_id": lease_id}
            ) from None

    def mark_failed(self, lease_id: str, reason: str) -> bool:
        """PENDING -> FAILED: this request will get no GPU (pending keys, if
        any, stay for the cleanup)."""
        return self._transition(lease_id, (PENDING,), FAILED, reason)

    def mark_abandoned(self, lease_id: str) -> bool:
        """PENDING -> ABANDONED: the workflow gave up with keys still pending."""
        return self._transition(lease_id, (PENDING,), ABANDONED, None)

    def mark_released(self, lease_id: str) -> bool:
        """-> RELEASED from a state that held the allocation; False if not."""
        return self._transition(lease_id, (ACTIVE, RELEASE_FAILED), RELEASED, None)

    def mark_release_failed(self, lease_id: str, reason: str) -> bool:
        return self._transition(lease_id, (ACTIVE, RELEASE_FAILED), RELEASE_FAILED, reason)

    def get(self, lease_id: str) -> Lease | None:
        item = self._ddb.get_item(TableName=self._table, Key={"lease_id": _s(lease_id)}, ConsistentRead=True).get(
            "Item"
        )
        return _lease(item) if item else None

    # --- the cleanup ---------------------------------------------------------------

    def scan_unsettled(self):
        """Every lease that holds, or may hold, a GPU. A Scan: fine for the
        simple cleanup; replaced by a query on an expiry index for scale."""
        paginator = self._ddb.get_paginator("scan")
        pages = paginator.paginate(
            TableName=self._table,
            FilterExpression="#s IN (:a, :rf, :ab, :p) OR attribute_exists(pending_keys)",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":a": _s(ACTIVE), ":rf": _s(RELEASE_FAILED), ":ab": _s(ABANDONED), ":p": _s(PENDING)},
            ConsistentRead=True,
        )
        for page in pages:
            for item in page.get("Items", []):
                yield _lease(item)

    def close_unresolved(self, lease_id: str, *, stale_before: int) -> bool:
        """ABANDONED, or PENDING untouched since `stale_before`, with no key
        pending any more -> RELEASED. Conditional, so a lease an execution
        took back in the meantime is left alone."""
        try:
            self._ddb.update_item(
                TableName=self._table,
                Key={"lease_id": _s(lease_id)},
                UpdateExpression="SET #s = :released, updated_at = :now, reason = :why ADD #v :one",
                ConditionExpression="attribute_not_exists(pending_keys) AND "
                "(#s = :ab OR (#s = :p AND updated_at <= :stale))",
                ExpressionAttributeNames={"#s": "status", "#v": "version"},
                ExpressionAttributeValues={
                    ":released": _s(RELEASED), ":now": _n(int(self._clock())), ":why": _s("settled by cleanup"),
                    ":one": _n(1), ":ab": _s(ABANDONED), ":p": _s(PENDING), ":stale": _n(stale_before),
                },
            )
        except self._ddb.exceptions.ConditionalCheckFailedException:
            return False
        return True

    # --- internals -------------------------------------------------------------------

    def _transition(self, lease_id: str, from_states: tuple[str, ...], to_state: str, reason: str | None) -> bool:
        values = {":to": _s(to_state)}
        allowed = []
        for i, state in enumerate(from_states):
            values[f":f{i}"] = _s(state)
            allowed.append(f":f{i}")
        update = "SET #s = :to, updated_at = :now"
        if reason is not None:
            update += ", reason = :why"
            values[":why"] = _s(reason[:500])
        try:
            self._update(lease_id, update + " ADD #v :one", {}, values, condition=f"#s IN ({', '.join(allowed)})")
        except LeaseConflictError:
            return False
        return True

    def _update(self, lease_id: str, expression: str, names: dict, values: dict, *, condition: str | None) -> None:
        names = {"#v": "version", **names}
        values = {":one": _n(1), **values}
        if ":now" in expression:
            values[":now"] = _n(int(self._clock()))
        kwargs = {}
        if condition is not None:
            names["#s"] = "status"
            if ":pending" in condition:
                values[":pending"] = _s(PENDING)
            kwargs["ConditionExpression"] = f"attribute_exists(lease_id) AND {condition}"
        else:
            kwargs["ConditionExpression"] = "attribute_exists(lease_id)"
        try:
            self._ddb.update_item(
                TableName=self._table,
                Key={"lease_id": _s(lease_id)},
                UpdateExpression=expression,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                **kwargs,
            )
        except self._ddb.exceptions.ConditionalCheckFailedException:
            raise LeaseConflictError(f"lease {lease_id} is not in the expected state", details={"lease_id": lease_id}) from None


def _lease(item: dict, *, created: bool = False) -> Lease:
    return Lease(
        lease_id=item["lease_id"]["S"],
        status=item["status"]["S"],
        model=item["model"]["S"],
        pool_id=item["pool_id"]["S"],
        idempotency_key=item["idempotency_key"]["S"],
        allocation_id=item.get("allocation_id", {}).get("S"),
        assigned_gpu=item.get("assigned_gpu", {}).get("S"),
        expires_at=int(item["expires_at"]["N"]) if "expires_at" in item else None,
        version=int(item.get("version", {}).get("N", 0)),
        pending_keys=frozenset(item.get("pending_keys", {}).get("SS", [])),
        requests={k: json.loads(v["S"]) for k, v in item.get("requests", {}).get("M", {}).items()},
        route_reason=item.get("route_reason", {}).get("S"),
        duration_seconds=int(item.get("duration_seconds", {}).get("N", 300)),
        updated_at=int(item.get("updated_at", {}).get("N", 0)),
        created=created,
        execution_id=item.get("execution_id", {}).get("S"),
    )
