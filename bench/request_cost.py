"""What one happy-path request costs: DynamoDB operations and capacity units per
function, Step Functions state transitions, Lambda invocations and GB-s, and
dollars per million requests for EXPRESS and STANDARD workflows (the GPU bill
excluded), against issue 8's goals.

How it runs. Outside pytest, in one process: moto (`mock_aws`, its Step
Functions engine on) holding the template's tables and secret
(`local.provision`), the HostedAI emulator (`local.emulator.run_in_thread`,
time_scale 0: no modelled latency), and the environment the template gives the
functions (the union of their variables, as the tests' `aws` fixture does).
The state machine is the template's ASL, run as STANDARD (moto has no
StartSyncExecution); moto's engine reaches the real step handlers through
`local.lambda_hook`. Each request is the API function's handler on
events/api.json with an authorizer context {tenant_id, tier: enterprise}, no
Idempotency-Key. Warm reuse off (WARM_IDLE_SECONDS=0), then on (60, the
template's default): its first request misses the warm pool and keeps its GPU
warm, every later one claims the GPU the previous one kept. One unrecorded
request first builds each configuration's clients (with warm reuse off, the
tenant's own: its usage item then exists; on, another tenant's, so the first
request misses). A request that is its tenant's first in a minute makes one
more UpdateItem (its condition fails, then the charge is retried), so a run
that crosses a minute shows a fraction of one. The authorizer function is
invoked once with a key it must look up, then once more (a hit in its cache).

DynamoDB. Every call a function makes goes through a botocore hook (as
tests/statemachine/test_iam_least_privilege.py records them) that knows which
function is running. Reads: GetItem and Query calls, BatchGetItem items.
Writes: PutItem, UpdateItem, DeleteItem calls and every item of a
TransactWriteItems (ConditionCheck included: DynamoDB bills it as a
transactional write); a write whose condition fails counts (it is billed).
Capacity by DynamoDB's on-demand rules:
- a write: 1 WCU per 1 KB (rounded up) of the larger of the item before and
  after it, x2 inside a transaction. The item before and after is read from
  moto around the call (these reads are the bench's, not counted);
- index writes (LeasesTable's ExpiryIndex and WarmIndex, UsageTable's
  SlotExpiryIndex): an item entering or leaving a sparse index is one index
  write, one whose index key changes is two, one whose projected attributes
  change is one; sized as the projected item; never doubled (an approximation:
  AWS documents index writes, not how a transaction bills them);
- a read: per 4 KB (rounded up) of the item (GetItem), of all items returned
  (Query: the happy path's queries have no filter, so read = returned), or of
  each item (BatchGetItem); 0.5 RCU eventually consistent, 1 strongly
  consistent, x2 transactional; at least one 4 KB unit per request.
Item size approximates DynamoDB's rule: attribute name + value bytes (strings
UTF-8, numbers 1 byte per 2 significant digits + 1, booleans and nulls 1, maps
and lists 3 + 1 per element). Index entries leave out the 100 bytes of
overhead DynamoDB adds to each (`max_write_bytes` in the results shows how far
the largest item written is from a 1 KB boundary).

Breaker caches. Each step's container caches a model's breaker for 2 s; here
one process hosts every step, so the cache is cleared before each step (a
container that last ran more than 2 s ago). Its reads are shown apart: they
vanish above one request per 2 s per container.

Lambda. Invocations per function; duration = the handler's wall time here
(in-process, moto and the emulator included; the recorder's own reads
subtracted, from the execution's duration too), rounded up to 1 ms; memory from
the template (256 MB). Init (a cold start's imports) is not included. With 1 s
of inference, the Infer handler and the API handler (waiting for the workflow)
each run 1 s longer: the dollar figures add that second to both.

Step Functions. State transitions = the StateEntered events of the execution's
history (what STANDARD bills). EXPRESS: one request + GB-s at 64 MB for the
execution's duration in 100 ms units, the duration modelled as the measured
execution (no inference here) + 1 s of inference.

Dollars per million requests, us-east-1 list prices (shared/brief/anchors.md):
API Gateway HTTP API, Lambda requests and arm64 GB-s, Step Functions, DynamoDB
on demand. The authorizer runs on every request (the gateway's cache is off);
its key lookup is cached 30 s per container: "cached" assumes one lookup per
AUTH_REQUESTS_PER_LOOKUP requests (1 request/s per container), "every request"
is the worst case. Not included: the GPU, Lambda init, CloudWatch Logs (the
table shows the bytes: Lambda stdout and the execution's history, what
Logging Level ALL with execution data writes), X-Ray, Secrets Manager (cached
300 s per container), data transfer.
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib.util
import json
import math
import os
import sys
import tempfile
import threading
import time
import traceback
import uuid
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REQUESTS = 20
INFERENCE_SECONDS = 1.0  # issue 8's goal is priced at 1 s of inference
AUTH_REQUESTS_PER_LOOKUP = 30  # the authorizer's 30 s cache at 1 request/s per container

# us-east-1 list prices (shared/brief/anchors.md), in USD.
PRICE_APIGW_HTTP_REQUEST = 1.00 / 1e6
PRICE_LAMBDA_REQUEST = 0.20 / 1e6
PRICE_LAMBDA_GB_S_ARM64 = 0.0000133334
PRICE_SFN_TRANSITION = 0.025 / 1000
PRICE_EXPRESS_REQUEST = 1.00 / 1e6
PRICE_EXPRESS_GB_S = 0.00001667
EXPRESS_MEMORY_GB = 64 / 1024
EXPRESS_UNIT_SECONDS = 0.1
PRICE_WCU = 0.625 / 1e6
PRICE_RCU = 0.125 / 1e6

# Issue 8's goals.
GOAL_READS = 1
GOAL_WRITES = 3
GOAL_EXPRESS_USD_PER_M = 10.0

STEPS = ("ClassifyFunction", "AllocateFunction", "InferFunction", "ReleaseFunction")
FUNCTIONS = ("AuthorizerFunction", "ApiFunction") + STEPS
WAITS_FOR_INFERENCE = ("ApiFunction", "InferFunction")
SCENARIOS = {
    "off": "warm reuse off",
    "miss": "warm on, 1st (miss)",
    "hit": "warm on, 2nd+ (hit)",
}
TENANT = "demo"
WARMUP_TENANT = "bench-warmup"
HOSTEDAI_KEY = "bench-hostedai-key-0123456789"

_function = contextvars.ContextVar("bench_request_cost_function", default=None)


# --- DynamoDB's size and capacity rules ------------------------------------------


def attribute_size(value: dict) -> int:
    (kind, inner), = value.items()
    if kind == "S":
        return len(inner.encode("utf-8"))
    if kind == "N":
        digits = inner.lstrip("-").replace(".", "").strip("0") or "0"  # significant digits
        return math.ceil(len(digits) / 2) + 1
    if kind == "B":
        return len(inner)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(s.encode("utf-8")) for s in inner)
    if kind == "NS":
        return sum(attribute_size({"N": n}) for n in inner)
    if kind == "BS":
        return sum(len(b) for b in inner)
    if kind == "M":
        return 3 + sum(len(k.encode("utf-8")) + attribute_size(v) + 1 for k, v in inner.items())
    if kind == "L":
        return 3 + sum(attribute_size(v) + 1 for v in inner)
    raise ValueError(f"unknown attribute type {kind}")


def item_size(item: dict | None) -> int:
    return sum(len(name.encode("utf-8")) + attribute_size(value) for name, value in (item or {}).items())


def read_units(size: int, *, consistent: bool, transactional: bool = False) -> float:
    units = max(1, math.ceil(size / 4096)) * (1.0 if consistent else 0.5)
    return units * 2 if transactional else units


def write_units(size: int, *, transactional: bool = False) -> int:
    units = max(1, math.ceil(size / 1024))
    return units * 2 if transactional else units


@dataclass(frozen=True)
class TableSpec:
    logical_id: str
    key: tuple[str, ...]
    indexes: tuple[tuple[str, tuple[str, ...], str, tuple[str, ...]], ...]  # (name, keys, projection, included)

    @classmethod
    def of(cls, table) -> "TableSpec":
        props = table.properties
        key = tuple(k["AttributeName"] for k in props["KeySchema"])
        indexes = []
        for index in props.get("GlobalSecondaryIndexes", []) + props.get("LocalSecondaryIndexes", []):
            projection = index.get("Projection", {})
            indexes.append((index["IndexName"], tuple(k["AttributeName"] for k in index["KeySchema"]),
                            projection.get("ProjectionType", "ALL"), tuple(projection.get("NonKeyAttributes", ()))))
        return cls(table.logical_id, key, tuple(indexes))

    def index_write_units(self, before: dict | None, after: dict | None) -> int:
        units = 0
        for _name, keys, projection, included in self.indexes:
            def projected(item):
                if projection == "ALL":
                    return item
                wanted = set(keys) | set(self.key) | (set(included) if projection == "INCLUDE" else set())
                return {k: v for k, v in item.items() if k in wanted}

            was = before is not None and all(k in before for k in keys)
            now = after is not None and all(k in after for k in keys)
            if was and now:
                if any(before[k] != after[k] for k in keys):
                    units += write_units(item_size(projected(before))) + write_units(item_size(projected(after)))
                elif projected(before) != projected(after):
                    units += write_units(max(item_size(projected(before)), item_size(projected(after))))
            elif now:
                units += write_units(item_size(projected(after)))
            elif was:
                units += write_units(item_size(projected(before)))
        return units


class DynamoRecorder:
    """Patches botocore's BaseClient._make_api_call; records, for each DynamoDB
    call made while a function runs (the context variable says which), its
    reads, writes and capacity units."""

    def __init__(self, tables: dict[str, TableSpec]) -> None:
        self.tables = tables  # physical name -> spec
        self.ops: list[dict] = []
        self.overhead = 0.0  # seconds spent in the bench's own reads (subtracted from the durations)
        self._lock = threading.Lock()
        self._real = None

    def __enter__(self) -> "DynamoRecorder":
        import botocore.client

        self._real = botocore.client.BaseClient._make_api_call
        recorder = self

        def _make_api_call(client, operation, params):
            function = _function.get()
            if function is None or client.meta.service_model.service_name != "dynamodb":
                return recorder._real(client, operation, params)
            return recorder._record(function, client, operation, params)

        botocore.client.BaseClient._make_api_call = _make_api_call
        return self

    def __exit__(self, *exc_info) -> None:
        import botocore.client

        botocore.client.BaseClient._make_api_call = self._real

    def _add(self, **op) -> None:
        base = {"reads": 0, "writes": 0, "transactions": 0, "condition_checks": 0, "failed": 0, "rcu": 0.0,
                "wcu": 0, "index_wcu": 0, "bytes": 0, "index": None}
        base.update(op)
        with self._lock:
            self.ops.append(base)

    def _stored(self, client, table: str, item_or_key: dict) -> dict | None:
        spec = self.tables[table]
        key = {k: item_or_key[k] for k in spec.key}
        started = time.perf_counter()
        try:
            return self._real(client, "GetItem", {"TableName": table, "Key": key, "ConsistentRead": True}).get("Item")
        finally:
            with self._lock:
                self.overhead += time.perf_counter() - started

    def _record(self, function: str, client, operation: str, params: dict):
        from botocore.exceptions import ClientError

        if operation in ("GetItem", "Query", "Scan"):
            response = self._real(client, operation, params)
            items = [response["Item"]] if response.get("Item") else response.get("Items", [])
            size = sum(item_size(it) for it in items)
            consistent = bool(params.get("ConsistentRead"))
            self._add(function=function, table=self.tables[params["TableName"]].logical_id, operation=operation,
                      index=params.get("IndexName"), reads=1, bytes=size, rcu=read_units(size, consistent=consistent))
            return response
        if operation == "BatchGetItem":
            response = self._real(client, operation, params)
            for table, items in response.get("Responses", {}).items():
                consistent = bool(params["RequestItems"][table].get("ConsistentRead"))
                for it in items:
                    size = item_size(it)
                    self._add(function=function, table=self.tables[table].logical_id, operation=operation, reads=1,
                              bytes=size, rcu=read_units(size, consistent=consistent))
            return response
        if operation in ("PutItem", "UpdateItem", "DeleteItem"):
            table = params["TableName"]
            target = params["Item"] if operation == "PutItem" else params["Key"]
            before = self._stored(client, table, target)
            failed = 0
            try:
                response = self._real(client, operation, params)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                    raise
                failed, response = 1, exc
            after = self._stored(client, table, target)
            sizes = [item_size(before), item_size(after)]
            if operation == "PutItem":
                sizes.append(item_size(params["Item"]))
            spec = self.tables[table]
            self._add(function=function, table=spec.logical_id, operation=operation, writes=1, failed=failed,
                      bytes=max(sizes), wcu=write_units(max(sizes)),
                      index_wcu=0 if failed else spec.index_write_units(before, after))
            if failed:
                raise response
            return response
        if operation == "TransactWriteItems":
            entries = []
            for item in params["TransactItems"]:
                (kind, spec_), = item.items()
                table = spec_["TableName"]
                target = spec_.get("Item") or spec_["Key"]
                entries.append((kind, table, target, self._stored(client, table, target)))
            failed = 0
            try:
                response = self._real(client, operation, params)
            except ClientError as exc:
                failed, response = 1, exc
            for position, (kind, table, target, before) in enumerate(entries):
                after = before if kind == "ConditionCheck" else self._stored(client, table, target)
                sizes = [item_size(before), item_size(after)] + ([item_size(target)] if kind == "Put" else [])
                spec = self.tables[table]
                self._add(function=function, table=spec.logical_id, operation=f"TransactWriteItems.{kind}", writes=1,
                          transactions=1 if position == 0 else 0, condition_checks=int(kind == "ConditionCheck"),
                          failed=failed, bytes=max(sizes), wcu=write_units(max(sizes), transactional=True),
                          index_wcu=0 if failed or kind == "ConditionCheck" else spec.index_write_units(before, after))
            if failed:
                raise response
            return response
        if operation == "BatchWriteItem":
            response = self._real(client, operation, params)
            for table, requests in params["RequestItems"].items():
                spec = self.tables[table]
                for request in requests:
                    (kind, body), = request.items()
                    size = item_size(body.get("Item") or body.get("Key"))
                    self._add(function=function, table=spec.logical_id, operation=f"BatchWriteItem.{kind}", writes=1,
                              bytes=size, wcu=write_units(size))
            return response
        return self._real(client, operation, params)  # DescribeTable and the like: no capacity


# --- the functions, as Lambda would run them ----------------------------------------


class _Context:
    def __init__(self, function) -> None:
        self.function_name = function.name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = function.memory
        self.invoked_function_arn = function.arn
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function.name}"
        self.log_stream_name = "bench"
        self._deadline = time.monotonic() + function.timeout

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class Functions:
    """The template's functions in this process: handler modules loaded as
    tests.conftest.load_handler does, each invocation timed and marked with its
    function for the DynamoDB recorder."""

    def __init__(self, stack, overhead=lambda: 0.0) -> None:
        self.stack = stack
        self.overhead = overhead  # seconds the recorder has spent so far (its reads around writes)
        self.by_name = {}
        for function in stack.functions.values():
            self.by_name[function.arn] = self.by_name[function.name] = function
        # (logical id, wall ms without the recorder's overhead, that overhead in ms)
        self.invocations: list[tuple[str, float, float]] = []

    def handler(self, logical_id: str):
        function = self.stack.functions[logical_id]
        step = function.code_dir.name
        name = f"harpoon_fn_{step}_handler"
        if name not in sys.modules:
            spec = importlib.util.spec_from_file_location(name, function.code_dir / "handler.py")
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)
        return getattr(sys.modules[name], function.handler.rpartition(".")[2])

    def call(self, logical_id: str, event: dict):
        from harpoon import deps

        function = self.stack.functions[logical_id]
        handler = self.handler(logical_id)
        if logical_id in STEPS:
            deps.breaker.cache_clear()  # its own container, last used more than 2 s ago
        token = _function.set(logical_id)
        started, overhead = time.perf_counter(), self.overhead()
        try:
            return handler(event, _Context(function))
        finally:
            extra = (self.overhead() - overhead) * 1000
            self.invocations.append((logical_id, (time.perf_counter() - started) * 1000 - extra, extra))
            _function.reset(token)

    def invoke(self, name: str, event: dict) -> dict:
        """local.lambda_hook's invoker: the handler's result, or Lambda's error payload."""
        try:
            return {"ok": self.call(self.by_name[name].logical_id, event)}
        except Exception as exc:
            return {"error": {"errorType": type(exc).__name__, "errorMessage": str(exc),
                              "stackTrace": traceback.format_tb(exc.__traceback__)}}


@contextlib.contextmanager
def _stdout_to_file():
    """File descriptor 1 into a temporary file (the functions' log lines and
    EMF metrics); yields a function giving the bytes written so far."""
    sys.stdout.flush()
    saved = os.dup(1)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 1)

        def written() -> int:
            sys.stdout.flush()
            return os.fstat(sink.fileno()).st_size

        try:
            yield written
        finally:
            sys.stdout.flush()
            os.dup2(saved, 1)
            os.close(saved)


@contextlib.contextmanager
def _environment():
    saved = dict(os.environ)
    try:
        for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                           "AWS_SECURITY_TOKEN": "testing", "AWS_SESSION_TOKEN": "testing",
                           "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1"}.items():
            os.environ[key] = value
        for key in [k for k in os.environ if k.startswith("AWS_ENDPOINT_URL") or k == "AWS_PROFILE"]:
            del os.environ[key]
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@contextlib.contextmanager
def _logger_level_restored(logger, level: int):
    try:
        yield
    finally:
        logger.setLevel(level)


def _reset_caches() -> None:
    from harpoon import deps

    deps.reset()
    try:
        from aws_lambda_powertools.utilities import parameters

        parameters.clear_caches()
    except ImportError:
        pass


# --- the run --------------------------------------------------------------------------


def results(n: int = REQUESTS) -> dict:
    """Runs the requests and returns everything measured, JSON-serialisable."""
    import logging

    import boto3
    from moto import mock_aws

    from local import lambda_hook
    from local.emulator import run_in_thread
    from local.provision import provision

    if n < 2:
        raise ValueError("n must be at least 2: warm reuse needs a request to keep a GPU and one to claim it")
    moto_log = logging.getLogger("moto.stepfunctions")
    moto_level = moto_log.level
    api_event = json.loads((ROOT / "events" / "api.json").read_text())
    auth_event = json.loads((ROOT / "events" / "authorizer.json").read_text())
    started = time.perf_counter()
    moto_log.setLevel(logging.CRITICAL)  # a failed execution would be logged whole; the bench raises instead
    with _logger_level_restored(moto_log, moto_level), _environment(), \
            run_in_thread(api_key=HOSTEDAI_KEY, time_scale=0) as emulator, \
            mock_aws(config={"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}):
        stack = provision(ROOT, boto3.client, prefix="harpoon-bench", secret_value=HOSTEDAI_KEY,
                          overrides={"WorkflowType": "STANDARD", "HostedAiBaseUrl": emulator.base_url})
        for function in stack.functions.values():
            os.environ.update(function.environment)
        machine = stack.state_machines["RequestStateMachine"]
        sfn = boto3.client("stepfunctions")
        machine_arn = sfn.create_state_machine(name=machine.name, definition=machine.definition,
                                               roleArn="arn:aws:iam::123456789012:role/states",
                                               type="STANDARD")["stateMachineArn"]
        recorder = DynamoRecorder({t.name: TableSpec.of(t) for t in stack.tables.values()})
        functions = Functions(stack, overhead=lambda: recorder.overhead)
        for logical_id in FUNCTIONS:
            functions.handler(logical_id)  # imports: init, not billed per invocation here
        uninstall = lambda_hook.install(functions.invoke)
        try:
            with recorder, _stdout_to_file() as log_bytes:
                _reset_caches()
                from harpoon import deps

                _, key = deps.tenants().create(TENANT, "enterprise")
                authorizer = []
                for attempt in ("lookup", "cache hit"):
                    first_op, first_inv, first_log = len(recorder.ops), len(functions.invocations), log_bytes()
                    event = {**auth_event, "headers": {**auth_event["headers"], "x-api-key": key}}
                    verdict = functions.call("AuthorizerFunction", event)
                    if verdict["context"].get("tenant_id") != TENANT:
                        raise RuntimeError(f"the authorizer refused the bench's key: {verdict}")
                    authorizer.append({"attempt": attempt, "ops": recorder.ops[first_op:],
                                       "invocations": functions.invocations[first_inv:],
                                       "log_bytes": log_bytes() - first_log})
                requests = []
                for mode, idle in (("off", "0"), ("on", "60")):
                    os.environ["WARM_IDLE_SECONDS"] = idle
                    _reset_caches()
                    first_op, first_inv = len(recorder.ops), len(functions.invocations)
                    # Not recorded: builds this configuration's clients, and (warm reuse off) the tenant's usage
                    # item for this minute; with warm reuse on it is another tenant's, so the first request misses.
                    _request(functions, api_event, TENANT if mode == "off" else WARMUP_TENANT, sfn, machine_arn)
                    del recorder.ops[first_op:], functions.invocations[first_inv:]
                    for i in range(n):
                        first_op, first_inv, first_log = len(recorder.ops), len(functions.invocations), log_bytes()
                        body, execution = _request(functions, api_event, TENANT, sfn, machine_arn)
                        invoked = functions.invocations[first_inv:]
                        # The execution's duration without the recorder's reads in its steps.
                        execution["execution_ms"] -= sum(extra for fn, _, extra in invoked if fn in STEPS)
                        scenario = "off" if mode == "off" else ("hit" if body["allocation"]["warm"] else "miss")
                        requests.append({"scenario": scenario, "index": i, "model": body["route"]["model"],
                                         "warm": body["allocation"]["warm"], "release": body["release"]["status"],
                                         "ops": recorder.ops[first_op:], "invocations": invoked,
                                         "log_bytes": log_bytes() - first_log, **execution})
        finally:
            uninstall()
            _reset_caches()
        memory = {f.logical_id: f.memory for f in stack.functions.values()}
    return _summarise(requests, authorizer, memory, n, time.perf_counter() - started)


def _request(functions: Functions, api_event: dict, tenant: str, sfn, machine_arn: str) -> tuple[dict, dict]:
    event = json.loads(json.dumps(api_event))
    event["requestContext"]["authorizer"] = {"lambda": {"tenant_id": tenant, "tier": "enterprise"}}
    event["requestContext"]["requestId"] = uuid.uuid4().hex[:16]
    response = functions.call("ApiFunction", event)
    if response["statusCode"] != 200:
        raise RuntimeError(f"the bench's request failed: {response['statusCode']} {response['body']}")
    body = json.loads(response["body"])
    arn = machine_arn.replace(":stateMachine:", ":execution:", 1) + ":" + body["request_id"]
    described = sfn.describe_execution(executionArn=arn)
    history = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
    entered = [e for e in history if e["type"].endswith("StateEntered")]
    return body, {
        "transitions": len(entered),
        "states": [e["stateEnteredEventDetails"]["name"] for e in entered],
        "execution_ms": (described["stopDate"] - described["startDate"]).total_seconds() * 1000,
        "history_bytes": sum(len(json.dumps(e, default=str)) for e in history),
    }


# --- summaries ------------------------------------------------------------------------


_OP_FIELDS = ("reads", "writes", "transactions", "condition_checks", "failed", "rcu", "wcu", "index_wcu")


def _totals(ops: list[dict]) -> dict:
    out = {field: sum(op[field] for op in ops) for field in _OP_FIELDS}
    out["rcu"] = float(out["rcu"])
    return out


def _per(value: float, count: int) -> float:
    return value / count if count else 0.0


def _billed_ms(ms: float) -> int:
    return max(1, math.ceil(ms))


def _summarise(requests: list[dict], authorizer: list[dict], memory: dict, n: int, seconds: float) -> dict:
    scenarios = {}
    for name, label in SCENARIOS.items():
        runs = [r for r in requests if r["scenario"] == name]
        count = len(runs)
        ops = [op for r in runs for op in r["ops"]]
        by_function = {f: _totals([op for op in ops if op["function"] == f]) for f in FUNCTIONS[1:]}
        breakdown: dict[tuple, dict] = {}
        for op in ops:
            key = (op["function"], op["table"], op["operation"] + (f" ({op['index']})" if op["index"] else ""))
            entry = breakdown.setdefault(key, {"count": 0, "rcu": 0.0, "wcu": 0, "index_wcu": 0, "failed": 0})
            entry["count"] += op["reads"] + op["writes"]
            for field in ("rcu", "wcu", "index_wcu", "failed"):
                entry[field] += op[field]
        invocations = [inv for r in runs for inv in r["invocations"]]
        lambdas = {}
        for f in FUNCTIONS[1:]:
            times = [ms for fn, ms, _ in invocations if fn == f]
            billed = sum(_billed_ms(ms) for ms in times)
            lambdas[f] = {"invocations": len(times), "memory_mb": memory[f], "total_ms": sum(times),
                          "billed_ms": billed, "gb_s": billed / 1000 * memory[f] / 1024}
        scenarios[name] = {
            "label": label, "requests": count,
            "models": sorted({r["model"] for r in runs}), "release": sorted({r["release"] for r in runs}),
            "dynamodb": {"total": _totals(ops), "by_function": by_function,
                         "breaker_reads": sum(op["reads"] for op in ops if op["table"] == "BreakersTable"),
                         "max_write_bytes": max((op["bytes"] for op in ops if op["writes"]), default=0),
                         "max_read_bytes": max((op["bytes"] for op in ops if op["reads"]), default=0),
                         "breakdown": [{"function": k[0], "table": k[1], "operation": k[2], **v}
                                       for k, v in breakdown.items()]},
            "transitions": sum(r["transitions"] for r in runs),
            "states": runs[0]["states"] if runs else [],
            "execution_ms": sum(r["execution_ms"] for r in runs),
            "lambda": lambdas,
            "log_bytes": sum(r["log_bytes"] for r in runs),
            "history_bytes": sum(r["history_bytes"] for r in runs),
        }
    auth = []
    for a in authorizer:
        ms = [m for _, m, _ in a["invocations"]]
        auth.append({"attempt": a["attempt"], "dynamodb": _totals(a["ops"]), "invocations": len(ms),
                     "billed_ms": sum(_billed_ms(m) for m in ms),
                     "gb_s": sum(_billed_ms(m) for m in ms) / 1000 * memory["AuthorizerFunction"] / 1024,
                     "log_bytes": a["log_bytes"]})
    result = {"requests_per_mode": n, "seconds": round(seconds, 2), "scenarios": scenarios, "authorizer": auth,
              "memory_mb": {f: memory[f] for f in FUNCTIONS},
              "prices": {"apigw_http_request": PRICE_APIGW_HTTP_REQUEST, "lambda_request": PRICE_LAMBDA_REQUEST,
                         "lambda_gb_s_arm64": PRICE_LAMBDA_GB_S_ARM64, "sfn_transition": PRICE_SFN_TRANSITION,
                         "express_request": PRICE_EXPRESS_REQUEST, "express_gb_s": PRICE_EXPRESS_GB_S,
                         "wcu": PRICE_WCU, "rcu": PRICE_RCU},
              "assumptions": {"inference_seconds": INFERENCE_SECONDS,
                              "auth_requests_per_lookup": AUTH_REQUESTS_PER_LOOKUP,
                              "express_memory_gb": EXPRESS_MEMORY_GB}}
    for name, scenario in scenarios.items():
        if scenario["requests"]:
            scenario["cost_per_million"] = _costs(scenario, auth, memory)
    return result


def _costs(s: dict, auth: list[dict], memory: dict) -> dict:
    """USD per million requests, per workflow type; GPU excluded."""
    count = s["requests"]
    lookup, hit = auth[0], auth[1]
    invocations = sum(f["invocations"] for f in s["lambda"].values()) / count
    gb_s = sum(f["gb_s"] for f in s["lambda"].values()) / count
    gb_s += sum(INFERENCE_SECONDS * memory[f] / 1024 for f in WAITS_FOR_INFERENCE)
    ddb = s["dynamodb"]["total"]
    ddb_usd = ((ddb["wcu"] + ddb["index_wcu"]) * PRICE_WCU + ddb["rcu"] * PRICE_RCU) / count
    express_seconds = s["execution_ms"] / count / 1000 + INFERENCE_SECONDS
    express_billed = math.ceil(round(express_seconds / EXPRESS_UNIT_SECONDS, 6)) * EXPRESS_UNIT_SECONDS
    workflows = {
        "EXPRESS": PRICE_EXPRESS_REQUEST + express_billed * EXPRESS_MEMORY_GB * PRICE_EXPRESS_GB_S,
        "STANDARD": s["transitions"] / count * PRICE_SFN_TRANSITION,
    }
    out = {}
    for workflow, sfn_usd in workflows.items():
        parts = {
            "api_gateway": PRICE_APIGW_HTTP_REQUEST,
            "lambda_requests": (invocations + 1) * PRICE_LAMBDA_REQUEST,  # + the authorizer, every request
            "lambda_gb_s": gb_s * PRICE_LAMBDA_GB_S_ARM64,
            "step_functions": sfn_usd,
            "dynamodb": ddb_usd,
        }
        request_path = sum(parts.values())
        auth_every = lookup["gb_s"] * PRICE_LAMBDA_GB_S_ARM64 + lookup["dynamodb"]["rcu"] * PRICE_RCU
        auth_cached = ((hit["gb_s"] * (AUTH_REQUESTS_PER_LOOKUP - 1) + lookup["gb_s"]) / AUTH_REQUESTS_PER_LOOKUP
                       * PRICE_LAMBDA_GB_S_ARM64 + lookup["dynamodb"]["rcu"] * PRICE_RCU / AUTH_REQUESTS_PER_LOOKUP)
        out[workflow] = {**{k: v * 1e6 for k, v in parts.items()},
                         "authorizer_cached": auth_cached * 1e6, "authorizer_every_request": auth_every * 1e6,
                         "total_cached": (request_path + auth_cached) * 1e6,
                         "total_every_request": (request_path + auth_every) * 1e6,
                         "express_billed_seconds": express_billed if workflow == "EXPRESS" else None}
    return out


# --- tables ---------------------------------------------------------------------------


def _num(value: float, digits: int = 2) -> str:
    if abs(value - round(value)) < 1e-9:
        return f"{round(value):,}"
    return f"{value:,.{digits}f}"


DYNAMODB_HEADERS = ["scenario", "function", "reads", "writes", "transactions", "cond. checks in writes",
                    "failed in writes", "RCU", "WCU table", "WCU index", "WCU total"]


def dynamodb_rows(result: dict) -> list[list[object]]:
    """Per request: each function's DynamoDB operations and capacity units."""
    rows = []
    lookup = result["authorizer"][0]["dynamodb"]
    rows.append(["every request", "AuthorizerFunction (lookup)", *_op_cells(lookup, 1)])
    for s in result["scenarios"].values():
        if not s["requests"]:
            continue
        for function, totals in s["dynamodb"]["by_function"].items():
            if totals["reads"] or totals["writes"]:
                rows.append([s["label"], function, *_op_cells(totals, s["requests"])])
        rows.append([s["label"], "total (without the authorizer)", *_op_cells(s["dynamodb"]["total"], s["requests"])])
    return rows


def _op_cells(t: dict, count: int) -> list[str]:
    return [_num(_per(t["reads"], count)), _num(_per(t["writes"], count)), _num(_per(t["transactions"], count)),
            _num(_per(t["condition_checks"], count)), _num(_per(t["failed"], count)), _num(_per(t["rcu"], count)),
            _num(_per(t["wcu"], count)), _num(_per(t["index_wcu"], count)),
            _num(_per(t["wcu"] + t["index_wcu"], count))]


OPERATION_HEADERS = ["scenario", "function", "table", "operation", "per request", "RCU", "WCU table", "WCU index"]


def operation_rows(result: dict) -> list[list[object]]:
    """Per request: every (function, table, operation), largest capacity first."""
    rows = []
    for s in result["scenarios"].values():
        count = s["requests"]
        if not count:
            continue
        for e in sorted(s["dynamodb"]["breakdown"], key=lambda e: -(e["wcu"] + e["index_wcu"] + e["rcu"])):
            operation = e["operation"] + (f", {_num(_per(e['failed'], count))} failed" if e["failed"] else "")
            rows.append([s["label"], e["function"], e["table"], operation, _num(_per(e["count"], count)),
                         _num(_per(e["rcu"], count)), _num(_per(e["wcu"], count)), _num(_per(e["index_wcu"], count))])
    return rows


WORKFLOW_HEADERS = ["scenario", "transitions", "execution ms", "Lambda invocations", "API ms", "Classify ms",
                    "Allocate ms", "Infer ms", "Release ms", "GB-s measured", "Lambda log KB", "SFN history KB"]


def workflow_rows(result: dict) -> list[list[object]]:
    """Per request: state transitions, the execution's duration, Lambda
    invocations, mean billed ms per function (no inference), GB-s, log bytes."""
    rows = []
    for s in result["scenarios"].values():
        count = s["requests"]
        if not count:
            continue
        lam = s["lambda"]
        mean_ms = {f: _per(lam[f]["billed_ms"], lam[f]["invocations"]) for f in FUNCTIONS[1:]}
        rows.append([s["label"], _num(_per(s["transitions"], count)), f"{_per(s['execution_ms'], count):.1f}",
                     _num(_per(sum(f["invocations"] for f in lam.values()), count)),
                     *[f"{mean_ms[f]:.1f}" for f in FUNCTIONS[1:]],
                     f"{_per(sum(f['gb_s'] for f in lam.values()), count):.4f}",
                     f"{_per(s['log_bytes'], count) / 1024:.1f}", f"{_per(s['history_bytes'], count) / 1024:.1f}"])
    for a in result["authorizer"]:
        rows.append([f"authorizer ({a['attempt']})", "-", "-", _num(a["invocations"]), "-", "-", "-", "-", "-",
                     f"{a['gb_s']:.4f}", f"{a['log_bytes'] / 1024:.1f}", "-"])
    return rows


COST_HEADERS = ["scenario", "workflow", "API Gateway", "Lambda requests", "Lambda GB-s", "Step Functions",
                "DynamoDB", "authorizer", "total", "total, lookup every request"]


def cost_rows(result: dict) -> list[list[object]]:
    """USD per million requests at 1 s of inference, GPU excluded; the
    authorizer column is its GB-s and key lookups (cached), its invocation is
    in Lambda requests."""
    rows = []
    for s in result["scenarios"].values():
        for workflow, c in s.get("cost_per_million", {}).items():
            rows.append([s["label"], workflow, *[f"{c[k]:.2f}" for k in (
                "api_gateway", "lambda_requests", "lambda_gb_s", "step_functions", "dynamodb", "authorizer_cached",
                "total_cached", "total_every_request")]])
    return rows


GOAL_HEADERS = ["goal (issue 8)", "scenario", "measured", "target", "status"]


def goal_rows(result: dict) -> list[list[object]]:
    rows = []
    lookup_reads = result["authorizer"][0]["dynamodb"]["reads"]
    for s in result["scenarios"].values():
        count = s["requests"]
        if not count:
            continue
        total = s["dynamodb"]["total"]
        reads, writes = _per(total["reads"], count), _per(total["writes"], count)
        warm_reads = reads - _per(s["dynamodb"]["breaker_reads"], count)
        express = s["cost_per_million"]["EXPRESS"]
        rows += [
            ["DynamoDB reads / request (+ authorizer lookup)", s["label"], f"{_num(reads)} (+{_num(lookup_reads)})",
             f"<= {GOAL_READS}", _status(reads + lookup_reads <= GOAL_READS)],
            ["DynamoDB reads / request, caches warm", s["label"], _num(warm_reads), f"<= {GOAL_READS}",
             _status(warm_reads <= GOAL_READS)],
            ["DynamoDB writes / request", s["label"], _num(writes), f"<= {GOAL_WRITES}",
             _status(writes <= GOAL_WRITES)],
            ["EXPRESS USD / 1M requests, 1 s inference", s["label"],
             f"{express['total_cached']:.2f} ({express['total_every_request']:.2f})", f"<= {GOAL_EXPRESS_USD_PER_M:g}",
             _status(express["total_every_request"] <= GOAL_EXPRESS_USD_PER_M)],
        ]
    return rows


def _status(met: bool) -> str:
    return "met" if met else "missed"


def tables(result: dict) -> list[tuple[str, list[str], list[list[object]]]]:
    n = result["requests_per_mode"]
    return [
        (f"DynamoDB per request, by function ({n} requests with warm reuse off, {n} with it on; breaker caches cold)",
         DYNAMODB_HEADERS, dynamodb_rows(result)),
        ("DynamoDB per request, by operation (largest capacity first)", OPERATION_HEADERS, operation_rows(result)),
        ("Step Functions and Lambda per request (mean billed ms, no inference; init not included; memory from "
         f"template.yaml: {', '.join(sorted({f'{m} MB' for m in result['memory_mb'].values()}))})",
         WORKFLOW_HEADERS, workflow_rows(result)),
        (f"USD per million requests at {INFERENCE_SECONDS:g} s of inference (Lambda GB-s: + {INFERENCE_SECONDS:g} s "
         "each for Infer and the waiting API function), GPU excluded. Authorizer: invoked every request (in Lambda "
         f"requests), its GB-s and key lookup cached 1 per {AUTH_REQUESTS_PER_LOOKUP} requests; last column: a "
         "lookup every request",
         COST_HEADERS, cost_rows(result)),
        ("Issue 8's goals", GOAL_HEADERS, goal_rows(result)),
    ]


def report(result: dict) -> str:
    from bench.table import render

    return "\n\n".join(f"{title}\n{render(headers, rows)}" for title, headers, rows in tables(result))


HEADERS = COST_HEADERS


def measure(n: int = REQUESTS) -> list[list[object]]:
    """The cost table, as bench/__main__.py prints the others (results() has everything)."""
    return cost_rows(results(n))


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=REQUESTS, help="requests per warm-reuse setting (at least 2)")
    parser.add_argument("--json", metavar="PATH", help="also write the raw results as JSON")
    args = parser.parse_args(argv)
    sys.path[:0] = [str(ROOT / "layers" / "harpoon"), str(ROOT)]
    result = results(args.n)
    print(report(result))
    print(f"\n({result['seconds']:.0f} s)")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
