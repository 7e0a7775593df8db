"""Throughput of the local stack: POST /v2/process at 1, 8 and 32 in flight.

One LocalStack runs in-process on free ports: the HostedAI emulator answers at
once (time_scale=0, so the stack itself is measured, not the emulated GPU
latency), no schedule runs (schedule_interval=0), function logs go to a temp
dir and the API's per-request log to a StringIO. Every function gets warm
workers for the highest concurrency (bounded by the pool's max_concurrency),
and one untimed round at that concurrency builds each worker's clients before
anything is timed. Then, per level, a fixed number of requests ({"text":
"Hello", "max_tokens": 16}, the demo tenant's key) is sent from that many
client threads with httpx; latency is perf_counter around each POST, elapsed
is the wall time of the whole level. An error is any answer but 200, or no
answer; issue 8 requires zero.

These are local figures, not Lambda's: this is a 2-core machine running moto
(Step Functions, DynamoDB), every function worker process, the HostedAI
emulator, the API server and the client threads all on the same two cores.
"""

from __future__ import annotations

import io
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

# (concurrency, requests) per level.
LEVELS: tuple[tuple[int, int], ...] = ((1, 40), (8, 80), (32, 160))
BODY = {"text": "Hello", "max_tokens": 16}
TIMEOUT = 90.0

HEADERS = ["concurrency", "requests", "errors", "elapsed s", "req/s", "p50 ms", "p95 ms"]


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100) by linear interpolation between closest ranks."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"q must be in [0, 100], got {q}")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summarise(concurrency: int, outcomes: list[tuple[int | None, float]], elapsed: float) -> dict:
    """One level's figures from (status or None, latency ms) per request."""
    latencies = [ms for _, ms in outcomes]
    return {
        "concurrency": concurrency,
        "requests": len(outcomes),
        "errors": sum(1 for status, _ in outcomes if status != 200),
        "statuses": sorted({str(status) for status, _ in outcomes if status != 200}),
        "elapsed_s": elapsed,
        "rps": len(outcomes) / elapsed if elapsed > 0 else 0.0,
        "p50_ms": percentile(latencies, 50),
        "p95_ms": percentile(latencies, 95),
    }


def drive(api_url: str, api_key: str, n: int, concurrency: int) -> tuple[list[tuple[int | None, float]], float]:
    """n POSTs from `concurrency` threads: (status or None, latency ms) each, and the wall seconds."""
    import httpx

    outcomes: list[tuple[int | None, float]] = []
    lock = threading.Lock()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    with httpx.Client(base_url=api_url, timeout=TIMEOUT, limits=limits, headers={"x-api-key": api_key}) as client:

        def one(_: int) -> None:
            started = time.perf_counter()
            try:
                status: int | None = client.post("/v2/process", json=BODY).status_code
            except httpx.HTTPError:
                status = None
            ms = (time.perf_counter() - started) * 1e3
            with lock:
                outcomes.append((status, ms))

        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            list(pool.map(one, range(n)))
        elapsed = time.perf_counter() - started
    return outcomes, elapsed


def results(levels: tuple[tuple[int, int], ...] = LEVELS) -> dict:
    """Per level: requests, errors, elapsed s, requests per second, p50 and p95 latency ms."""
    from local.chaos import free_port
    from local.stack import LocalStack

    top = max(c for c, _ in levels)
    with tempfile.TemporaryDirectory(prefix="harpoon-throughput-") as logs:
        stack = LocalStack(api_port=free_port(), aws_port=free_port(), emulator_port=free_port(), time_scale=0,
                           schedule_interval=0, log_dir=Path(logs), out=io.StringIO())
        try:
            stack.start()
            per_function = min(top, stack.pool.max_concurrency)
            started = time.perf_counter()
            stack.pool.warm_up(per_function=per_function)
            warm_s = time.perf_counter() - started
            # Untimed: each warm worker builds its clients on its first request.
            warm_outcomes, _ = drive(stack.api_url, stack.demo_api_key, top, top)
            out = [summarise(c, *drive(stack.api_url, stack.demo_api_key, n, c)) for c, n in levels]
        finally:
            stack.stop()
    return {"levels": out, "workers_per_function": per_function, "warm_up_s": warm_s,
            "warm_round_errors": sum(1 for status, _ in warm_outcomes if status != 200),
            "body": BODY, "emulator_time_scale": 0}


def rows(result: dict) -> list[list[object]]:
    return [[r["concurrency"], r["requests"], r["errors"], f"{r['elapsed_s']:.1f}", f"{r['rps']:.1f}",
             f"{r['p50_ms']:.0f}", f"{r['p95_ms']:.0f}"]
            for r in result["levels"]]


def measure(levels: tuple[tuple[int, int], ...] = LEVELS) -> list[list[object]]:
    return rows(results(levels))
