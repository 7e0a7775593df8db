"""`make chaos`: many concurrent requests through the local stack while
HostedAI misbehaves and step handlers crash, then one cleanup sweep and an
audit of every GPU.

Faults come from outside the production code only:
- the HostedAI emulator injects, on every endpoint, errors (500, 502, 503,
  429 with Retry-After; nothing done), lost answers (the work is done, then a
  timeout after a hang, or a 5xx at once) and slow answers, each at a share of
  FAULTS;
- this harness wraps the local stack's function invoker and crashes the step
  handlers (classify, allocate, infer, release) at their boundaries: before a
  step runs, or after it ran with its answer lost, as Runtime.ExitError, the
  error Lambda reports when a runtime dies.

Then it waits for every execution to end, runs the cleanup function once and
prints one table. Exit status 1 if any GPU leaked, any request got two GPUs,
any request went unanswered, or any answer was not one of 200, 429, 502,
503, 504 with a JSON body.
"""

from __future__ import annotations

import argparse
import io
import random
import socket
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx

from local.stack import LocalStack

STEPS = {"ClassifyFunction", "AllocateFunction", "InferFunction", "ReleaseFunction"}
ANSWERED = {200, 429, 502, 503, 504}
PROMPTS = [
    "Hello",
    "What is the capital of France?",
    "Translate 'good morning' into Spanish.",
    "Prove step by step that the square root of 2 is irrational.",
    "Write a Python function that merges two sorted lists, then explain its complexity.",
    "Compare the trade-offs of event sourcing and CRUD for a billing system, in detail.",
]
# Chaos runs with short client timeouts so that injected hangs cost seconds,
# not the production budget (8 s allocate, 25 s inference).
CHAOS_ENV = {"HOSTED_AI_TIMEOUT": "1", "HOSTED_AI_INFERENCE_TIMEOUT": "2", "HOSTED_AI_CONNECT_TIMEOUT": "1"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def emulator_faults(rate: float) -> dict:
    """Split the fault rate over errors, timeouts and slow answers."""
    spec = {
        "error_rate": round(rate * 0.5, 4),  # refused: nothing done
        "statuses": [500, 502, 503, 429],
        "timeout_rate": round(rate * 0.15, 4),  # done, answer lost after a hang
        "lost_rate": round(rate * 0.15, 4),  # done, answered 5xx at once
        "hang_ms": 1500,
        "latency_ms": 300,
        "slow_rate": round(rate * 0.2, 4),
    }
    # Inference hangs must outlast its (longer) client timeout to be timeouts.
    return {"allocate": spec, "inference": {**spec, "hang_ms": 2500}, "release": spec}


class Crasher:
    """Wraps the stack's invoker: crashes step handlers at step boundaries."""

    def __init__(self, invoke, rate: float, seed: int) -> None:
        self._invoke = invoke
        self._rate = rate
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self.crashes: Counter = Counter()

    def _draw(self) -> str | None:
        with self._lock:
            roll = self._rng.random()
        if roll < self._rate / 2:
            return "before"
        if roll < self._rate:
            return "after"
        return None

    def __call__(self, name: str, event: object) -> dict:
        logical = next((step for step in STEPS if name.endswith(step)), None)  # ARN, name or logical id
        when = self._draw() if logical else None
        if when == "before":
            self.crashes[f"{logical}:before"] += 1
            return _crash(logical, "before")
        reply = self._invoke(name, event)
        if when == "after":
            self.crashes[f"{logical}:after"] += 1
            return _crash(logical, "after")  # it ran; its answer is lost
        return reply


def _crash(step: str, when: str) -> dict:
    return {"error": {"errorType": "Runtime.ExitError",
                      "errorMessage": f"RequestId: chaos Error: Runtime exited ({step} crashed {when} the step)",
                      "stackTrace": []}}


def drive(api_url: str, n: int, concurrency: int, seed: int, api_key: str) -> list[dict]:
    rng = random.Random(seed)
    bodies = [{"text": rng.choice(PROMPTS), "max_tokens": rng.choice([16, 32, 64])} for _ in range(n)]
    results: list[dict] = []
    lock = threading.Lock()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    with httpx.Client(base_url=api_url, timeout=90, limits=limits, headers={"x-api-key": api_key}) as client:

        def one(body: dict) -> None:
            try:
                response = client.post("/v2/process", json=body)
                try:
                    payload = response.json()
                except ValueError:
                    payload = None
                result = {"status": response.status_code, "json": isinstance(payload, dict), "body": payload}
            except httpx.HTTPError as exc:
                result = {"status": None, "json": False, "body": None, "error": type(exc).__name__}
            with lock:
                results.append(result)

        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            list(pool.map(one, bodies))
    return results


def wait_for_executions(stack: LocalStack, timeout: float) -> int:
    """Executions still running when the wait gave up."""
    sfn = stack.client("stepfunctions")
    arn = next(iter(stack.stack.state_machines.values())).arn
    deadline = time.monotonic() + timeout
    while True:
        running = sum(len(page["executions"]) for page in sfn.get_paginator("list_executions").paginate(
            stateMachineArn=arn, statusFilter="RUNNING"))
        if running == 0 or time.monotonic() > deadline:
            return running
        time.sleep(1)


def breaker_transitions(stack: LocalStack) -> int:
    ddb = stack.client("dynamodb")
    table = stack.stack.tables["BreakersTable"].name
    items = ddb.scan(TableName=table).get("Items", [])
    return sum(int(item.get("transitions", {}).get("N", "0")) for item in items)


def audit(emulator_url: str) -> dict:
    history = httpx.get(f"{emulator_url}/_emulator/history").json()["allocations"]
    active = httpx.get(f"{emulator_url}/_emulator/allocations").json()["allocations"]
    # Two GPUs held at once for one request. (A replay by the cleanup that
    # makes a GPU and releases it at once, after the request ended, is not.)
    by_request: dict[str, list] = {}
    for allocation in history:
        request_id = (allocation.get("metadata") or {}).get("request_id")
        by_request.setdefault(request_id, []).append(allocation)
    doubles = sum(1 for allocations in by_request.values() if _overlap(allocations))
    # One GPU used by two requests at once (a warm allocation handed out twice).
    shared = httpx.get(f"{emulator_url}/_emulator/stats").json()["shared_inferences"]
    return {
        "GPU shared at once": shared,
        "allocations made": len(history),
        "released": sum(1 for a in history if a["status"] == "released"),
        # Still held, or reclaimed only by HostedAI's own expiry: both leaked.
        "leaked": len(active) + sum(1 for a in history if a["status"] == "expired"),
        "double allocations": doubles,
    }


def explain_leaks(stack: LocalStack) -> None:
    """For each GPU still held, print what its lease says (to stderr)."""
    active = httpx.get(f"{stack.emulator_url}/_emulator/allocations").json()["allocations"]
    if not active:
        return
    ddb = stack.client("dynamodb")
    table = stack.stack.tables["LeasesTable"].name
    for allocation in active:
        request_id = (allocation.get("metadata") or {}).get("request_id")
        item = ddb.get_item(TableName=table, Key={"lease_id": {"S": request_id or "?"}}).get("Item", {})
        lease = {k: next(iter(v.values())) for k, v in item.items()}
        print(f"leaked {allocation['allocation_id']} ({allocation.get('metadata')}): lease {lease}", file=sys.stderr)


def _overlap(allocations: list[dict]) -> bool:
    spans = sorted((a["created_epoch"], a["ended_epoch"] or float("inf")) for a in allocations)
    return any(later_start < earlier_end for (_, earlier_end), (later_start, _) in zip(spans, spans[1:]))


def render(rows: list[tuple[str, object]]) -> str:
    width = max(len(k) for k, _ in rows)
    lines = ["+" + "-" * (width + 2) + "+" + "-" * 14 + "+"]
    for key, value in rows:
        lines.append(f"| {key:<{width}} | {str(value):>12} |")
    lines.append(lines[0])
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Chaos run of the local Harpoon stack.")
    parser.add_argument("-n", "--requests", type=int, default=200)
    parser.add_argument("--faults", type=float, default=0.2, help="share of HostedAI calls that misbehave (0..1)")
    parser.add_argument("--crashes", type=float, default=None, help="share of step invocations that crash (default FAULTS/4)")
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight at once")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--log", type=str, default=None, help="write the stack's per-request log to this file")
    args = parser.parse_args(argv)
    if not 0 <= args.faults <= 1 or args.requests < 1:
        parser.error("--faults must be in [0, 1] and --requests >= 1")
    crash_rate = args.faults / 4 if args.crashes is None else args.crashes

    log = io.StringIO()  # the stack's per-request lines: kept out of the table
    stack = LocalStack(api_port=free_port(), aws_port=free_port(), emulator_port=free_port(), out=log,
                       schedule_interval=0, env_overrides=CHAOS_ENV, max_concurrency=args.concurrency + 8)
    try:
        stack.start()
        stack.pool.warm_up(per_function=args.concurrency)  # measure faults, not cold starts
        crasher = Crasher(stack.invoke, crash_rate, args.seed)
        stack.invoke = crasher
        httpx.post(f"{stack.emulator_url}/_emulator/faults", json=emulator_faults(args.faults)).raise_for_status()
        started = time.monotonic()
        print(f"chaos: {args.requests} requests, {args.concurrency} at a time, HostedAI faults {args.faults:.0%}, "
              f"step crashes {crash_rate:.0%} ...", flush=True)
        results = drive(stack.api_url, args.requests, args.concurrency, args.seed, stack.demo_api_key)
        drive_seconds = time.monotonic() - started
        still_running = wait_for_executions(stack, timeout=300)
        # The world heals; then one sweep, as the schedule would run it.
        httpx.post(f"{stack.emulator_url}/_emulator/faults", json={"allocate": {}, "inference": {}, "release": {}})
        stack.invoke = crasher._invoke
        # Every execution has ended: whatever a lease still holds is due, and
        # idle warm GPUs are drained too.
        sweep = stack.run_scheduled("CleanupFunction", {"horizon_seconds": 24 * 3600})
        transitions = breaker_transitions(stack)
        numbers = audit(stack.emulator_url)
        explain_leaks(stack)
    finally:
        stack.stop()

    if args.log:
        with open(args.log, "w", encoding="utf-8") as f:
            f.write(log.getvalue())
    statuses = Counter(r["status"] for r in results)
    unanswered = statuses.pop(None, 0)
    degraded = sum(1 for r in results if r["status"] == 200 and (r["body"] or {}).get("route", {}).get("degraded"))
    unexpected = sum(1 for r in results if r["status"] is not None and (r["status"] not in ANSWERED or not r["json"]))
    rows: list[tuple[str, object]] = [
        ("requests sent", len(results)),
        ("200", statuses.get(200, 0)),
        ("  of which degraded", degraded),
    ]
    rows += [(f"errors {status}", count) for status, count in sorted(statuses.items()) if status != 200]
    rows += [
        ("unexpected answers", unexpected),
        ("no answer", unanswered),
        ("step crashes injected", sum(crasher.crashes.values())),
        ("breaker transitions", transitions),
        ("allocations made", numbers["allocations made"]),
        ("released", numbers["released"]),
        ("cleanup: leases settled", (sweep.get("ok") or {}).get("reconciled", "failed")),
        ("cleanup: GPUs released", (sweep.get("ok") or {}).get("released", "failed")),
        ("leaked", numbers["leaked"]),
        ("double allocations", numbers["double allocations"]),
        ("GPU shared at once", numbers["GPU shared at once"]),
        ("executions left running", still_running),
        ("seconds (requests)", f"{drive_seconds:.1f}"),
    ]
    print(render(rows))
    for failure in (sweep.get("ok") or {}).get("failed", []):
        print(f"cleanup could not settle {failure}", file=sys.stderr)
    failed = numbers["leaked"] or numbers["double allocations"] or numbers["GPU shared at once"] or unanswered or unexpected or still_running or "ok" not in sweep
    if failed:
        print("chaos: FAILED (leak, double allocation, shared GPU, unanswered or unexpected answer)", file=sys.stderr)
        return 1
    print("chaos: ok (0 leaked, 0 double allocations, 0 GPUs shared at once, every request answered)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
