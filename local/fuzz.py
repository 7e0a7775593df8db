"""`make fuzz`: schemathesis against a local stack this command starts itself.

The stack runs as `python -m local` on free ports (schedules off, HostedAI
emulator latency 0) with a known demo API key. schemathesis reads the stack's
own GET /openapi.json, sends the key in x-api-key and generates requests
(valid and invalid) for every operation, checking `not_a_server_error`. A
few bodies schemathesis never generates (deep nesting, lone surrogates, other
encodings) follow. Its HAR report and those answers are then counted: at the
end one summary (requests, status codes, server errors). Exit status 1 on any 5xx, on a schemathesis failure,
or when fewer than --min-requests requests were made.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx

from local.chaos import free_port

ROOT = Path(__file__).resolve().parent.parent
DEMO_KEY = "hpn_fuzz-demo-tenant-key-0123456789"  # HARPOON_DEMO_API_KEY of the stack under test
# Bodies hypothesis does not make (its text has no lone surrogates, its JSON is
# shallow), each sent once to POST /v2/process, to be answered without a 5xx.
EDGE_BODIES = [
    b"[" * 100_000,
    b'{"a":' * 30_000,
    b'{"text": "hi", "requirements": ' + b"[" * 33 + b"]" * 33 + b"}",
    rb'{"text": "\ud800"}',
    b'{"text": "hi\xed\xa0\x80"}',  # a surrogate encoded as if UTF-8
    '{"text": "h\u00e9", "max_tokens": 1}'.encode("utf-16"),  # valid: a 200
    b"\xff\xfe\xfd",
    b'{"text": "hi", "max_tokens": ' + b"9" * 5000 + b"}",
    b'{"text": "hi", "requirements": {"min_tflops": NaN, "min_vram_mb": 1e999}}',
    b'{"text": "' + b'\\"' * 100_000,  # an unterminated string of escaped quotes (once a quadratic scan)
]


def start_stack(workdir: Path) -> tuple[subprocess.Popen, str]:
    """`python -m local` on free ports; its output goes to workdir/stack.log."""
    api, aws, emulator = free_port(), free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}  # never a real account
    env["HARPOON_DEMO_API_KEY"] = DEMO_KEY
    log_path = workdir / "stack.log"
    with open(log_path, "w") as log:  # the child keeps its own handle
        proc = subprocess.Popen(
            [sys.executable, "-m", "local", "--api-port", str(api), "--aws-port", str(aws), "--emulator-port",
             str(emulator), "--log-dir", str(workdir / "logs"), "--schedule-interval", "0", "--time-scale", "0"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, text=True,
        )
    deadline = time.monotonic() + 120
    while "is up" not in log_path.read_text():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise SystemExit(f"fuzz: the local stack did not start; see {log_path}")
        time.sleep(0.2)
    return proc, f"http://127.0.0.1:{api}"


def stop_stack(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGINT)  # as Ctrl-C: the stack stops its servers and workers
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


def run_schemathesis(url: str, har: Path, args: argparse.Namespace) -> int:
    command = [
        sys.executable, "-m", "schemathesis.cli", "run", f"{url}/openapi.json",
        "--checks", "not_a_server_error",
        "--header", f"x-api-key: {DEMO_KEY}",
        "--max-examples", str(args.max_examples),
        "--workers", str(args.workers),
        # As long as the API function waits (25 s) plus its answer: a slow answer from the
        # loaded local stack is not a network error.
        "--request-timeout", "30",
        "--continue-on-failure",
        "--generation-database", "none",  # no .hypothesis/ left in the work tree
        "--report", "har", "--report-har-path", str(har),
        "--no-color",
    ]
    if args.seed is not None:
        command += ["--seed", str(args.seed)]
    # Run inside the work dir: schemathesis keeps its cache (.schemathesis/) in the current directory.
    return subprocess.call(command, cwd=har.parent)


def send_edge_bodies(url: str) -> Counter:
    with httpx.Client(base_url=url, timeout=60,
                      headers={"x-api-key": DEMO_KEY, "content-type": "application/json"}) as http:
        return Counter(http.post("/v2/process", content=body).status_code for body in EDGE_BODIES)


def summarize(har: Path) -> tuple[int, Counter]:
    entries = json.loads(har.read_text())["log"]["entries"]
    return len(entries), Counter(entry["response"]["status"] for entry in entries)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-examples", type=int, default=1000, help="test cases per operation and phase")
    parser.add_argument("--min-requests", type=int, default=1000, help="fail if fewer requests were generated")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=None, help="schemathesis seed, to repeat a run")
    parser.add_argument("--workdir", type=Path, default=ROOT / ".local" / "fuzz")
    args = parser.parse_args(argv)

    shutil.rmtree(args.workdir, ignore_errors=True)
    args.workdir.mkdir(parents=True)
    har = args.workdir / "fuzz.har"
    print("fuzz: starting the local stack ...", flush=True)
    proc, url = start_stack(args.workdir)
    try:
        code = run_schemathesis(url, har, args)
        edge = send_edge_bodies(url)
    finally:
        stop_stack(proc)

    if not har.exists():
        print(f"fuzz: schemathesis wrote no report (exit {code})")
        return 1
    total, statuses = summarize(har)
    total, statuses = total + sum(edge.values()), statuses + edge
    server_errors = sum(n for status, n in statuses.items() if status >= 500)
    print(f"\nfuzz summary ({url}, report {har.relative_to(ROOT) if har.is_relative_to(ROOT) else har})")
    print(f"  requests generated  {total} (schemathesis {total - len(EDGE_BODIES)}, edge bodies {len(EDGE_BODIES)})")
    print("  status codes        " + ", ".join(f"{status}: {n}" for status, n in sorted(statuses.items())))
    print(f"  server errors (5xx) {server_errors}")
    print(f"  schemathesis exit   {code}")
    if total < args.min_requests:
        print(f"fuzz: only {total} requests, fewer than {args.min_requests}; raise --max-examples")
        return 1
    return 0 if code == 0 and server_errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
