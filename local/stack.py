"""`make local`: the whole Harpoon stack on this machine, offline.

- AWS emulation (moto server with its Step Functions engine, DynamoDB, Secrets
  Manager) on :5000;
- the HostedAI emulator on :8090;
- the HTTP API on :3000, invoking the template's functions like API Gateway.

Everything is learned from template.yaml: functions, handlers, environment,
tables, the ASL and its substitutions. The state machine runs as STANDARD
because moto has no StartSyncExecution; the API function polls it, exactly as
a deployed stack with WorkflowType=STANDARD does.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import sys
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEMO_TENANT = "demo"


class LocalStack:
    def __init__(self, *, host: str = "127.0.0.1", api_port: int = 3000, aws_port: int = 5000, emulator_port: int = 8090,
                 time_scale: float = 1.0, log_dir: Path | None = None, root: Path = ROOT, out=sys.stdout,
                 schedule_interval: float | None = None, env_overrides: dict[str, str] | None = None,
                 max_concurrency: int = 32) -> None:
        self.host, self.api_port, self.aws_port, self.emulator_port = host, api_port, aws_port, emulator_port
        self.time_scale = time_scale
        self.root = root
        self.log_dir = log_dir or root / ".local" / "logs"
        self.out = out
        self.schedule_interval = schedule_interval  # None: the template's rate; 0: never
        self.env_overrides = env_overrides or {}
        self.max_concurrency = max_concurrency
        self._stopping = threading.Event()
        self.api_key = secrets.token_urlsafe(24)  # HostedAI key: lives in the emulator and the secret only
        self._stops: list = []
        self.schedule_runs: list[dict] = []

    @property
    def aws_endpoint(self) -> str:
        return f"http://{self.host}:{self.aws_port}"

    def start(self) -> "LocalStack":
        import logging

        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no access log per AWS call
        # moto's engine logs every failed execution with its whole state; a
        # failed request is already one line in our own log.
        logging.getLogger("moto.stepfunctions").setLevel(logging.CRITICAL)

        from local.ddb_atomic import serialise_writes
        from local.emulator import run_in_thread

        self.emulator = run_in_thread(api_key=self.api_key, host=self.host, port=self.emulator_port, time_scale=self.time_scale)
        self._stops.append(self.emulator.stop)
        self.emulator_url = self.emulator.base_url

        os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
        os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
        os.environ["AWS_DEFAULT_REGION"] = "us-east-1"
        os.environ["MOTO_PORT"] = str(self.aws_port)
        serialise_writes()  # DynamoDB's per-item atomicity, which moto lacks
        self.moto = ThreadedMotoServer(ip_address=self.host, port=self.aws_port, verbose=False)
        self.moto.start()
        self._stops.append(self.moto.stop)
        # moto's public config endpoint: run ASL for real, never Docker.
        _post_json(f"{self.aws_endpoint}/moto-api/config", {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}})

        self._provision()
        return self

    def client(self, service: str):
        import boto3

        return boto3.client(service, endpoint_url=self.aws_endpoint, region_name="us-east-1")

    def _provision(self) -> None:
        from local import lambda_hook
        from local.apigw import make_api_server
        from local.functions import FunctionPool
        from local.provision import provision

        self.stack = provision(
            self.root,
            self.client,
            prefix="harpoon-local",
            secret_value=self.api_key,
            overrides={"WorkflowType": "STANDARD", "HostedAiBaseUrl": self.emulator_url},
        )
        sfn = self.client("stepfunctions")
        for machine in self.stack.state_machines.values():
            sfn.create_state_machine(name=machine.name, definition=machine.definition, type="STANDARD",
                                     roleArn="arn:aws:iam::123456789012:role/harpoon-local-states")

        base_env = {"AWS_ENDPOINT_URL": self.aws_endpoint, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                    # `make sweep HORIZON=` and the chaos audit drain leases due later.
                    "SWEEP_ALLOW_HORIZON": "true"}
        from local.metrics import log_sizes

        self.log_offsets = log_sizes(self.log_dir) if self.log_dir.exists() else {}  # this run's lines only
        self.pool = FunctionPool(self.stack.functions, base_env, self.log_dir, max_concurrency=self.max_concurrency,
                                 overrides=self.env_overrides)
        self._stops.append(self.pool.close)
        # Everything calls functions through self.invoke, so a harness (chaos)
        # can wrap it without touching the functions.
        self.invoke = self.pool.invoke
        self._stops.append(lambda_hook.install(lambda name, event: self.invoke(name, event)))
        self.pool.warm_up()
        self.demo_api_key = self._create_demo_tenant()

        routes = [route for f in self.stack.functions.values() for route in f.routes]
        self.api = make_api_server(self.host, self.api_port, routes, lambda name, event: self.invoke(name, event),
                                   log=self.out, admin=self._admin)
        self.api_port = self.api.server_address[1]
        thread = threading.Thread(target=self.api.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
        thread.start()
        self._stops.append(self.api.shutdown)
        self._start_schedules()
        self._start_execution_events(sfn)

    def _start_execution_events(self, sfn) -> None:
        """Deliver Step Functions' status-change events to the functions whose
        EventBridge rules ask for them (local.execution_events)."""
        from local.execution_events import ExecutionEvents

        rules = [(f.logical_id, arn, statuses) for f in self.stack.functions.values()
                 for arn, statuses in f.execution_rules]
        if rules:
            events = ExecutionEvents(sfn, rules, lambda name, event: self.invoke(name, event), log=self.out)
            self._stops.append(events.start())

    def _create_demo_tenant(self) -> str:
        """The tenant `make local` serves (tier enterprise, so local load runs
        meet no quota): its key is HARPOON_DEMO_API_KEY if set, else random."""
        layer = str(self.root / "layers" / "harpoon")
        if layer not in sys.path:
            sys.path.append(layer)  # the admin's repository, exactly as the CLI uses it
        from harpoon.adapters.tenants import TenantRepository

        repo = TenantRepository(self.stack.tables["TenantsTable"].name, self.client("dynamodb"))
        try:
            _, key = repo.create(DEMO_TENANT, "enterprise", api_key=os.environ.get("HARPOON_DEMO_API_KEY") or None)
        except ValueError as exc:
            raise SystemExit(f"HARPOON_DEMO_API_KEY: {exc}") from None
        return key

    def _start_schedules(self) -> None:
        """Run each Schedule event at its template rate (or the local interval)."""
        self._stops.append(self._stopping.set)
        for function in self.stack.functions.values():
            for rate in function.schedules:
                interval = rate if self.schedule_interval is None else self.schedule_interval
                if interval > 0:
                    threading.Thread(target=self._every, args=(function.logical_id, interval), daemon=True).start()

    def _every(self, logical_id: str, interval: float) -> None:
        while not self._stopping.wait(interval):
            reply = self.run_scheduled(logical_id)
            started = self.schedule_runs[-1]["started_at"]
            print(f"schedule {logical_id} at {started:.3f}: {json.dumps(reply.get('ok', reply.get('error')))}",
                  file=self.out, flush=True)

    def _admin(self, method: str, path: str, body: bytes) -> tuple[int, object]:
        """POST /_local/schedules/<LogicalId>: run that function's schedule now
        (`make sweep` runs the cleanup). The JSON body, if any, is merged into
        the scheduled event. GET /_local/metrics: the metrics the functions
        emitted since the stack started, aggregated (`make metrics`)."""
        if method == "GET" and path.rstrip("/") == "/_local/metrics":
            from local.metrics import aggregate, from_log_dir

            return 200, {"metrics": aggregate(from_log_dir(self.log_dir, self.log_offsets))}
        parts = path.strip("/").split("/")
        if method != "POST" or len(parts) != 3 or parts[1] != "schedules":
            return 404, {"message": "POST /_local/schedules/<LogicalId>"}
        function = self.stack.functions.get(parts[2])
        if function is None or not function.schedules:
            return 404, {"message": f"no scheduled function {parts[2]!r}"}
        try:
            detail = json.loads(body or b"{}")
        except ValueError:
            return 400, {"message": "the body must be a JSON object"}
        reply = self.run_scheduled(function.logical_id, detail if isinstance(detail, dict) else {})
        print(f"schedule {function.logical_id} (on demand): {json.dumps(reply.get('ok', reply.get('error')))}",
              file=self.out, flush=True)
        return (200, reply["ok"]) if "ok" in reply else (500, reply.get("error"))

    def run_scheduled(self, logical_id: str, detail: dict | None = None) -> dict:
        """Invoke a function with an EventBridge scheduled event, now. Every
        run is kept in `schedule_runs` (start time, reply)."""
        import datetime
        import uuid

        event = {
            "version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event", "source": "aws.events",
            "account": "123456789012", "time": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": "us-east-1", "resources": [], "detail": {}, **(detail or {}),
        }
        started = time.time()
        reply = self.invoke(logical_id, event)
        self.schedule_runs.append({"function": logical_id, "started_at": started, "reply": reply})
        return reply

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.api_port}"

    def banner(self) -> str:
        return "\n".join([
            "Harpoon local stack is up (Ctrl-C stops it)",
            f"  HTTP API           {self.api_url}   (GET /health, GET /openapi.json, POST /v2/process, GET /v2/requests/{{id}}, POST /v1/chat/completions, GET /v1/models)",
            f"  AWS emulation      {self.aws_endpoint}   (moto: Step Functions, DynamoDB, Secrets Manager)",
            f"  HostedAI emulator  {self.emulator_url}   (GET /_emulator/allocations)",
            f"  function logs      {self.log_dir}/",
            f"  metrics            {self.api_url}/_local/metrics   (as a table: make metrics)",
            *[f"  schedule           {f.logical_id} every {self.schedule_interval if self.schedule_interval is not None else r:g} s"
              f" (run it now: make sweep)" for f in self.stack.functions.values() for r in f.schedules],
            f"  demo tenant        {DEMO_TENANT} (enterprise), API key {self.demo_api_key}",
            "  more tenants       make tenants ARGS=\"create acme --tier pro\"",
            "Try:",
            f"  export HARPOON_API_KEY={self.demo_api_key}",
            f"  curl -s {self.api_url}/v2/process -H \"x-api-key: $HARPOON_API_KEY\" -H 'content-type: application/json' -d '{{\"text\": \"Hello\", \"deployment\": \"HostedAI\"}}'",
        ])

    def stop(self) -> None:
        while self._stops:
            try:
                self._stops.pop()()
            except Exception as exc:  # keep stopping the rest
                print(f"stop: {exc}", file=sys.stderr)


def _post_json(url: str, body: dict) -> None:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--api-port", type=int, default=int(os.environ.get("HARPOON_API_PORT", 3000)))
    parser.add_argument("--aws-port", type=int, default=int(os.environ.get("HARPOON_AWS_PORT", 5000)))
    parser.add_argument("--emulator-port", type=int, default=int(os.environ.get("HARPOON_EMULATOR_PORT", 8090)))
    parser.add_argument("--time-scale", type=float, default=1.0, help="HostedAI emulator latency scale (0 = instant)")
    parser.add_argument("--log-dir", type=Path, default=None)
    parser.add_argument("--schedule-interval", type=float, default=None,
                        help="seconds between scheduled runs (default: the template's rate; 0 disables)")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="set a variable in every function's environment (e.g. WARM_IDLE_SECONDS=0); repeatable")
    args = parser.parse_args(argv)
    overrides = {}
    for pair in args.env:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            parser.error(f"--env expects NAME=VALUE, got {pair!r}")
        overrides[name] = value

    stack = LocalStack(host=args.host, api_port=args.api_port, aws_port=args.aws_port, emulator_port=args.emulator_port,
                       time_scale=args.time_scale, log_dir=args.log_dir, schedule_interval=args.schedule_interval,
                       env_overrides=overrides)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    try:
        stack.start()
        print(stack.banner(), flush=True)
        while not stopping.wait(0.5):
            pass
        print("stopping...", flush=True)
    finally:
        stack.stop()
    print("stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
