"""The reclaim sweep: give back every GPU the request path could not.

It reads only leases whose expiry has passed, from the sparse, sharded
ExpiryIndex (see adapters/leases.py), so its cost grows with what is due,
never with the table. Each due lease is first taken over with a write fenced
on the version read: a lease its execution renewed in the meantime, or a
warm lease a request claimed, is left alone. Then:

- a lease that holds a GPU (ACTIVE past its lease, RELEASING after a failed
  release, IDLE past its idle time) has it released at HostedAI (404 means
  already gone);
- every pending idempotency key (an allocate whose answer never came) is
  asked again with the exact body first sent. HostedAI answers with the GPU
  that call made, which is released; if it makes one now, that one is
  released at once (a brief cost, never a leak). A clear "no capacity" means
  nothing exists under the key;
- once nothing is pending, the lease leaves the index (RELEASED, kept for
  audits until TTL deletes it).

A lease it cannot settle now (HostedAI down) stays in the index, due again
after a doubling delay. One lease failing never stops the sweep.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from harpoon.adapters.hostedai import HostedAIClient
from harpoon.adapters.leases import EXPIRY_SHARDS, HOLDING, Lease, LeaseRepository
from harpoon.errors import NoCapacityError, UpstreamError


@dataclass
class SweepReport:
    as_of: int = 0  # leases due at or before this epoch second were taken
    items_read: int = 0  # what the index queries read: the sweep's cost
    capacity_units: float = 0.0
    examined: int = 0
    taken_over: int = 0
    released: int = 0  # GPUs given back
    reconciled: int = 0  # pending keys settled
    closed: int = 0  # leases that left the index
    reclaimed: list[dict] = field(default_factory=list)  # what was given back, for the log
    failed: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "as_of": self.as_of, "items_read": self.items_read, "capacity_units": self.capacity_units, "examined": self.examined,
            "taken_over": self.taken_over, "released": self.released, "reconciled": self.reconciled,
            "closed": self.closed, "reclaimed": self.reclaimed, "failed": self.failed,
        }


def sweep(*, leases: LeaseRepository, hostedai: HostedAIClient, horizon_seconds: float = 0.0, clock=time.time) -> SweepReport:
    """One pass over every shard. `horizon_seconds` > 0 also takes leases due
    within that many seconds (to drain everything once no execution runs)."""
    now = int(clock() + max(0.0, horizon_seconds))
    report = SweepReport(as_of=now)
    consumed: list = []
    for shard in range(EXPIRY_SHARDS):
        for lease in leases.due(now, shard=str(shard), consumed=consumed):
            report.examined += 1
            try:
                _settle(lease, leases, hostedai, report, as_of=now)
            except Exception as exc:  # noqa: BLE001 - report it, go on with the next lease
                report.failed.append(f"{lease.lease_id}: {type(exc).__name__}: {exc}")
    report.items_read = sum(read for read, _ in consumed)
    report.capacity_units = round(sum(units for _, units in consumed), 2)
    return report


def _settle(lease: Lease, leases: LeaseRepository, hostedai: HostedAIClient, report: SweepReport, *, as_of: int) -> None:
    held = lease.status in HOLDING
    taken = leases.take_over(lease, as_of=as_of)
    if taken is None:
        return  # it moved on since the index was read
    report.taken_over += 1
    if held and taken.allocation_id:
        gone_now = hostedai.release(taken.allocation_id, request_id=taken.lease_id)
        report.released += int(gone_now)
        report.reclaimed.append({"lease_id": taken.lease_id, "allocation_id": taken.allocation_id,
                                 "was": lease.status, "model": taken.model, "pool_id": taken.pool_id,
                                 "released_now": gone_now, "overdue_seconds": _overdue(lease, leases)})
    settled_all = _reconcile(taken, leases, hostedai, report)
    if settled_all and leases.finish(taken, f"settled by cleanup (was {lease.status})"):
        report.closed += 1


def _overdue(lease: Lease, leases: LeaseRepository) -> int:
    """How long the GPU was held past its lease before this sweep took it (a
    lower bound of the leak: the execution may have died earlier)."""
    return max(0, leases.now() - (lease.lease_expires_at or leases.now()))


def _reconcile(lease: Lease, leases: LeaseRepository, hostedai: HostedAIClient, report: SweepReport) -> bool:
    """Ask again with each pending key; True when none is left pending."""
    left = 0
    for key in sorted(lease.pending_keys):
        sent = (lease.requests or {}).get(key)
        if not sent:
            report.failed.append(f"{lease.lease_id}: no parameters recorded for {key}")
            left += 1
            continue
        try:
            allocation = hostedai.allocate(
                pool_id=sent["pool_id"],
                requirements=sent["requirements"],
                duration_seconds=sent["duration_seconds"],
                idempotency_key=key,
                metadata=sent.get("metadata", {"request_id": lease.lease_id, "model": sent["model"]}),
            )
        except NoCapacityError:
            leases.settle_key_by_sweep(lease.lease_id, key)  # nothing exists under this key, none was made now
            report.reconciled += 1
            continue
        except UpstreamError as exc:
            # e.g. 409: HostedAI holds this key with other parameters. Keep it
            # pending and say so; never guess.
            report.failed.append(f"{lease.lease_id}: {key}: {exc.message}")
            left += 1
            continue
        if hostedai.release(allocation.allocation_id, request_id=lease.lease_id) and \
                allocation.allocation_id != lease.allocation_id:
            report.released += 1
            report.reclaimed.append({"lease_id": lease.lease_id, "allocation_id": allocation.allocation_id,
                                     "was": "pending key", "model": sent["model"], "pool_id": lease.pool_id,
                                     "released_now": True, "overdue_seconds": _overdue(lease, leases)})
        leases.settle_key_by_sweep(lease.lease_id, key)
        report.reconciled += 1
    return left == 0
