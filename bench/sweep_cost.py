"""What one reclaim sweep reads, at 1k, 10k and 100k leases with 1% expired:
the old Scan of the table against the Query on the sparse, sharded ExpiryIndex.

The table is the template's (indexes included) in moto. The mix: 1% of the
leases expired while ACTIVE (their execution died), 1% ACTIVE and in flight,
98% settled (RELEASED, out of the index). Items read are DynamoDB's
ScannedCount, as moto reports it. Capacity units are computed with DynamoDB's
published rule for Scan and Query (the sizes of all items read, summed, each
1 MB page rounded up to 4 KB; eventually consistent reads cost half; at least
0.5 per request), because moto reports a constant instead. Wall time is not
shown: moto answers an index query by scanning in Python (see
shared/brief/local-aws.md).
"""

from __future__ import annotations

import math

EXPIRED_SHARE = 0.01
LIVE_SHARE = 0.01
NOW = 2_000_000_000


def _item(i: int, kind: str) -> dict:
    from harpoon.adapters.leases import expiry_shard

    lease_id = f"req-{i:08d}-{'x' * 24}"
    key = f"harpoon-{i:048d}"
    item = {
        "lease_id": {"S": lease_id}, "tenant_id": {"S": "default"}, "model": {"S": "gemma-270m"},
        "pool_id": {"S": "gpu-pool-1"}, "idempotency_key": {"S": key},
        "requests": {"M": {key: {"S": '{"duration_seconds": 900, "metadata": {"model": "gemma-270m", "request_id": "'
                                 + lease_id + '"}, "model": "gemma-270m", "pool_id": "gpu-pool-1", "requirements": '
                                 '{"max_vram_mb": 2048, "min_tflops": 5.0, "min_vram_mb": 2048}}'}}},
        "allocation_id": {"S": f"alloc-{i:032x}"}, "assigned_gpu": {"S": "gpu-l4-0"},
        "allocation_expires_at": {"N": str(NOW + 600)}, "execution_id": {"S": "arn:aws:states:us-east-1:123456789012:"
                                                                          f"execution:harpoon:{lease_id}"},
        "created_at": {"N": str(NOW - 300)}, "updated_at": {"N": str(NOW - 200)}, "last_call_at": {"N": str(NOW - 300)},
        "version": {"N": "4"},
    }
    if kind == "released":
        item.update(status={"S": "RELEASED"}, purge_at={"N": str(NOW + 7 * 86400)})
    else:
        expires = NOW - 30 if kind == "expired" else NOW + 90
        item.update(status={"S": "ACTIVE"}, expiry_shard={"S": expiry_shard(lease_id)},
                    lease_expires_at={"N": str(expires)})
    return item


def item_size(value: object) -> int:
    """DynamoDB's item size rules: attribute names plus values (numbers
    approximated as (digits + 1) / 2 + 1 bytes; maps and lists add 3 bytes
    plus 1 per element)."""
    if isinstance(value, dict) and len(value) == 1:
        (kind, inner), = value.items()
        if kind == "S":
            return len(inner.encode("utf-8"))
        if kind == "N":
            return math.ceil((len(inner.replace("-", "").replace(".", "")) + 1) / 2) + 1
        if kind == "BOOL":
            return 1
        if kind == "SS":
            return sum(len(s.encode("utf-8")) for s in inner)
        if kind == "M":
            return 3 + sum(len(k.encode("utf-8")) + item_size(v) + 1 for k, v in inner.items())
        if kind == "L":
            return 3 + sum(item_size(v) + 1 for v in inner)
    return sum(len(k.encode("utf-8")) + item_size(v) for k, v in value.items())


def _units(page_sizes: list[int]) -> float:
    # Per request: the sum of the item sizes read, rounded up to 4 KB, halved
    # for an eventually consistent read; never under 0.5.
    return sum(max(0.5, math.ceil(size / 4096) * 0.5) for size in page_sizes)


def measure(sizes_to_run=(1_000, 10_000, 100_000)) -> list[list[object]]:
    import boto3
    from moto import mock_aws

    from harpoon.adapters.leases import EXPIRY_SHARDS, LeaseRepository
    from tests.fakes import template_table

    rows = []
    for n in sizes_to_run:
        with mock_aws():
            template_table("LeasesTable", "bench-leases")
            ddb = boto3.client("dynamodb", region_name="us-east-1")
            expired = int(n * EXPIRED_SHARE)
            live = int(n * LIVE_SHARE)
            kinds = ["expired"] * expired + ["live"] * live + ["released"] * (n - expired - live)
            items = [_item(i, kind) for i, kind in enumerate(kinds)]
            total_bytes = sum(item_size(it) for it in items)
            for start in range(0, n, 25):
                ddb.batch_write_item(RequestItems={"bench-leases": [{"PutRequest": {"Item": it}}
                                                                    for it in items[start:start + 25]]})

            # Scan: DynamoDB reads every item (1 MB pages); the filter only trims the answer.
            scanned, returned = 0, 0
            kwargs: dict = {}
            while True:
                page = ddb.scan(TableName="bench-leases", FilterExpression="#s IN (:a, :r, :ab, :p)",
                                ExpressionAttributeNames={"#s": "status"},
                                ExpressionAttributeValues={":a": {"S": "ACTIVE"}, ":r": {"S": "RELEASING"},
                                                           ":ab": {"S": "ABANDONED"}, ":p": {"S": "PENDING"}}, **kwargs)
                scanned += page["ScannedCount"]
                returned += page["Count"]
                if "LastEvaluatedKey" not in page:
                    break
                kwargs = {"ExclusiveStartKey": page["LastEvaluatedKey"]}
            scan_pages = max(1, math.ceil(total_bytes / (1024 * 1024)))
            scan_units = _units([total_bytes // scan_pages] * scan_pages)

            # Query: what the sweep really runs, shard by shard.
            repo = LeaseRepository("bench-leases", ddb, clock=lambda: NOW)
            consumed: list = []
            due = [lease for shard in range(EXPIRY_SHARDS) for lease in repo.due(NOW, shard=str(shard), consumed=consumed)]
            queried = sum(read for read, _ in consumed)
            due_ids = {lease.lease_id for lease in due}
            query_sizes: dict[str, int] = {}
            for it in items:
                if it["lease_id"]["S"] in due_ids:
                    shard = it["expiry_shard"]["S"]
                    query_sizes[shard] = query_sizes.get(shard, 0) + item_size(it)
            query_units = _units([query_sizes.get(str(s), 0) for s in range(EXPIRY_SHARDS)])
            assert len(due) == expired and returned == expired + live
            rows.append([f"{n:,}", f"{expired:,}", f"{scanned:,}", f"{scan_units:,.1f}", f"{queried:,}",
                         f"{query_units:,.1f}", f"{queried / expired:.2f}", f"{scanned / max(queried, 1):,.0f}x",
                         f"{scan_units / query_units:,.0f}x"])
    return rows


HEADERS = ["leases", "expired", "Scan: items read", "Scan: RCU", "Query: items read", "Query: RCU",
           "Query read / expired", "items: Scan/Query", "RCU: Scan/Query"]
