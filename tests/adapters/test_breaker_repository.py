"""BreakerRepository on moto: versions make every state change conditional."""

import boto3
import pytest
from moto import mock_aws

from harpoon.adapters.breakers import OPEN, BreakerRecord, BreakerRepository
from harpoon.domain.breaker import BreakerConfig, CircuitBreaker
from tests.fakes import at_once, dynamodb_table


@pytest.fixture
def repo(aws_credentials):
    with mock_aws():
        dynamodb_table("breakers", "breaker_id")
        yield BreakerRepository("breakers", boto3.client("dynamodb"))


def test_round_trip_and_version_conditions(repo):
    assert repo.get("b") == BreakerRecord("b")
    record = BreakerRecord("b", state=OPEN, open_until=12.5, cooldown=30.0, cur_failures=5, cur_calls=6, probe_id=None)
    assert repo.put_if_version(record, 0)
    assert not repo.put_if_version(record, 0)  # someone created it first
    stored = repo.get("b")
    assert (stored.state, stored.open_until, stored.cur_failures, stored.version) == (OPEN, 12.5, 5, 1)
    assert repo.put_if_version(stored.evolve(cur_calls=7), 1)
    assert not repo.put_if_version(stored.evolve(cur_calls=8), 1)
    assert repo.get("b").cur_calls == 7


def test_one_probe_among_20_concurrent_lambdas_on_dynamodb(repo):
    now = [1000.0]
    clock = lambda: now[0]  # noqa: E731
    first = CircuitBreaker(repo, BreakerConfig(cache_seconds=0), clock=clock)
    for i in range(10):
        first.record_failure("b", f"f{i}")
    assert repo.get("b").state == OPEN
    now[0] += 31
    results = at_once(20, lambda i: CircuitBreaker(repo, BreakerConfig(cache_seconds=0), clock=clock).allow("b", f"c{i}").allowed)
    assert results.count(True) == 1
    assert repo.get("b").state == "HALF_OPEN"
