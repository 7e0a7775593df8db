"""Lambda-like execution of the template's functions: each invocation runs in
a worker process of its function (local/runtime.py), one invocation at a time
per worker, with the function's template environment and no other. Idle
workers are reused (warm starts); more are started under concurrency, up to a
limit; an invocation past the function's Timeout kills its worker.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import IO

from local.template import REGION, Function

RUNTIME = Path(__file__).with_name("runtime.py")


class WorkerStartError(RuntimeError):
    """The function's module failed to import (Lambda's init error)."""


class Throttled(RuntimeError):
    """More concurrent invocations than the function's limit (Lambda's 429)."""


class Worker:
    def __init__(self, function: Function, env: dict[str, str], log: IO[str]) -> None:
        self.function = function
        self.proc = subprocess.Popen(
            [sys.executable, str(RUNTIME)],
            cwd=function.code_dir,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            bufsize=1,
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()
        first = self._read(deadline=time.monotonic() + 30)
        if first is None or "ready" not in first:
            self.kill()
            raise WorkerStartError(f"{function.logical_id} failed to start: {first}")

    def _pump(self) -> None:
        for line in self.proc.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def _read(self, deadline: float) -> dict | None:
        try:
            line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            return {"timeout": True}
        if line is None:
            return None
        try:
            return json.loads(line)
        except ValueError:
            return {"protocol_error": line[:200]}

    def invoke(self, event: object, request_id: str) -> dict:
        timeout = self.function.timeout
        deadline_ms = int(time.time() * 1000) + timeout * 1000
        exited = {"error": {"errorType": "Runtime.ExitError", "errorMessage": "the function's process exited", "stackTrace": []}}
        try:
            self.proc.stdin.write(json.dumps({"event": event, "context": {"request_id": request_id, "deadline_ms": deadline_ms}}) + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            self.kill()
            return exited
        reply = self._read(deadline=time.monotonic() + timeout)
        if reply is None:
            self.kill()
            return exited
        if reply.get("timeout"):
            self.kill()
            return {"error": {"errorType": "Sandbox.Timedout", "errorMessage": f"Task timed out after {timeout:.2f} seconds", "stackTrace": []}}
        if "protocol_error" in reply:
            self.kill()
            return {"error": {"errorType": "Runtime.InvalidResponse", "errorMessage": reply["protocol_error"], "stackTrace": []}}
        return reply

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=5)


class FunctionPool:
    def __init__(self, functions: dict[str, Function], base_env: dict[str, str], log_dir: Path, max_concurrency: int = 32,
                 overrides: dict[str, str] | None = None) -> None:
        self.functions = functions
        self.by_name = {key: f for f in functions.values() for key in (f.logical_id, f.name, f.arn)}
        self.base_env = base_env
        self.overrides = overrides or {}  # local knobs applied over the template (e.g. shorter timeouts for chaos)
        self.log_dir = log_dir
        self.max_concurrency = max_concurrency
        self._idle: dict[str, list[Worker]] = {f.logical_id: [] for f in functions.values()}
        self._slots = {f.logical_id: threading.Semaphore(max_concurrency) for f in functions.values()}
        self._all: list[Worker] = []
        self._lock = threading.Lock()
        log_dir.mkdir(parents=True, exist_ok=True)
        self._logs = {f.logical_id: open(log_dir / f"{f.logical_id}.log", "a", encoding="utf-8", buffering=1) for f in functions.values()}

    def environment(self, function: Function) -> dict[str, str]:
        """What Lambda sets, then the template's variables, then the endpoints
        that point boto3 at the local AWS emulation."""
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "TZ": ":UTC",
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_LAMBDA_FUNCTION_NAME": function.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{function.name}",
            "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
            "LAMBDA_TASK_ROOT": str(function.code_dir),
            "HARPOON_LOCAL_FUNCTION_ARN": function.arn,
            "_HANDLER": function.handler,
            "PYTHONPATH": os.pathsep.join([str(function.code_dir), *(str(d) for d in function.layer_dirs)]),
            **self.base_env,
            **function.environment,
            **self.overrides,
        }
        return env

    def warm_up(self, per_function: int = 1) -> None:
        """Start workers now (init errors show at start-up; a load test does
        not measure cold starts it did not mean to)."""
        from concurrent.futures import ThreadPoolExecutor

        jobs = [f for f in self.functions.values() for _ in range(per_function)]
        with ThreadPoolExecutor(max_workers=4) as pool:
            workers = list(pool.map(self._start, jobs))
        for function, worker in zip(jobs, workers):
            self._release(function, worker)

    def _start(self, function: Function) -> Worker:
        worker = Worker(function, self.environment(function), self._logs[function.logical_id])
        with self._lock:
            self._all.append(worker)
        return worker

    def _acquire(self, function: Function) -> Worker:
        with self._lock:
            idle = self._idle[function.logical_id]
            while idle:
                worker = idle.pop()
                if worker.alive:
                    return worker
        return self._start(function)

    def _release(self, function: Function, worker: Worker) -> None:
        with self._lock:
            if worker.alive:
                self._idle[function.logical_id].append(worker)
            elif worker in self._all:
                self._all.remove(worker)  # dead: drop it and its pipes

    def resolve(self, name_or_arn: str) -> Function:
        key = name_or_arn.split(":$LATEST")[0]
        if key in self.by_name:
            return self.by_name[key]
        raise KeyError(f"no function {name_or_arn!r} in template.yaml")

    def invoke(self, name_or_arn: str, event: object) -> dict:
        """{"ok": result} or {"error": {errorType, errorMessage, stackTrace}}."""
        function = self.resolve(name_or_arn)
        slots = self._slots[function.logical_id]
        if not slots.acquire(blocking=False):  # Lambda throttles rather than queues
            raise Throttled(f"{function.logical_id}: more than {self.max_concurrency} concurrent invocations")
        try:
            worker = self._acquire(function)
            try:
                return worker.invoke(event, str(uuid.uuid4()))
            finally:
                self._release(function, worker)
        finally:
            slots.release()

    def close(self) -> None:
        with self._lock:
            workers, self._all = self._all, []
        for worker in workers:
            try:
                worker.proc.stdin.close()
            except OSError:
                pass
            worker.kill()
        for log in self._logs.values():
            log.close()
