"""Cold init of each Lambda function, as a multiple of a bare interpreter.

Each function of template.yaml gets a fresh `python -c` process that does what
a Lambda cold start does before its first answer: import the handler module
named by the template (PYTHONPATH = the function's code dir + the layer,
environment = what local/functions.py gives a worker), then build the clients
its first request builds. A bare `python -c pass` is timed just before each
function's process, and rounds are shuffled with a fixed seed, so machine
noise hits both alike. Wall time is perf_counter from the process's start to
its exit (the issue's measure, and its anchors'); "to ready" stops when the
process writes that it is ready, before the interpreter's shutdown, which a
Lambda container never pays between init and its first request (both
columns are in the JSON; the goal is judged on the first).

.pyc-warm: every snippet runs once before timing, so compiled bytecode exists
(as in a deployed layer). Nothing reaches the network: AWS_ENDPOINT_URL points
at an unused local port, credentials are dummies, and building a client does
not connect. Not included: Lambda's own runtime start, and the HostedAI key's
fetch from Secrets Manager (a network call, on the first HostedAI call).
"""

from __future__ import annotations

import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNS = 20
SEED = 8

_IMPORT_HANDLER = "import importlib, os\nimportlib.import_module(os.environ['_HANDLER'].rpartition('.')[0])\n"
_READY = "\nimport sys\nsys.stdout.write('ready\\n')\nsys.stdout.flush()\n"

# What each function's first request builds after the import (its handler's
# calls into harpoon.deps / harpoon.api), and nothing it would send.
FIRST_REQUEST = {
    # DynamoDB client (TenantRepository) and the in-memory key cache.
    "AuthorizerFunction": "from harpoon import deps\ndeps.tenants(); deps.identity_cache()",
    # POST /v2/process: Step Functions client (WorkflowRunner) and DynamoDB client (quota slots).
    "ApiFunction": "from harpoon import deps\nfrom harpoon.api import _runner\n_runner(); deps.quotas()",
    # No client: the classifier is local (the catalog and settings it reads are not clients).
    "ClassifyFunction": "",
    # DynamoDB client (leases, breakers share it), HostedAI httpx client (built by the first
    # HostedAI call: Infer's always makes one, Allocate's unless it claims a warm GPU), circuit breaker.
    "AllocateFunction": "from harpoon import deps\ndeps.leases(); deps.hostedai().http; deps.breaker()",
    "InferFunction": "from harpoon import deps\ndeps.leases(); deps.hostedai().http; deps.breaker()",
    # DynamoDB client (leases). The HostedAI httpx client waits for a call to HostedAI, which
    # a warm release (the success path with warm reuse on) or an idle sweep never makes.
    "ReleaseFunction": "from harpoon import deps\ndeps.leases(); deps.hostedai()",
    "CleanupFunction": "from harpoon import deps\ndeps.leases(); deps.hostedai()",
    # The requests table and the quotas (DynamoDB client, shared).
    "CompleteFunction": "from harpoon import async_requests, deps\nasync_requests.repository(); deps.quotas()",
}
# Issue 8's goals, as multiples of the bare interpreter.
GOALS = {"ClassifyFunction": 6.0}
DEFAULT_GOAL = 25.0

HEADERS = ["function", "median ms", "min ms", "max ms", "bare median ms", "fn/bare", "goal", "status",
           "to ready ms", "to ready fn/bare"]


def snippet(logical_id: str) -> str:
    return _IMPORT_HANDLER + FIRST_REQUEST[logical_id] + _READY


def launches() -> dict[str, tuple[list[str], dict[str, str], Path]]:
    """argv, environment and working directory of each function's cold init."""
    from local.chaos import free_port
    from local.functions import FunctionPool
    from local.template import ACCOUNT, REGION, load_stack

    secret = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:harpoon-bench"
    stack = load_stack(ROOT, overrides={}, prefix="bench", secret_arns={"HostedAiApiKeySecret": secret})
    base_env = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}",
                "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    with tempfile.TemporaryDirectory() as logs:
        pool = FunctionPool({}, base_env, Path(logs))  # no functions: it starts no worker, opens no log
        return {name: ([sys.executable, "-c", snippet(name)], pool.environment(function), function.code_dir)
                for name, function in stack.functions.items()}


def _bare() -> tuple[list[str], dict[str, str], Path]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "TZ": ":UTC"}
    return [sys.executable, "-c", _READY], env, ROOT  # the same interpreter and site-packages, no function


def run_once(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """Seconds of one process, start to exit and start to ready; raises with
    its stderr if it fails."""
    with tempfile.TemporaryFile() as errors:
        started = time.perf_counter()
        process = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=errors)
        line = process.stdout.readline()
        ready = time.perf_counter() - started
        process.stdout.read()
        returncode = process.wait()
        elapsed = time.perf_counter() - started
        process.stdout.close()
        if returncode != 0 or line != b"ready\n":
            errors.seek(0)
            raise RuntimeError(f"{argv[-1]!r} failed ({returncode}):\n{errors.read().decode(errors='replace')}")
    return elapsed, ready


def results(runs: int = RUNS) -> dict:
    """Per function: its timings and the bare timings taken just before each (ms)."""
    launch = launches()
    differ = set(launch) ^ set(FIRST_REQUEST)
    if differ:
        raise KeyError(f"functions of template.yaml and FIRST_REQUEST differ: {sorted(differ)}")
    bare = _bare()
    for spec in [bare, *launch.values()]:
        run_once(*spec)  # warm-up: bytecode compiled and cached, as in a deployed layer
    timings = {name: {"fn": [], "bare": [], "fn_ready": [], "bare_ready": []} for name in launch}
    order, rng = list(launch), random.Random(SEED)
    for _ in range(runs):
        rng.shuffle(order)
        for name in order:
            for kind, spec in (("bare", bare), ("fn", launch[name])):
                elapsed, ready = run_once(*spec)
                timings[name][kind].append(elapsed * 1e3)
                timings[name][f"{kind}_ready"].append(ready * 1e3)
    out = {}
    for name, t in timings.items():
        median, bare_median = statistics.median(t["fn"]), statistics.median(t["bare"])
        goal = GOALS.get(name, DEFAULT_GOAL)
        ready_ratio = statistics.median(t["fn_ready"]) / statistics.median(t["bare_ready"])
        out[name] = {"median_ms": median, "min_ms": min(t["fn"]), "max_ms": max(t["fn"]), "bare_median_ms": bare_median,
                     "ratio": median / bare_median, "goal_ratio": goal, "met": median / bare_median <= goal,
                     "ready_median_ms": statistics.median(t["fn_ready"]), "ready_ratio": ready_ratio,
                     "fn_ms": t["fn"], "bare_ms": t["bare"], "fn_ready_ms": t["fn_ready"],
                     "bare_ready_ms": t["bare_ready"]}
    return {"runs": runs, "seed": SEED, "pyc": "warm", "python": sys.version.split()[0], "functions": out}


def rows(result: dict) -> list[list[object]]:
    return [[name, f"{r['median_ms']:.1f}", f"{r['min_ms']:.1f}", f"{r['max_ms']:.1f}", f"{r['bare_median_ms']:.1f}",
             f"{r['ratio']:.1f}x", f"<= {r['goal_ratio']:g}x", "met" if r["met"] else "missed",
             f"{r['ready_median_ms']:.1f}", f"{r['ready_ratio']:.1f}x"]
            for name, r in result["functions"].items()]


def measure(runs: int = RUNS) -> list[list[object]]:
    return rows(results(runs))
