"""Circuit breaker per (pool, model), shared by every Lambda through DynamoDB.

    CLOSED --failures in the rolling window reach the threshold--> OPEN
    OPEN --cool-down over; exactly one caller wins the probe--> HALF_OPEN
    HALF_OPEN --probe succeeds--> CLOSED
    HALF_OPEN --probe fails--> OPEN with the cool-down doubled (up to a cap)
    CLOSED --trips again within max_cooldown of closing--> OPEN, cool-down doubled
    (a model that keeps flapping backs off; one stable for that long starts
    again from the base cool-down)

Why these rules (see ../shared/brief/anchors.md): LiteLLM has no half-open
state and its cool-downs are per instance; the AWS sample opens on a single
failure with an unconditional write. Here a breaker opens only when, in a
sliding window, failures reach `failure_threshold` AND there were at least
`minimum_calls` calls AND the failure rate reaches `failure_rate`; the
half-open probe is a conditional write, so one caller in the whole fleet
probes; and a stale probe (its owner crashed) is replaced after `probe_ttl`.

Only upstream faults count: 5xx, 429, timeouts, connection errors. A caller's
4xx never does, and neither does HostedAI's 503 `no_capacity` (the pool is
full, not sick: that is the fallback's job).

Window: two fixed buckets of `window` seconds with the previous one weighted
by how much of it still overlaps the sliding window (the usual sliding-window
approximation). Writes happen on outcomes only, and a success is written only
when it can change a decision: while the window holds failures, or to close a
half-open breaker; a healthy model costs no write. The price, stated plainly:
`calls` counts the calls *since the window's first failure* (and a container
whose cached read is up to `cache_seconds` old may miss a few successes), so
the rule reads "of the last `minimum_calls` or more calls since trouble
began, at least `failure_rate` failed, and at least `failure_threshold` of
them". 995 successes then 5 failures do not open it (5 calls < 10).
Reads are cached in memory for `cache_seconds` (0 disables).

The breaker is advisory: if its table cannot be read or written, calls are
allowed and the outcome is dropped (logged), never turned into an error.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass

from harpoon.adapters.breakers import CLOSED, HALF_OPEN, OPEN, BreakerRecord, BreakerRepository

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BreakerConfig:
    failure_threshold: int = 5
    minimum_calls: int = 10
    failure_rate: float = 0.5
    window: float = 60.0
    cooldown: float = 30.0
    max_cooldown: float = 300.0
    probe_ttl: float = 30.0
    cache_seconds: float = 2.0


@dataclass(frozen=True)
class Decision:
    allowed: bool
    state: str
    probe: bool = False
    retry_after: float = 0.0  # seconds until a probe may be tried, when not allowed

    @property
    def reason(self) -> str:
        return "circuit open" if self.state == OPEN else "circuit half-open (probe in flight)"


class CircuitBreaker:
    MAX_RACES = 20

    def __init__(self, repo: BreakerRepository, config: BreakerConfig = BreakerConfig(), clock=time.time, on_transition=None) -> None:
        self._repo = repo
        self._config = config
        self._clock = clock
        self._cache: dict[str, tuple[float, BreakerRecord]] = {}
        self._on_transition = on_transition or (lambda breaker_id, old, new: None)

    @staticmethod
    def breaker_id(pool_id: str, model: str) -> str:
        return f"{pool_id}#{model}"

    # --- decisions -------------------------------------------------------------

    def allow(self, breaker_id: str, request_id: str) -> Decision:
        """May this request call HostedAI for this (pool, model) now?"""
        try:
            return self._allow(breaker_id, request_id)
        except Exception:  # noqa: BLE001 - advisory: a broken breaker must not block traffic
            _log.warning("circuit breaker unavailable; allowing %s", breaker_id, exc_info=True)
            return Decision(True, CLOSED)

    def _allow(self, breaker_id: str, request_id: str) -> Decision:
        record = self._read(breaker_id, cached=True)
        for _ in range(self.MAX_RACES):
            now = self._clock()
            if record.state == CLOSED:
                return Decision(True, CLOSED)
            if record.state == HALF_OPEN and record.probe_id == request_id:
                return Decision(True, HALF_OPEN, probe=True)  # our own probe, retried
            probe_due = (record.state == OPEN and now >= record.open_until) or (
                record.state == HALF_OPEN and now >= record.probe_until
            )
            if not probe_due:
                wait = record.open_until - now if record.state == OPEN else record.probe_until - now
                return Decision(False, record.state, retry_after=max(wait, 1.0))
            probe = record.evolve(state=HALF_OPEN, probe_id=request_id, probe_until=now + self._config.probe_ttl, updated_at=now,
                                  transitions=record.transitions + (record.state != HALF_OPEN))
            if self._write(record, probe):
                return Decision(True, HALF_OPEN, probe=True)
            record = self._read(breaker_id, cached=False)  # lost the race: look again
        return Decision(False, record.state, retry_after=1.0)

    def record_success(self, breaker_id: str, request_id: str, *, clean_at: float | None = None) -> None:
        """A proper answer from HostedAI (including a 4xx or "no capacity").
        `clean_at`: another container saw the breaker clean then (clean_at());
        within `cache_seconds` that is as good as a cached read, and a success
        on a clean breaker changes nothing: no read, no write."""
        now = self._clock()
        if clean_at is not None and 0 <= now - clean_at < self._config.cache_seconds:
            own = self._cache.get(breaker_id)
            # Unless this container has seen it since, and not clean.
            if own is None or now - (time.monotonic() - own[0]) <= clean_at or self.clean_at(breaker_id) is not None:
                return
        self._record_safely(breaker_id, request_id, failed=False)

    def record_failure(self, breaker_id: str, request_id: str) -> None:
        """An upstream fault: 5xx, 429, timeout, connection error."""
        self._record_safely(breaker_id, request_id, failed=True)

    def state(self, breaker_id: str) -> BreakerRecord:
        return self._read(breaker_id, cached=False)

    def clean_at(self, breaker_id: str) -> float | None:
        """When (epoch s) this container's cached read, still fresh, saw the
        breaker CLOSED with no failure in its window; else None. Never reads.
        The next step passes it to record_success (`clean_at`) to skip its
        own read, as a cache hit would."""
        hit = self._cache.get(breaker_id)
        if not hit or self._config.cache_seconds <= 0:
            return None
        age = time.monotonic() - hit[0]
        record, now = hit[1], self._clock()
        if age >= self._config.cache_seconds or record.state != CLOSED or _estimate(record, now, self._config.window)[0]:
            return None
        return now - age

    # --- internals -------------------------------------------------------------

    def _record_safely(self, breaker_id: str, request_id: str, *, failed: bool) -> None:
        try:
            self._record(breaker_id, request_id, failed=failed)
        except Exception:  # noqa: BLE001 - advisory: never fail the request for the breaker
            _log.warning("circuit breaker outcome dropped for %s", breaker_id, exc_info=True)

    def _record(self, breaker_id: str, request_id: str, *, failed: bool) -> None:
        record = self._read(breaker_id, cached=True)
        for attempt in range(self.MAX_RACES):
            updated = self._next(record, request_id, failed, self._clock())
            if updated is None:
                return  # nothing this outcome could change
            if self._write(record, updated):
                return
            time.sleep(random.uniform(0, 0.005 * (attempt + 1)))  # spread racing writers
            record = self._read(breaker_id, cached=False)
        _log.warning("circuit breaker outcome dropped for %s after %d lost races", breaker_id, self.MAX_RACES)

    def _next(self, record: BreakerRecord, request_id: str, failed: bool, now: float) -> BreakerRecord | None:
        c = self._config
        if record.state == HALF_OPEN:
            if record.probe_id != request_id:
                return None  # only the probe's outcome decides
            if failed:
                cooldown = min(max(record.cooldown, c.cooldown) * 2, c.max_cooldown)
                return record.evolve(state=OPEN, open_until=now + cooldown, cooldown=cooldown, probe_id=None,
                                     probe_until=0.0, transitions=record.transitions + 1, updated_at=now)
            # The cool-down is kept: should it trip again soon, it backs off further.
            return record.evolve(state=CLOSED, probe_id=None, probe_until=0.0, bucket_start=now, closed_at=now,
                                 cur_failures=0, cur_calls=0, prev_failures=0, prev_calls=0,
                                 transitions=record.transitions + 1, updated_at=now)
        if record.state == OPEN:
            return None  # calls are not made while open
        rotated = _rotate(record, now, c.window)
        failures, calls = _estimate(rotated, now, c.window)
        if not failed and failures == 0:
            return None  # a success in a clean window changes nothing: no write
        rotated = rotated.evolve(cur_calls=rotated.cur_calls + 1, cur_failures=rotated.cur_failures + failed, updated_at=now)
        failures, calls = failures + failed, calls + 1
        if failed and failures >= c.failure_threshold and calls >= c.minimum_calls and failures / calls >= c.failure_rate:
            flapping = record.closed_at and now - record.closed_at < c.max_cooldown
            cooldown = min(max(record.cooldown, c.cooldown) * 2, c.max_cooldown) if flapping else c.cooldown
            return rotated.evolve(state=OPEN, open_until=now + cooldown, cooldown=cooldown,
                                  transitions=rotated.transitions + 1)
        return rotated

    def _read(self, breaker_id: str, *, cached: bool) -> BreakerRecord:
        now = time.monotonic()
        if cached and self._config.cache_seconds > 0:
            hit = self._cache.get(breaker_id)
            if hit and now - hit[0] < self._config.cache_seconds:
                return hit[1]
        record = self._repo.get(breaker_id)
        self._cache[breaker_id] = (now, record)
        return record

    def _write(self, old: BreakerRecord, new: BreakerRecord) -> bool:
        if not self._repo.put_if_version(new, old.version):
            self._cache.pop(old.breaker_id, None)
            return False
        stored = new.evolve(version=old.version + 1)
        self._cache[old.breaker_id] = (time.monotonic(), stored)
        if new.state != old.state:
            self._on_transition(old.breaker_id, old.state, new.state)
        return True


def _rotate(record: BreakerRecord, now: float, window: float) -> BreakerRecord:
    """Move the buckets forward so the current one contains `now`."""
    if record.bucket_start == 0.0:
        return record.evolve(bucket_start=now)
    elapsed = now - record.bucket_start
    if elapsed < window:
        return record
    if elapsed < 2 * window:
        return record.evolve(bucket_start=record.bucket_start + window, prev_failures=record.cur_failures,
                             prev_calls=record.cur_calls, cur_failures=0, cur_calls=0)
    return record.evolve(bucket_start=now, prev_failures=0, prev_calls=0, cur_failures=0, cur_calls=0)


def _estimate(record: BreakerRecord, now: float, window: float) -> tuple[float, float]:
    """Failures and calls in the sliding window ending now."""
    weight = max(0.0, 1.0 - (now - record.bucket_start) / window) if record.bucket_start else 0.0
    return (record.cur_failures + record.prev_failures * weight, record.cur_calls + record.prev_calls * weight)
