"""Run one reclaim sweep now, in a running local stack (`make sweep`).

    python -m local.sweep [--api-url http://127.0.0.1:3000] [--horizon SECONDS]

It asks the stack (started with `make local`) to run the CleanupFunction's
schedule at once, with the same scheduled event EventBridge sends, and
prints the sweep's report. `--horizon` also takes leases due within that many
seconds (e.g. to free idle warm GPUs now); never use it while requests run.
"""

from __future__ import annotations

import argparse
import json
import sys

import httpx


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the cleanup sweep of a running local stack now.")
    parser.add_argument("--api-url", default="http://127.0.0.1:3000")
    parser.add_argument("--function", default="CleanupFunction")
    parser.add_argument("--horizon", type=float, default=0.0, help="also take leases due within this many seconds")
    args = parser.parse_args(argv)
    body = {"horizon_seconds": args.horizon} if args.horizon else {}
    try:
        reply = httpx.post(f"{args.api_url.rstrip('/')}/_local/schedules/{args.function}", json=body, timeout=300)
    except httpx.TransportError as exc:
        print(f"sweep: no local stack at {args.api_url} ({exc}); start one with `make local`", file=sys.stderr)
        return 2
    print(json.dumps(reply.json(), indent=2))
    return 0 if reply.status_code == 200 else 1


if __name__ == "__main__":
    sys.exit(main())
