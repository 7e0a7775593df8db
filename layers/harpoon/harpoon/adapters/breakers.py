"""Circuit-breaker records in DynamoDB, one item per (pool, model).

Reads are strongly consistent; every write is conditional on the version
read, so concurrent Lambdas never lose a state change (a writer that lost the
race re-reads and decides again).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

CLOSED, OPEN, HALF_OPEN = "CLOSED", "OPEN", "HALF_OPEN"


@dataclass(frozen=True)
class BreakerRecord:
    breaker_id: str
    state: str = CLOSED
    version: int = 0  # 0: no item yet
    bucket_start: float = 0.0  # start of the current counting window
    cur_failures: int = 0
    cur_calls: int = 0
    prev_failures: int = 0
    prev_calls: int = 0
    open_until: float = 0.0
    cooldown: float = 0.0
    probe_id: str | None = None
    probe_until: float = 0.0
    transitions: int = 0
    closed_at: float = 0.0  # when a probe last closed it (cool-downs grow while it flaps)
    updated_at: float = 0.0

    def evolve(self, **changes) -> "BreakerRecord":
        return replace(self, **changes)


_INTS = {"version", "cur_failures", "cur_calls", "prev_failures", "prev_calls", "transitions"}


class BreakerRepository:
    def __init__(self, table_name: str, client: Any) -> None:
        self._table = table_name
        self._ddb = client

    def get(self, breaker_id: str) -> BreakerRecord:
        item = self._ddb.get_item(TableName=self._table, Key={"breaker_id": {"S": breaker_id}}, ConsistentRead=True).get(
            "Item"
        )
        if not item:
            return BreakerRecord(breaker_id)
        values: dict = {"breaker_id": breaker_id}
        for key in BreakerRecord.__dataclass_fields__:
            if key == "breaker_id" or key not in item:
                continue
            attr = item[key]
            if "N" in attr:
                number = float(attr["N"])
                values[key] = int(number) if key in _INTS else number
            elif "S" in attr:
                values[key] = attr["S"]
        return BreakerRecord(**values)

    def put_if_version(self, record: BreakerRecord, expected_version: int) -> bool:
        """Write `record` (with version expected_version + 1) only if the
        stored version is still `expected_version`; False if another writer won."""
        item = {}
        for key, value in asdict(replace(record, version=expected_version + 1)).items():
            if value is None:
                continue
            item[key] = {"S": value} if isinstance(value, str) else {"N": repr(value) if isinstance(value, float) else str(value)}
        if expected_version == 0:
            condition, values = "attribute_not_exists(breaker_id)", None
        else:
            condition, values = "version = :v", {":v": {"N": str(expected_version)}}
        kwargs = {"TableName": self._table, "Item": item, "ConditionExpression": condition}
        if values:
            kwargs["ExpressionAttributeValues"] = values
        try:
            self._ddb.put_item(**kwargs)
        except self._ddb.exceptions.ConditionalCheckFailedException:
            return False
        return True
