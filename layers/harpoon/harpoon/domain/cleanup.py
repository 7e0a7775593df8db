"""Cleanup: give back every GPU the request path could not.

A deliberately simple sweep (a Scan of the lease table; the reclaim sweep on
an expiry index replaces it later). Each lease still holding, or possibly
holding, a GPU is settled:

- RELEASE_FAILED: released now (Release kept failing).
- ACTIVE whose execution is certainly over (not updated for
  `stale_after_seconds`, longer than the state machine may run) or whose
  HostedAI expiry has passed: released now (e.g. the Release Lambda crashed).
- ABANDONED, or PENDING and stale: every (key, model) it asked HostedAI for is
  asked again with the same Idempotency-Key. HostedAI answers with the lost
  allocation if the first call created one, which is then released; if it
  creates one now, that one is released at once (a brief cost, never a leak).

Each settlement ends with a conditional write, so a lease that an execution
moved on in the meantime is left alone.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from harpoon.adapters.hostedai import HostedAIClient
from harpoon.adapters.leases import ABANDONED, ACTIVE, PENDING, RELEASE_FAILED, Lease, LeaseRepository
from harpoon.catalog import Catalog
from harpoon.errors import NoCapacityError, UpstreamError


@dataclass
class SweepReport:
    examined: int = 0
    released: int = 0  # GPUs given back
    reconciled: int = 0  # abandoned or stale pending leases settled
    already_gone: int = 0
    failed: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"examined": self.examined, "released": self.released, "reconciled": self.reconciled,
                "already_gone": self.already_gone, "failed": self.failed}


def sweep(
    *,
    leases: LeaseRepository,
    hostedai: HostedAIClient,
    catalog: Catalog,
    stale_after_seconds: float,
    clock=time.time,
) -> SweepReport:
    report = SweepReport()
    now = clock()
    for lease in leases.scan_unsettled():
        report.examined += 1
        stale = now - lease.updated_at >= stale_after_seconds
        try:
            if lease.status == RELEASE_FAILED or (lease.status == ACTIVE and (stale or (lease.expires_at or now + 1) <= now)):
                _release(lease, leases, hostedai, report)
            elif lease.status == ABANDONED or (lease.status == PENDING and stale):
                _reconcile(lease, leases, hostedai, catalog, report)
        except UpstreamError as exc:
            report.failed.append(f"{lease.lease_id}: {exc.message}")
    return report


def _release(lease: Lease, leases: LeaseRepository, hostedai: HostedAIClient, report: SweepReport) -> None:
    if lease.allocation_id and hostedai.release(lease.allocation_id):
        report.released += 1
    else:
        report.already_gone += 1
    leases.mark_released(lease.lease_id)


def _reconcile(lease: Lease, leases: LeaseRepository, hostedai: HostedAIClient, catalog: Catalog, report: SweepReport) -> None:
    for attempt in sorted(lease.attempts):
        key, _, model = attempt.rpartition("|")
        try:
            allocation = hostedai.allocate(
                pool_id=lease.pool_id,
                requirements=catalog.get(model).requirements(),
                duration_seconds=lease.duration_seconds,
                idempotency_key=key,
                metadata={"request_id": lease.lease_id, "model": model, "reconcile": True},
            )
        except NoCapacityError:
            continue  # nothing exists under this key, and none was made now
        except UpstreamError as exc:
            if exc.status == 409:
                # HostedAI holds this key with other parameters: nothing we
                # asked for. Say so rather than guess.
                report.failed.append(f"{lease.lease_id}: {key} could not be reconciled (409)")
                continue
            raise
        if hostedai.release(allocation.allocation_id):
            report.released += 1
    if leases.settle_unresolved(lease.lease_id, expected_version=lease.version):
        report.reconciled += 1
