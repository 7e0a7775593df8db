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


class LocalStack:
    def __init__(self, *, host: str = "127.0.0.1", api_port: int = 3000, aws_port: int = 5000, emulator_port: int = 8090,
                 time_scale: float = 1.0, log_dir: Path | None = None, root: Path = ROOT, out=sys.stdout) -> None:
        self.host, self.api_port, self.aws_port, self.emulator_port = host, api_port, aws_port, emulator_port
        self.time_scale = time_scale
        self.root = root
        self.log_dir = log_dir or root / ".local" / "logs"
        self.out = out
        self.api_key = secrets.token_urlsafe(24)  # HostedAI key: lives in the emulator and the secret only
        self._stops: list = []

    @property
    def aws_endpoint(self) -> str:
        return f"http://{self.host}:{self.aws_port}"

    def start(self) -> "LocalStack":
        import logging

        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no access log per AWS call

        from local.emulator import run_in_thread

        self.emulator = run_in_thread(api_key=self.api_key, host=self.host, port=self.emulator_port, time_scale=self.time_scale)
        self._stops.append(self.emulator.stop)
        self.emulator_url = self.emulator.base_url

        os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
        os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
        os.environ["AWS_DEFAULT_REGION"] = "us-east-1"
        os.environ["MOTO_PORT"] = str(self.aws_port)
        self.moto = ThreadedMotoServer(ip_address=self.host, port=self.aws_port, verbose=False)
        self.moto.start()
        self._stops.append(self.moto.stop)
        # moto's public config endpoint: run ASL for real, never Docker.
        _post_json(f"{self.aws_endpoint}/moto-api/config", {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}})

        self._provision()
        return self

    def _client(self, service: str):
        import boto3

        return boto3.client(service, endpoint_url=self.aws_endpoint, region_name="us-east-1")

    def _provision(self) -> None:
        from local import lambda_hook
        from local.apigw import make_api_server
        from local.functions import FunctionPool
        from local.template import load_stack, load_yaml

        prefix = "harpoon-local"
        template = load_yaml(self.root / "template.yaml")
        sm = self._client("secretsmanager")
        secret_arns = {}
        for logical_id, resource in template["Resources"].items():
            if resource["Type"] == "AWS::SecretsManager::Secret":
                secret_arns[logical_id] = sm.create_secret(Name=f"{prefix}/{logical_id}", SecretString=self.api_key)["ARN"]
        self.stack = load_stack(
            self.root,
            overrides={"WorkflowType": "STANDARD", "HostedAiBaseUrl": self.emulator_url},
            prefix=prefix,
            secret_arns=secret_arns,
        )
        ddb = self._client("dynamodb")
        for table in self.stack.tables.values():
            props = {k: v for k, v in table.properties.items() if k in ("AttributeDefinitions", "KeySchema", "BillingMode", "GlobalSecondaryIndexes", "LocalSecondaryIndexes")}
            ddb.create_table(TableName=table.name, **props)
            ttl = table.properties.get("TimeToLiveSpecification")
            if ttl:
                ddb.update_time_to_live(TableName=table.name, TimeToLiveSpecification=ttl)
        sfn = self._client("stepfunctions")
        for machine in self.stack.state_machines.values():
            sfn.create_state_machine(name=machine.name, definition=machine.definition, type="STANDARD",
                                     roleArn="arn:aws:iam::123456789012:role/harpoon-local-states")

        base_env = {"AWS_ENDPOINT_URL": self.aws_endpoint, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
        self.pool = FunctionPool(self.stack.functions, base_env, self.log_dir)
        self._stops.append(self.pool.close)
        self._stops.append(lambda_hook.install(self.pool.invoke))
        self.pool.warm_up()

        routes = [route for f in self.stack.functions.values() for route in f.routes]
        self.api = make_api_server(self.host, self.api_port, routes, self.pool.invoke, log=self.out)
        self.api_port = self.api.server_address[1]
        thread = threading.Thread(target=self.api.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
        thread.start()
        self._stops.append(self.api.shutdown)

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.api_port}"

    def banner(self) -> str:
        return "\n".join([
            "Harpoon local stack is up (Ctrl-C stops it)",
            f"  HTTP API           {self.api_url}   (GET /health, POST /v2/process)",
            f"  AWS emulation      {self.aws_endpoint}   (moto: Step Functions, DynamoDB, Secrets Manager)",
            f"  HostedAI emulator  {self.emulator_url}   (GET /_emulator/allocations)",
            f"  function logs      {self.log_dir}/",
            "Try:",
            f"  curl -s {self.api_url}/v2/process -H 'content-type: application/json' -d '{{\"text\": \"Hello\", \"deployment\": \"HostedAI\"}}'",
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
    args = parser.parse_args(argv)

    stack = LocalStack(host=args.host, api_port=args.api_port, aws_port=args.aws_port, emulator_port=args.emulator_port,
                       time_scale=args.time_scale, log_dir=args.log_dir)
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
