"""Fakes shared by unit tests (house style: fakes over mocks)."""

from __future__ import annotations

import threading
from dataclasses import replace

from harpoon.adapters.breakers import BreakerRecord


class Clock:
    """A clock the test moves by hand (`clock.now = ...`)."""

    def __init__(self, now: float = 1_000_000.0):
        self.now = now

    def __call__(self):
        return self.now


class FakeBreakerRepo:
    """In-memory breaker table with DynamoDB's version-conditional writes."""

    def __init__(self):
        self.items: dict[str, BreakerRecord] = {}
        self.lock = threading.Lock()
        self.writes = 0

    def get(self, breaker_id):
        with self.lock:
            return self.items.get(breaker_id, BreakerRecord(breaker_id))

    def put_if_version(self, record, expected_version):
        with self.lock:
            current = self.items.get(record.breaker_id, BreakerRecord(record.breaker_id))
            if current.version != expected_version:
                return False
            self.items[record.breaker_id] = replace(record, version=expected_version + 1)
            self.writes += 1
            return True




def at_once(n: int, call) -> list:
    """Run call(i) for i in range(n) in n threads released together (like n
    Lambdas hitting the same record); the results in completion order."""
    barrier, results, lock = threading.Barrier(n), [], threading.Lock()

    def run(i):
        barrier.wait()
        result = call(i)
        with lock:
            results.append(result)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def dynamodb_table(name: str, key: str) -> None:
    """Create an on-demand table with a string hash key (inside mock_aws)."""
    import boto3

    boto3.client("dynamodb").create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
        KeySchema=[{"AttributeName": key, "KeyType": "HASH"}])


def template_table(logical_id: str, name: str, client=None) -> None:
    """Create a table exactly as template.yaml declares it, indexes included
    (with `client`, or a default boto3 client inside mock_aws)."""
    from pathlib import Path

    import boto3

    from local.provision import TABLE_KEYS
    from local.template import load_yaml

    props = load_yaml(Path(__file__).resolve().parents[1] / "template.yaml")["Resources"][logical_id]["Properties"]
    (client or boto3.client("dynamodb")).create_table(TableName=name,
                                                      **{k: v for k, v in props.items() if k in TABLE_KEYS})


def untouched(run):
    """run()'s result, asserting it left os.environ and botocore's API call as
    it found them (the benchmarks patch both while they measure)."""
    import os

    import botocore.client

    environment, make_api_call = dict(os.environ), botocore.client.BaseClient._make_api_call
    result = run()
    assert dict(os.environ) == environment
    assert botocore.client.BaseClient._make_api_call is make_api_call
    return result
