r"""Allocation leases in DynamoDB: Harpoon's ledger of GPUs it holds.

One item per request (lease_id = request id). Every transition is a
conditional write on the current status, so two executions (or a step and a
later cleanup) can never both act on one lease:

    PENDING --allocate ok--> ACTIVE --release ok--> RELEASED
       |                        \--release failed--> RELEASE_FAILED --release ok--> RELEASED
       |--allocate refused--> FAILED          (HostedAI said no: nothing to release)
       \--allocate outcome unknown, workflow gave up--> ABANDONED
                              (a timeout may have created it: the cleanup
                               reconciles it by its idempotency key)

The PENDING record is written before HostedAI is called, so a crash at any
point leaves a record that names the idempotency key of the allocation.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from harpoon.errors import LeaseConflictError

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
    # Of the last failed allocate attempt: "refused" (HostedAI answered, no
    # GPU was created) or "unknown" (a timeout or 5xx may hide one).
    last_outcome: str | None = None
    # Every (idempotency key, model) this request has asked HostedAI for, so
    # the cleanup can reconcile each of them.
    attempts: frozenset = frozenset()
    route_reason: str | None = None
    duration_seconds: int = 300  # asked of HostedAI: a reconciling call must repeat it
    updated_at: int = 0


def _s(value: str) -> dict:
    return {"S": value}


def _n(value: int | float) -> dict:
    return {"N": str(value)}


class LeaseRepository:
    def __init__(self, table_name: str, client: Any, clock=time.time) -> None:
        self._table = table_name
        self._ddb = client
        self._clock = clock

    def begin(self, *, lease_id: str, model: str, pool_id: str, idempotency_key: str, duration_seconds: int) -> Lease:
        """Record the intent to allocate and return the lease as stored.

        Idempotent for a retried step: an existing PENDING lease is taken over
        as it is (model, key and last outcome of the earlier attempt kept),
        and an ACTIVE one with the same request is returned (the first run
        finished but its answer was lost). Any other state is a conflict."""
        now = int(self._clock())
        try:
            item = self._ddb.update_item(
                TableName=self._table,
                Key={"lease_id": _s(lease_id)},
                UpdateExpression=(
                    "SET #s = :pending, model = if_not_exists(model, :model), pool_id = :pool, "
                    "idempotency_key = if_not_exists(idempotency_key, :key), created_at = if_not_exists(created_at, :now), "
                    "updated_at = :now, expires_at = if_not_exists(expires_at, :exp), duration_seconds = :dur "
                    "ADD attempts :attempt, #v :one"
                ),
                ConditionExpression="attribute_not_exists(lease_id) OR #s = :pending",
                ExpressionAttributeNames={"#s": "status", "#v": "version"},
                ExpressionAttributeValues={
                    ":pending": _s(PENDING),
                    ":model": _s(model),
                    ":pool": _s(pool_id),
                    ":key": _s(idempotency_key),
                    ":now": _n(now),
                    ":exp": _n(now + duration_seconds),
                    ":dur": _n(duration_seconds),
                    ":attempt": {"SS": [f"{idempotency_key}|{model}"]},
                    ":one": _n(1),
                },
                ReturnValues="ALL_NEW",
            )["Attributes"]
        except self._ddb.exceptions.ConditionalCheckFailedException:
            existing = self.get(lease_id)
            if existing and existing.status == ACTIVE:
                return existing
            raise LeaseConflictError(
                f"lease {lease_id} is already {existing.status if existing else 'gone'}",
                details={"lease_id": lease_id},
            ) from None
        return _lease(item)

    def retarget(self, lease_id: str, *, model: str, idempotency_key: str, reason: str) -> None:
        """Point a PENDING lease at a fallback model (and remember the attempt)."""
        try:
            self._ddb.update_item(
                TableName=self._table,
                Key={"lease_id": _s(lease_id)},
                UpdateExpression="SET model = :m, idempotency_key = :k, route_reason = :r, updated_at = :now ADD attempts :a, #v :one",
                ConditionExpression="#s = :pending",
                ExpressionAttributeNames={"#s": "status", "#v": "version"},
                ExpressionAttributeValues={
                    ":m": _s(model), ":k": _s(idempotency_key), ":r": _s(reason[:500]), ":now": _n(int(self._clock())),
                    ":a": {"SS": [f"{idempotency_key}|{model}"]}, ":one": _n(1), ":pending": _s(PENDING),
                },
            )
        except self._ddb.exceptions.ConditionalCheckFailedException:
            raise LeaseConflictError(f"lease {lease_id} is no longer PENDING", details={"lease_id": lease_id}) from None

    def activate(self, lease_id: str, *, allocation_id: str, assigned_gpu: str, expires_at: int) -> None:
        """PENDING -> ACTIVE. Also succeeds when the lease is already ACTIVE
        with this allocation (a write retried after it had landed)."""
        self._transition(
            lease_id,
            from_states=(PENDING,),
            to_state=ACTIVE,
            extra={"allocation_id": _s(allocation_id), "assigned_gpu": _s(assigned_gpu), "expires_at": _n(expires_at)},
            or_already="allocation_id",
        )

    def note_outcome(self, lease_id: str, outcome: str) -> None:
        """Record on a PENDING lease how an allocate attempt failed. "unknown"
        is sticky: once an attempt may have created a GPU, a later clean
        refusal does not make the lease safe to call FAILED."""
        try:
            self._ddb.update_item(
                TableName=self._table,
                Key={"lease_id": _s(lease_id)},
                UpdateExpression="SET last_outcome = :o, #u = :now ADD #v :one",
                ConditionExpression="#s = :pending AND (attribute_not_exists(last_outcome) OR last_outcome <> :unknown)",
                ExpressionAttributeNames={"#s": "status", "#u": "updated_at", "#v": "version"},
                ExpressionAttributeValues={":o": _s(outcome), ":now": _n(int(self._clock())), ":one": _n(1),
                                           ":pending": _s(PENDING), ":unknown": _s("unknown")},
            )
        except self._ddb.exceptions.ConditionalCheckFailedException:
            pass  # not PENDING any more, or already "unknown": nothing to record

    def mark_failed(self, lease_id: str, reason: str) -> None:
        self._transition(lease_id, from_states=(PENDING,), to_state=FAILED, extra={"reason": _s(reason[:500])})

    def mark_abandoned(self, lease_id: str) -> bool:
        """PENDING -> ABANDONED; False when the lease was not PENDING."""
        return self._transition(lease_id, from_states=(PENDING,), to_state=ABANDONED, strict=False)

    def mark_released(self, lease_id: str) -> bool:
        """-> RELEASED from any live state; False if already released."""
        return self._transition(
            lease_id, from_states=(ACTIVE, RELEASE_FAILED, PENDING, ABANDONED), to_state=RELEASED, strict=False
        )

    def mark_release_failed(self, lease_id: str, reason: str) -> None:
        self._transition(
            lease_id,
            from_states=(ACTIVE, RELEASE_FAILED),
            to_state=RELEASE_FAILED,
            extra={"reason": _s(reason[:500])},
            strict=False,
        )

    def get(self, lease_id: str) -> Lease | None:
        item = self._ddb.get_item(TableName=self._table, Key={"lease_id": _s(lease_id)}, ConsistentRead=True).get(
            "Item"
        )
        return _lease(item) if item else None

    def scan_unsettled(self):
        """Every lease that may still hold a GPU. A Scan: fine for the simple
        cleanup, replaced by a query on an expiry index for scale."""
        paginator = self._ddb.get_paginator("scan")
        pages = paginator.paginate(
            TableName=self._table,
            FilterExpression="#s IN (:a, :rf, :ab, :p)",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":a": _s(ACTIVE), ":rf": _s(RELEASE_FAILED), ":ab": _s(ABANDONED), ":p": _s(PENDING)},
            ConsistentRead=True,
        )
        for page in pages:
            for item in page.get("Items", []):
                yield _lease(item)

    def settle_unresolved(self, lease_id: str, *, expected_version: int) -> bool:
        """ABANDONED or PENDING -> RELEASED once the cleanup has reconciled
        every attempt, unless the lease changed since it was read."""
        try:
            self._ddb.update_item(
                TableName=self._table,
                Key={"lease_id": _s(lease_id)},
                UpdateExpression="SET #s = :released, #u = :now, reason = :why ADD #v :one",
                ConditionExpression="#v = :expected AND #s IN (:ab, :p)",
                ExpressionAttributeNames={"#s": "status", "#u": "updated_at", "#v": "version"},
                ExpressionAttributeValues={
                    ":released": _s(RELEASED), ":now": _n(int(self._clock())), ":why": _s("reconciled by cleanup"),
                    ":one": _n(1), ":expected": _n(expected_version), ":ab": _s(ABANDONED), ":p": _s(PENDING),
                },
            )
        except self._ddb.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def _transition(
        self,
        lease_id: str,
        *,
        from_states: tuple[str, ...],
        to_state: str,
        extra: dict | None = None,
        strict=True,
        or_already: str | None = None,
    ) -> bool:
        """Conditional update, only from `from_states`; with `or_already` (an
        attribute of `extra`), also when the item is already in `to_state`
        with that attribute's new value, so a repeated write is a no-op."""
        names = {"#s": "status", "#v": "version", "#u": "updated_at"}
        values = {":to": _s(to_state), ":now": _n(int(self._clock())), ":one": _n(1)}
        sets = ["#s = :to", "#u = :now"]
        placeholder = {}
        for i, (key, value) in enumerate((extra or {}).items()):
            names[f"#e{i}"] = key
            values[f":e{i}"] = value
            sets.append(f"#e{i} = :e{i}")
            placeholder[key] = i
        allowed = []
        for i, state in enumerate(from_states):
            values[f":f{i}"] = _s(state)
            allowed.append(f":f{i}")
        condition = f"#s IN ({', '.join(allowed)})"
        if or_already:
            i = placeholder[or_already]
            condition = f"({condition} OR (#s = :to AND #e{i} = :e{i}))"
        try:
            self._ddb.update_item(
                TableName=self._table,
                Key={"lease_id": _s(lease_id)},
                UpdateExpression=f"SET {', '.join(sets)} ADD #v :one",
                ConditionExpression=f"attribute_exists(lease_id) AND {condition}",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except self._ddb.exceptions.ConditionalCheckFailedException:
            if strict:
                raise LeaseConflictError(
                    f"lease {lease_id} is not in {'/'.join(from_states)}; cannot move it to {to_state}",
                    details={"lease_id": lease_id},
                ) from None
            return False
        return True


def _lease(item: dict) -> Lease:
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
        last_outcome=item.get("last_outcome", {}).get("S"),
        attempts=frozenset(item.get("attempts", {}).get("SS", [])),
        route_reason=item.get("route_reason", {}).get("S"),
        duration_seconds=int(item.get("duration_seconds", {}).get("N", 300)),
        updated_at=int(item.get("updated_at", {}).get("N", 0)),
    )
