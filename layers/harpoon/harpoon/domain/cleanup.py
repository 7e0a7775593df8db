"""Cleanup: give back every GPU the request path could not.

A deliberately simple sweep (a Scan of the lease table; the reclaim sweep on
an expiry index replaces it later). Each lease that holds, or may hold, a GPU
is settled:

- RELEASE_FAILED: its allocation is released now (Release kept failing).
- ACTIVE whose execution is certainly over (Step Functions says so, for
  STANDARD; otherwise not updated for `stale_after_seconds`, longer than the
  state machine may run) or whose HostedAI expiry has passed: released now
  (e.g. the Release Lambda crashed, or the execution timed out).
- Every pending idempotency key (an allocate whose answer never came), unless
  an execution may still be using the lease, and only once the key's last
  call is `reconcile_after_seconds` old (so the original call cannot still be
  in flight at HostedAI): HostedAI is asked again with the same key and the
  exact body first sent. It answers with the GPU that call made, which is
  released; if it makes one now, that one is released at once (a brief cost,
  never a leak). A clear "no capacity" then means nothing exists under it.
- ABANDONED, or PENDING and stale, once no key is pending: closed.

Every settlement is a conditional write, so a lease that an execution took
back in the meantime is left alone. One lease failing never stops the sweep.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from harpoon.adapters.hostedai import HostedAIClient
from harpoon.adapters.leases import ABANDONED, ACTIVE, PENDING, RELEASE_FAILED, Lease, LeaseRepository
from harpoon.errors import NoCapacityError, UpstreamError


@dataclass
class SweepReport:
    examined: int = 0
    released: int = 0  # GPUs given back
    reconciled: int = 0  # pending keys settled
    closed: int = 0  # abandoned or stale pending leases closed
    failed: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"examined": self.examined, "released": self.released, "reconciled": self.reconciled,
                "closed": self.closed, "failed": self.failed}


def sweep(
    *,
    leases: LeaseRepository,
    hostedai: HostedAIClient,
    stale_after_seconds: float,
    reconcile_after_seconds: float,
    execution_ended=None,
    clock=time.time,
) -> SweepReport:
    """`execution_ended(execution_id)` -> True / False / None (cannot tell)."""
    report = SweepReport()
    now = clock()
    stale_before = int(now - stale_after_seconds)
    for lease in leases.scan_unsettled():
        report.examined += 1
        try:
            ended = execution_ended(lease.execution_id) if execution_ended and lease.execution_id else None
            stale = ended if ended is not None else lease.updated_at <= stale_before
            close_before = int(now) if ended else stale_before
            expired = lease.expires_at is not None and lease.expires_at <= now
            if lease.status == RELEASE_FAILED or (lease.status == ACTIVE and (stale or expired)):
                _release(lease, leases, hostedai, report)
            settled_in_hostedai = now - lease.updated_at >= reconcile_after_seconds
            if lease.pending_keys and settled_in_hostedai and not (lease.status == PENDING and not stale):
                _reconcile(lease, leases, hostedai, report)
            if lease.status == ABANDONED or (lease.status == PENDING and stale):
                if leases.close_unresolved(lease.lease_id, stale_before=close_before):
                    report.closed += 1
        except Exception as exc:  # noqa: BLE001 - report it, go on with the next lease
            report.failed.append(f"{lease.lease_id}: {type(exc).__name__}: {exc}")
    return report


def _release(lease: Lease, leases: LeaseRepository, hostedai: HostedAIClient, report: SweepReport) -> None:
    if lease.allocation_id and hostedai.release(lease.allocation_id):
        report.released += 1
    leases.mark_released(lease.lease_id)


def _reconcile(lease: Lease, leases: LeaseRepository, hostedai: HostedAIClient, report: SweepReport) -> None:
    for key in sorted(lease.pending_keys):
        sent = (lease.requests or {}).get(key)
        if not sent:
            report.failed.append(f"{lease.lease_id}: no parameters recorded for {key}")
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
            leases.settle_key(lease.lease_id, key, by_cleanup=True)  # nothing exists under this key, none was made now
            report.reconciled += 1
            continue
        except UpstreamError as exc:
            # e.g. 409: HostedAI holds this key with other parameters. Keep it
            # pending and say so; never guess.
            report.failed.append(f"{lease.lease_id}: {key}: {exc.message}")
            continue
        if allocation.allocation_id != lease.allocation_id and hostedai.release(allocation.allocation_id):
            report.released += 1
        leases.settle_key(lease.lease_id, key, by_cleanup=True)
        report.reconciled += 1
