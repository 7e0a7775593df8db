"""Client idempotency on Powertools' DynamoDB persistence (moto)."""

import pytest
from moto import mock_aws

from harpoon.adapters import aws as aws_clients
from harpoon.adapters.idempotency import IdempotencyInProgress, IdempotencyMismatch, _persistence, run_once
from tests.fakes import dynamodb_table

# No Lambda context here (the API passes one): Powertools warns about it.
pytestmark = pytest.mark.filterwarnings("ignore:Couldn.t determine the remaining time")


@pytest.fixture
def table(aws_credentials):
    with mock_aws():
        aws_clients.client.cache_clear()
        _persistence.cache_clear()
        dynamodb_table("idem", "id")
        yield "idem"
        aws_clients.client.cache_clear()
        _persistence.cache_clear()


def test_runs_once_and_replays(table):
    runs = []

    def run():
        runs.append(1)
        return {"request_id": f"req-{len(runs)}"}

    first = run_once(table_name=table, key="k", body={"text": "hi"}, run=run, expires_after_seconds=60)
    second = run_once(table_name=table, key="k", body={"text": "hi"}, run=run, expires_after_seconds=60)
    assert first == ({"request_id": "req-1"}, False) and second == ({"request_id": "req-1"}, True)
    assert len(runs) == 1


def test_other_body_is_a_mismatch(table):
    run_once(table_name=table, key="k", body={"text": "hi"}, run=lambda: {"a": 1}, expires_after_seconds=60)
    with pytest.raises(IdempotencyMismatch):
        run_once(table_name=table, key="k", body={"text": "other"}, run=lambda: {"a": 2}, expires_after_seconds=60)


def test_a_key_whose_first_request_is_running_is_in_progress(table):
    def first():
        # While the first request runs, the same key arrives again.
        return run_once(table_name=table, key="k", body={"text": "hi"}, run=lambda: {"a": 2}, expires_after_seconds=60)[0]

    with pytest.raises(IdempotencyInProgress):
        run_once(table_name=table, key="k", body={"text": "hi"}, run=first, expires_after_seconds=60)


def test_a_failure_is_not_stored(table):
    def boom():
        raise RuntimeError("upstream failed")

    with pytest.raises(RuntimeError):
        run_once(table_name=table, key="k", body={"text": "hi"}, run=boom, expires_after_seconds=60)
    assert run_once(table_name=table, key="k", body={"text": "hi"}, run=lambda: {"ok": 1}, expires_after_seconds=60) == ({"ok": 1}, False)
