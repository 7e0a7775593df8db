"""Starts `python -m local` (what `make local` runs) on free ports for the
end-to-end tests, and stops it with Ctrl-C (SIGINT) at the end."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from local.chaos import free_port

ROOT = Path(__file__).resolve().parents[2]
DEMO_KEY = "hpn_e2e-demo-tenant-key-0123456789"  # HARPOON_DEMO_API_KEY of the stack under test


class RunningStack:
    def __init__(self, tmp: Path, *extra_args: str) -> None:
        self.api, self.aws, self.emu = free_port(), free_port(), free_port()
        self.lines: list[str] = []
        self.log_dir = tmp / "logs"
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env["HARPOON_DEMO_API_KEY"] = DEMO_KEY
        self.api_key = DEMO_KEY
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "local", "--api-port", str(self.api), "--aws-port", str(self.aws),
             "--emulator-port", str(self.emu), "--log-dir", str(tmp / "logs"), "--schedule-interval", "1", *extra_args],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()
        deadline = time.monotonic() + 90
        while not any("is up" in line for line in self.lines):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.proc.kill()
                raise RuntimeError("local stack did not start:\n" + "".join(self.lines))
            time.sleep(0.1)
        self.url = f"http://127.0.0.1:{self.api}"
        self.emulator_url = f"http://127.0.0.1:{self.emu}"

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line)

    def allocations(self) -> list:
        return httpx.get(f"{self.emulator_url}/_emulator/allocations").json()["allocations"]

    def leaked(self) -> list:
        """GPUs HostedAI still holds for Harpoon outside the warm pool (an
        idle warm GPU is held on purpose until its idle time ends)."""
        import boto3

        ddb = boto3.client("dynamodb", endpoint_url=f"http://127.0.0.1:{self.aws}", region_name="us-east-1",
                           aws_access_key_id="testing", aws_secret_access_key="testing")
        table = next(t for t in ddb.list_tables()["TableNames"] if t.endswith("LeasesTable"))
        warm = {item["allocation_id"]["S"] for item in ddb.scan(TableName=table)["Items"] if item["status"]["S"] == "IDLE"}
        return [a for a in self.allocations() if a["allocation_id"] not in warm]

    def faults(self, **settings) -> None:
        httpx.post(f"{self.emulator_url}/_emulator/faults", json=settings).raise_for_status()

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGINT)
        return self.proc.wait(timeout=30)


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    running = RunningStack(tmp_path_factory.mktemp("stack"))
    yield running
    code = running.stop()
    assert code == 0 and any("stopped" in line for line in running.lines), "".join(running.lines[-20:])


@pytest.fixture
def client(stack):
    stack.faults(allocate={}, inference={}, release={})
    with httpx.Client(base_url=stack.url, timeout=60, headers={"x-api-key": stack.api_key}) as http:
        yield http
    stack.faults(allocate={}, inference={}, release={})
