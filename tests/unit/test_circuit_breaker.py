"""The circuit breaker's rules, on an in-memory repository with the same
conditional-write semantics as DynamoDB (versions)."""

from __future__ import annotations

import pytest

from harpoon.adapters.breakers import CLOSED, HALF_OPEN, OPEN
from harpoon.domain.breaker import BreakerConfig, CircuitBreaker
from tests.fakes import Clock, FakeBreakerRepo, at_once

B = "gpu-pool-1#qwen-30b"


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def repo():
    return FakeBreakerRepo()


def breaker(repo, clock, **config):
    transitions = []
    cb = CircuitBreaker(repo, BreakerConfig(cache_seconds=0, **config), clock=clock,
                        on_transition=lambda b, old, new: transitions.append((old, new)))
    cb.transitions = transitions
    return cb


def test_a_healthy_model_costs_no_write(repo, clock):
    cb = breaker(repo, clock)
    for i in range(50):
        assert cb.allow(B, f"r{i}").allowed
        cb.record_success(B, f"r{i}")
    assert repo.writes == 0 and cb.state(B).state == CLOSED


def test_opens_at_the_threshold_not_before(repo, clock):
    cb = breaker(repo, clock, failure_threshold=5, minimum_calls=5, failure_rate=0.5)  # the seed's "5 failures"
    for i in range(4):
        cb.record_failure(B, f"r{i}")
    assert cb.state(B).state == CLOSED and cb.allow(B, "x").allowed
    cb.record_failure(B, "r4")
    state = cb.state(B)
    assert state.state == OPEN and state.open_until == clock.now + 30
    decision = cb.allow(B, "x")
    assert not decision.allowed and decision.retry_after == 30 and decision.reason == "circuit open"
    assert cb.transitions == [(CLOSED, OPEN)]


def test_failure_rate_below_the_threshold_keeps_it_closed(repo, clock):
    cb = breaker(repo, clock, failure_threshold=5, minimum_calls=10, failure_rate=0.5)
    cb.record_failure(B, "f0")
    for i in range(10):
        cb.record_success(B, f"s{i}")  # counted: the window holds a failure
    for i in range(1, 5):
        cb.record_failure(B, f"f{i}")
    assert cb.state(B).state == CLOSED  # 5 failures of 15 calls = 33%


def test_old_failures_slide_out_of_the_window(repo, clock):
    cb = breaker(repo, clock, failure_threshold=5, minimum_calls=5, window=60)
    for i in range(4):
        cb.record_failure(B, f"r{i}")
    clock.now += 125  # two windows later: forgotten
    cb.record_failure(B, "late")
    assert cb.state(B).state == CLOSED and cb.state(B).cur_failures == 1


def trip(cb):
    for i in range(10):  # the default minimum of calls
        cb.record_failure(B, f"trip{i}")
    assert cb.state(B).state == OPEN


def test_half_open_admits_one_probe_then_closes_on_success(repo, clock):
    cb = breaker(repo, clock)
    trip(cb)
    clock.now += 31
    first, second = cb.allow(B, "probe"), cb.allow(B, "other")
    assert first.allowed and first.probe and not second.allowed
    assert cb.allow(B, "probe").allowed  # the probe's own retry
    cb.record_success(B, "other")  # not the probe: ignored
    assert cb.state(B).state == HALF_OPEN
    cb.record_success(B, "probe")
    assert cb.state(B).state == CLOSED and cb.allow(B, "after").allowed
    assert cb.transitions == [(CLOSED, OPEN), (OPEN, HALF_OPEN), (HALF_OPEN, CLOSED)]


def test_a_long_healthy_run_then_a_few_failures_keeps_it_closed(repo, clock):
    cb = breaker(repo, clock)  # defaults: 5 failures, 10 calls, 50 %
    for i in range(995):
        cb.record_success(B, f"ok{i}")
    for i in range(5):
        cb.record_failure(B, f"bad{i}")
    assert cb.state(B).state == CLOSED  # 5 calls since trouble began: not enough to judge
    for i in range(5):
        cb.record_failure(B, f"worse{i}")
    assert cb.state(B).state == OPEN  # 10 of 10 failed


def test_a_flapping_model_backs_off_and_a_stable_one_starts_again_from_the_base(repo, clock):
    cb = breaker(repo, clock, cooldown=30, max_cooldown=300)
    cooldowns = []
    for _ in range(3):
        trip(cb)
        cooldowns.append(cb.state(B).cooldown)
        clock.now = cb.state(B).open_until
        assert cb.allow(B, "probe").probe
        cb.record_success(B, "probe")  # the probe's allocate worked...
        clock.now += 5  # ...but it fails again right away
    assert cooldowns == [30, 60, 120]
    clock.now += 301  # stable for longer than the longest cool-down
    trip(cb)
    assert cb.state(B).cooldown == 30


def test_the_breaker_is_advisory_when_its_table_fails(clock):
    class Broken:
        def get(self, breaker_id):
            raise RuntimeError("DynamoDB unavailable")

        def put_if_version(self, record, expected_version):
            raise RuntimeError("DynamoDB unavailable")

    cb = CircuitBreaker(Broken(), BreakerConfig(cache_seconds=0), clock=clock)
    assert cb.allow(B, "r").allowed
    cb.record_failure(B, "r")  # dropped and logged, never raised


def test_failed_probe_reopens_with_a_longer_cooldown_up_to_the_cap(repo, clock):
    cb = breaker(repo, clock, cooldown=30, max_cooldown=100)
    trip(cb)
    cooldowns = []
    for _ in range(3):
        clock.now = cb.state(B).open_until
        assert cb.allow(B, "p").allowed
        cb.record_failure(B, "p")
        state = cb.state(B)
        assert state.state == OPEN
        cooldowns.append(state.cooldown)
    assert cooldowns == [60, 100, 100]


def test_a_stale_probe_is_replaced(repo, clock):
    cb = breaker(repo, clock, probe_ttl=10)
    trip(cb)
    clock.now += 31
    assert cb.allow(B, "crashed").allowed
    clock.now += 5
    assert not cb.allow(B, "next").allowed
    clock.now += 6
    assert cb.allow(B, "next").probe


def test_exactly_one_probe_among_20_concurrent_callers(repo, clock):
    cb = breaker(repo, clock)
    trip(cb)
    clock.now += 31
    # One breaker object per "Lambda", all on the same record.
    results = at_once(20, lambda i: CircuitBreaker(repo, BreakerConfig(cache_seconds=0), clock=clock).allow(B, f"c{i}").allowed)
    assert results.count(True) == 1


def test_concurrent_failures_are_never_lost(repo, clock):
    config = BreakerConfig(cache_seconds=0, failure_threshold=1000, minimum_calls=1000)
    at_once(20, lambda i: CircuitBreaker(repo, config, clock=clock).record_failure(B, f"c{i}"))
    assert repo.get(B).cur_failures == 20


def test_cached_reads_spare_the_table(repo, clock):
    calls = []
    original = repo.get
    repo.get = lambda b: calls.append(b) or original(b)
    cb = CircuitBreaker(repo, BreakerConfig(cache_seconds=60), clock=clock)
    for i in range(10):
        cb.allow(B, f"r{i}")
    assert len(calls) == 1


def test_a_breaker_seen_clean_by_allocate_spares_infer_its_read(repo, clock):
    calls = []
    original = repo.get
    repo.get = lambda b: calls.append(b) or original(b)
    allocate_side = CircuitBreaker(repo, BreakerConfig(cache_seconds=2), clock=clock)
    infer_side = CircuitBreaker(repo, BreakerConfig(cache_seconds=2), clock=clock)  # another container
    assert allocate_side.clean_at(B) is None  # nothing read: no claim
    allocate_side.allow(B, "r1")
    seen = allocate_side.clean_at(B)
    assert seen == pytest.approx(clock.now, abs=0.1) and len(calls) == 1
    infer_side.record_success(B, "r1", clean_at=seen)
    assert len(calls) == 1  # as good as a fresh cached read: no read, no write
    clock.now += 2  # older than a cache entry may be: read again
    infer_side.record_success(B, "r1", clean_at=seen)
    assert len(calls) == 2 and repo.writes == 0
    allocate_side.record_failure(B, "r2")  # a failure in the window: not clean any more
    assert allocate_side.clean_at(B) is None


def test_a_success_after_trouble_began_is_still_counted_without_the_hint(repo, clock):
    cb = CircuitBreaker(repo, BreakerConfig(cache_seconds=0), clock=clock)
    cb.record_failure(B, "f0")
    assert cb.clean_at(B) is None  # no cache: never a claim
    cb.record_success(B, "s0", clean_at=None)
    assert cb.state(B).cur_calls == 2


def test_the_hint_is_ignored_when_this_container_has_seen_trouble_since(repo, clock):
    allocate_side = CircuitBreaker(repo, BreakerConfig(cache_seconds=2), clock=clock)
    infer_side = CircuitBreaker(repo, BreakerConfig(cache_seconds=2), clock=clock)
    allocate_side.allow(B, "r1")
    seen = allocate_side.clean_at(B)
    clock.now += 0.5
    infer_side.record_failure(B, "r2")  # this container's own, newer view: a failure in the window
    infer_side.record_success(B, "r1", clean_at=seen)
    assert infer_side.state(B).cur_calls == 2  # the success was counted
