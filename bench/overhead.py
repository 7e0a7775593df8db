"""Orchestration overhead: one full request against the calls it cannot avoid
(issue 8: "orchestration overhead <= 1.5x its floor").

Measured paired and interleaved in one process, one run (N rounds; each round
runs every measurement once, in an order shuffled with a fixed seed, so the
machine's noise hits all alike; medians with min and max):

(a) request: the API function's handler on events/api.json with body
    {"text": "Hello", "max_tokens": 16} and an authorizer context {demo,
    enterprise}, warm reuse off (WARM_IDLE_SECONDS=0), through the template's
    state machine on moto's in-process Step Functions engine, whose Lambda
    tasks reach the real step handlers (local.lambda_hook), exactly as
    bench/request_cost.py runs it (its setup is reused: moto + the template's
    tables via local.provision, the HostedAI emulator at time_scale 0, so
    HostedAI answers in ~0 ms and the overhead shows). Breaker caches are
    cleared before each step, as in bench/request_cost.py.
(b) direct: one HostedAIClient.infer (httpx) on an allocation made beforehand,
    same model, prompt and max_tokens as (a) chose.
(c) floor: the unavoidable calls alone, back to back: HostedAI allocate +
    inference + release (HostedAIClient), plus every DynamoDB call the
    request's happy path made (recorded from an unmeasured request, the same
    list bench/request_cost.py measures for "warm reuse off": the quota
    take and give-back UpdateItems, the lease PutItem + UpdateItem x2, and
    Allocate's breaker GetItem: 6 calls), replayed with this round's request and allocation ids
    against the same moto. A replayed call that fails still counts (it made
    its round trip); `floor_failed_calls` says which did, and why. Numbers in
    exponent form are replayed in plain form (see _plain_number).
(d) engine: moto's Step Functions engine's own cost for this request: the
    same definition (a second STANDARD machine), the same execution input,
    each Lambda Task answered at once with its step's last real reply (no
    handler runs), through the same WorkflowRunner (start_execution +
    describe_execution polling, first poll after 20 ms, then x1.5) on the same
    moto.
(e) handlers: measured inside each (a), not alongside it: the API
    function's time outside its wait for the execution, plus the four step
    handlers' own times (each from its call to its return: its validation,
    logging, metrics, and its own HostedAI and DynamoDB calls, the same
    calls (c) replays). It leaves out all orchestration: the execution's
    start and polls, the engine, the Lambda payload marshalling. (e)/(c)
    says what Harpoon's own code adds to the unavoidable calls; it does not
    measure Step Functions, which only a deployed stack can.

Caveat, read before the ratios: (a) runs on moto's in-process Step Functions
engine as a STANDARD execution that the API function polls (moto has no
StartSyncExecution). The engine's own work and the poll's sleep granularity
(20, 30, 45, 67 ms ...) are in (a) and would not be in a real EXPRESS run with
StartSyncExecution, so (a) overstates the real request; (d) shows how much
of it is the engine. Not in any row: API Gateway, the authorizer, Lambda's invoke latency and cold starts,
the network (everything is in-process or loopback).
"""

from __future__ import annotations

import json
import os
import random
import statistics
import sys
import time
import uuid
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNS = 30
SEED = 8
GOAL_RATIO = 1.5
BODY = {"text": "Hello", "max_tokens": 16}
TENANT = "demo"
HEADERS = ["measurement", "median ms", "min ms", "max ms", "ratio (medians)", "goal", "status"]
LABELS = {
    "request": "(a) request: API handler + state machine (moto)",
    "direct": "(b) direct: one HostedAI inference (httpx)",
    "floor": "(c) floor: HostedAI alloc+infer+release + DynamoDB calls",
    "engine": "(d) moto SFN engine: same machine, steps' results replayed",
    "own": "(e) handlers in (a): API outside its wait + 4 steps",
}


class _Recorder:
    """While `on`: every DynamoDB call (operation, params) from any thread
    (moto's engine runs the steps in its own), and the HostedAI calls."""

    def __init__(self) -> None:
        self.on = False
        self.dynamodb: list[tuple[str, dict]] = []
        self.hostedai: dict[str, dict] = {}
        self._undo = []

    def __enter__(self) -> "_Recorder":
        import botocore.client

        from harpoon.adapters.hostedai import HostedAIClient

        real_call = botocore.client.BaseClient._make_api_call
        recorder = self

        def _make_api_call(client, operation, params):
            if recorder.on and client.meta.service_model.service_name == "dynamodb":
                recorder.dynamodb.append((operation, json.loads(json.dumps(params))))
            return real_call(client, operation, params)

        botocore.client.BaseClient._make_api_call = _make_api_call
        self._undo.append(lambda: setattr(botocore.client.BaseClient, "_make_api_call", real_call))
        for name in ("allocate", "infer"):
            real = getattr(HostedAIClient, name)

            def wrapped(client, *args, _real=real, _name=name, **kwargs):
                result = _real(client, *args, **kwargs)
                if recorder.on:
                    recorder.hostedai[_name] = {"kwargs": json.loads(json.dumps(kwargs)), "result": result}
                return result

            setattr(HostedAIClient, name, wrapped)
            self._undo.append(lambda _n=name, _r=real: setattr(HostedAIClient, _n, _r))
        return self

    def __exit__(self, *exc_info) -> None:
        for undo in reversed(self._undo):
            undo()


def _api_event(template: dict) -> dict:
    event = json.loads(json.dumps(template))
    event["body"] = json.dumps(BODY)
    event["headers"]["content-length"] = str(len(event["body"]))
    event["requestContext"]["authorizer"] = {"lambda": {"tenant_id": TENANT, "tier": "enterprise"}}
    event["requestContext"]["requestId"] = uuid.uuid4().hex[:16]
    return event


def _stats(samples: list[float]) -> dict:
    return {"median_ms": statistics.median(samples), "min_ms": min(samples), "max_ms": max(samples),
            "samples_ms": samples}


def results(runs: int = RUNS) -> dict:
    """Times (a)-(d) in `runs` interleaved rounds, and (e) within (a); JSON-serialisable."""
    import logging

    import boto3
    from botocore.exceptions import ClientError
    from moto import mock_aws

    from bench.request_cost import Functions, _environment, _logger_level_restored, _reset_caches, _stdout_to_file
    from harpoon.adapters.hostedai import HostedAIClient
    from harpoon.adapters.workflow import WorkflowRunner
    from local import lambda_hook
    from local.emulator import run_in_thread
    from local.provision import provision

    if runs < 1:
        raise ValueError("runs must be at least 1")
    key = "bench-hostedai-key-0123456789"
    template_event = json.loads((ROOT / "events" / "api.json").read_text())
    moto_log = logging.getLogger("moto.stepfunctions")
    started = time.perf_counter()
    with _logger_level_restored(moto_log, moto_log.level), _environment(), \
            run_in_thread(api_key=key, time_scale=0) as emulator, \
            mock_aws(config={"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}):
        moto_log.setLevel(logging.CRITICAL)
        stack = provision(ROOT, boto3.client, prefix="harpoon-bench", secret_value=key,
                          overrides={"WorkflowType": "STANDARD", "HostedAiBaseUrl": emulator.base_url})
        for function in stack.functions.values():
            os.environ.update(function.environment)
        os.environ["WARM_IDLE_SECONDS"] = "0"
        machine = stack.state_machines["RequestStateMachine"]
        sfn = boto3.client("stepfunctions")
        role = "arn:aws:iam::123456789012:role/states"
        real_arn = sfn.create_state_machine(name=machine.name, definition=machine.definition, roleArn=role,
                                            type="STANDARD")["stateMachineArn"]
        stub_arn = sfn.create_state_machine(name="harpoon-bench-replayed", definition=machine.definition,
                                            roleArn=role, type="STANDARD")["stateMachineArn"]
        engine_runner = WorkflowRunner(sfn, stub_arn, "STANDARD")
        ddb = boto3.client("dynamodb")
        hostedai = HostedAIClient(emulator.base_url, api_key=lambda refresh=False: key)
        functions = Functions(stack)
        for logical_id in ("ApiFunction", "ClassifyFunction", "AllocateFunction", "InferFunction", "ReleaseFunction"):
            functions.handler(logical_id)  # imports: init, not measured
        # (d)'s executions get each step's last real reply, without running it.
        replies: dict[str, dict] = {}
        replaying = [False]

        def invoke(name: str, event: dict) -> dict:
            if replaying[0]:
                return replies[name]
            replies[name] = functions.invoke(name, event)
            return replies[name]

        uninstall = lambda_hook.install(invoke)
        # (e): how long the API function waits for its execution, per request.
        waited: list[float] = []
        own: list[float] = []
        real_run = WorkflowRunner.run

        def timed_run(runner, *args, **kwargs):
            t0 = time.perf_counter()
            try:
                return real_run(runner, *args, **kwargs)
            finally:
                if not replaying[0]:
                    waited.append((time.perf_counter() - t0) * 1000)

        WorkflowRunner.run = timed_run
        try:
            with _Recorder() as recorder, _stdout_to_file():
                _reset_caches()
                from harpoon import deps

                deps.tenants().create(TENANT, "enterprise")

                def request() -> dict:
                    first = len(functions.invocations)
                    waited.clear()
                    response = functions.call("ApiFunction", _api_event(template_event))
                    calls = functions.invocations[first:]
                    api_ms = sum(ms for fn, ms, _ in calls if fn == "ApiFunction")
                    own.append(api_ms - sum(waited) + sum(ms for fn, ms, _ in calls if fn != "ApiFunction"))
                    if response["statusCode"] != 200:
                        raise RuntimeError(f"the bench's request failed: {response['statusCode']} {response['body']}")
                    return json.loads(response["body"])

                request()  # builds the clients and the tenant's usage item (unrecorded)
                recorder.on = True
                body = request()  # the happy path whose calls the floor replays
                recorder.on = False
                if body["release"]["status"] != "released":
                    raise RuntimeError(f"expected a released GPU with warm reuse off: {body['release']}")
                ddb_calls = list(recorder.dynamodb)
                alloc = recorder.hostedai["allocate"]
                inference = recorder.hostedai["infer"]["kwargs"]
                old_ids = [body["request_id"], alloc["result"].allocation_id]

                def replay_params(params: dict, new_ids: list[str]) -> dict:
                    text = json.dumps(params)
                    for old, new in zip(old_ids, new_ids):
                        text = text.replace(old, new)
                    return json.loads(text, object_hook=_plain_number)

                failed: dict[str, int] = {}

                def floor() -> None:
                    rid = f"bench-{uuid.uuid4().hex}"
                    kw = dict(alloc["kwargs"], idempotency_key=f"{rid}-1",
                              metadata={**alloc["kwargs"].get("metadata", {}), "request_id": rid})
                    allocation = hostedai.allocate(**kw)
                    hostedai.infer(**dict(inference, allocation_id=allocation.allocation_id, request_id=rid))
                    hostedai.release(allocation.allocation_id, request_id=rid)
                    for operation, params in ddb_calls:
                        method = getattr(ddb, _snake(operation))
                        try:
                            method(**replay_params(params, [rid, allocation.allocation_id]))
                        except Exception as exc:  # noqa: BLE001 - it made its round trip; counted, not fatal
                            code = exc.response["Error"]["Code"] if isinstance(exc, ClientError) else type(exc).__name__
                            failed[f"{operation}: {code}"] = failed.get(f"{operation}: {code}", 0) + 1

                held = hostedai.allocate(**dict(alloc["kwargs"], idempotency_key=f"bench-direct-{uuid.uuid4().hex}"))

                def direct() -> None:
                    hostedai.infer(**dict(inference, allocation_id=held.allocation_id,
                                          request_id=f"bench-{uuid.uuid4().hex}"))

                [last] = sfn.list_executions(stateMachineArn=real_arn, maxResults=1)["executions"]
                execution_input = json.loads(sfn.describe_execution(executionArn=last["executionArn"])["input"])

                def engine() -> None:
                    replaying[0] = True
                    try:
                        out = engine_runner.run(f"replayed-{uuid.uuid4().hex}", execution_input, timeout_seconds=30)
                    finally:
                        replaying[0] = False
                    if getattr(out, "status", "SUCCEEDED") != "SUCCEEDED":
                        raise RuntimeError(f"the replayed machine did not succeed: {out}")

                steps = {"request": request, "direct": direct, "floor": floor, "engine": engine}
                for fn in steps.values():
                    fn()  # warm-up: every path's clients and connections exist
                failed.clear()
                timings = {name: [] for name in steps}
                own.clear()
                order, rng = list(steps), random.Random(SEED)
                for _ in range(runs):
                    rng.shuffle(order)
                    for name in order:
                        t0 = time.perf_counter()
                        steps[name]()
                        timings[name].append((time.perf_counter() - t0) * 1000)
                timings["own"] = list(own)
                hostedai.release(held.allocation_id)
                model = inference["model"]
        finally:
            WorkflowRunner.run = real_run
            uninstall()
            _reset_caches()
    out = {name: _stats(samples) for name, samples in timings.items()}
    a, b, c, e = (out[k]["median_ms"] for k in ("request", "direct", "floor", "own"))
    return {
        "runs": runs, "seed": SEED, "python": sys.version.split()[0], "seconds": round(time.perf_counter() - started, 2),
        "model": model, "max_tokens": BODY["max_tokens"], "time_scale": 0, "workflow": "STANDARD (moto, polled)",
        "floor_dynamodb_calls": [op for op, _ in ddb_calls], "floor_failed_calls": dict(failed),
        "timings": out,
        "ratios": {"request/direct": a / b, "request/floor": a / c, "own/floor": e / c},
        "goal_ratio": GOAL_RATIO,
        "met": {"request/floor": a / c <= GOAL_RATIO, "own/floor": e / c <= GOAL_RATIO},
    }


def _plain_number(value: dict) -> dict:
    """{"N": "1e-06"} -> {"N": "0.000001"}: the usage charge writes repr(float),
    whose exponent form moto's ADD cannot parse; the floor replays it plain."""
    if set(value) == {"N"} and isinstance(value["N"], str) and "e" in value["N"].lower():
        return {"N": format(Decimal(value["N"]), "f")}
    return value


def _snake(operation: str) -> str:
    return "".join(f"_{ch.lower()}" if ch.isupper() else ch for ch in operation).lstrip("_")


def rows(result: dict) -> list[list[object]]:
    t, r = result["timings"], result["ratios"]
    status = lambda met: "met" if met else "missed"  # noqa: E731
    goal = f"<= {result['goal_ratio']:g}x of (c)"

    def cells(key: str) -> list[str]:
        return [f"{t[key]['median_ms']:.1f}", f"{t[key]['min_ms']:.1f}", f"{t[key]['max_ms']:.1f}"]

    return [
        [LABELS["request"], *cells("request"), f"{r['request/floor']:.1f}x (c), {r['request/direct']:.1f}x (b)",
         goal, status(result["met"]["request/floor"])],
        [LABELS["direct"], *cells("direct"), "-", "-", "-"],
        [LABELS["floor"], *cells("floor"), "-", "-", "-"],
        [LABELS["engine"], *cells("engine"), "-", "-", "-"],
        [LABELS["own"], *cells("own"), f"{r['own/floor']:.1f}x (c)", goal, status(result["met"]["own/floor"])],
    ]


def measure(runs: int = RUNS) -> list[list[object]]:
    return rows(results(runs))


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=RUNS, help="interleaved rounds")
    args = parser.parse_args(argv)
    sys.path[:0] = [str(ROOT / "layers" / "harpoon"), str(ROOT)]
    from bench.table import render

    result = results(args.n)
    print(f"Orchestration overhead: {args.n} interleaved rounds, HostedAI emulator at time_scale 0, "
          f"model {result['model']}, max_tokens {result['max_tokens']}")
    print(render(HEADERS, rows(result)))
    print(f"floor's DynamoDB calls, per round: {', '.join(result['floor_dynamodb_calls'])}; "
          f"failed replays over all rounds: {result['floor_failed_calls'] or 'none'}")
    print(f"({result['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
