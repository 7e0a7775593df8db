"""Harpoon's admin CLI: tenants and their API keys.

    python -m harpoon.admin [--stack NAME | --table NAME] [--endpoint-url URL] [--profile P] [--region R] \\
        tenants create TENANT --tier free|basic|pro|enterprise [--api-key KEY]
        tenants list
        tenants rotate-key TENANT
        tenants disable TENANT | enable TENANT
        tenants usage TENANT [--month YYYY-MM]

A deployed stack: `--stack <stack name>` finds the tables in its outputs
(credentials from --profile or the environment). The local stack:
`make tenants ARGS="list"`. A key is printed once, when it is made; only its
SHA-256 is stored.
"""

from __future__ import annotations

import argparse
import re
import sys
import time

from harpoon.tenancy import TIERS


def main(argv: list[str] | None = None, out=sys.stdout) -> int:
    args = _parser().parse_args(argv)
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return _run(args, out)
    except (ValueError, LookupError) as exc:  # a bad argument
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (BotoCoreError, ClientError) as exc:  # no credentials, no such table, endpoint down
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace, out) -> int:
    from harpoon.adapters.tenants import TenantError

    session = _session(args)
    try:
        if args.command == "usage":
            return _usage(args, session, out)
        repo = _tenants(args, session)
        if args.command == "create":
            tenant, key = repo.create(args.tenant, args.tier, api_key=args.api_key)
            print(f"created tenant {tenant.tenant_id} (tier {tenant.tier})", file=out)
            print(f"api key (shown once; store it now): {key}", file=out)
        elif args.command == "list":
            rows = [("TENANT", "TIER", "STATUS", "KEY", "CREATED (UTC)")]
            rows += [(t.tenant_id, t.tier, t.status, t.key_hint,
                      time.strftime("%Y-%m-%d %H:%M", time.gmtime(t.created_at))) for t in repo.list()]
            widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
            for row in rows:
                print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip(), file=out)
        elif args.command == "rotate-key":
            key = repo.rotate_key(args.tenant, api_key=args.api_key)
            print(f"new api key for {args.tenant} (shown once; the old key stops working within a minute): {key}",
                  file=out)
        elif args.command in ("disable", "enable"):
            tenant = repo.set_status(args.tenant, "disabled" if args.command == "disable" else "active")
            print(f"tenant {tenant.tenant_id} is {tenant.status} (API keys follow within a minute)", file=out)
    except TenantError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def _usage(args, session, out) -> int:
    from harpoon.adapters.quotas import QuotaRepository, month_of

    table = args.usage_table or _stack_output(session, args.stack, "UsageTableName")
    repo = QuotaRepository(table, session.client("dynamodb", endpoint_url=args.endpoint_url))
    month = args.month or month_of(time.time())
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", month):
        raise ValueError(f"--month must be YYYY-MM, got {month!r}")
    used = repo.usage(args.tenant, month)
    print(f"{args.tenant} in {month}: requests {used.requests}, tokens {used.tokens}, "
          f"GPU-seconds {used.gpu_seconds:.1f}, cost {used.cost_usd:.4f} USD; "
          f"in flight now {repo.in_flight(args.tenant)}", file=out)
    return 0


def _tenants(args, session):
    from harpoon.adapters.tenants import TenantRepository

    table = args.table or _stack_output(session, args.stack, "TenantsTableName")
    return TenantRepository(table, session.client("dynamodb", endpoint_url=args.endpoint_url))


def _session(args):
    import boto3

    return boto3.Session(profile_name=args.profile, region_name=args.region)


def _stack_output(session, stack: str | None, name: str) -> str:
    if not stack:
        raise ValueError("say which tables to use: --stack <deployed stack name>, or --table / --usage-table")
    outputs = session.client("cloudformation").describe_stacks(StackName=stack)["Stacks"][0].get("Outputs", [])
    for output in outputs:
        if output["OutputKey"] == name:
            return output["OutputValue"]
    raise LookupError(f"stack {stack} has no output {name}; is it a Harpoon stack?")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m harpoon.admin", description="Harpoon tenants and API keys.")
    parser.add_argument("--stack", help="a deployed Harpoon stack: tables from its outputs")
    parser.add_argument("--table", help="the TenantsTable's name (instead of --stack)")
    parser.add_argument("--usage-table", help="the UsageTable's name (instead of --stack)")
    parser.add_argument("--endpoint-url", help="DynamoDB endpoint (the local stack: http://127.0.0.1:5000)")
    parser.add_argument("--profile", help="AWS profile")
    parser.add_argument("--region", help="AWS region")
    groups = parser.add_subparsers(dest="group", required=True)
    tenants = groups.add_parser("tenants", help="create, list, rotate-key, disable, enable, usage")
    commands = tenants.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create", help="a new tenant; prints its API key once")
    create.add_argument("tenant", help="tenant id: 1-32 of a-z, 0-9 and '-'")
    create.add_argument("--tier", required=True, choices=list(TIERS))
    create.add_argument("--api-key", help="use this key instead of a random one (scripts, the demo tenant)")
    commands.add_parser("list", help="every tenant, with the start of its key")
    rotate = commands.add_parser("rotate-key", help="a new key; the old one stops working")
    rotate.add_argument("tenant")
    rotate.add_argument("--api-key", help=argparse.SUPPRESS)
    for name in ("disable", "enable"):
        commands.add_parser(name, help=f"{name} the tenant's key").add_argument("tenant")
    usage = commands.add_parser("usage", help="a tenant's requests, tokens, GPU-seconds and cost in a month")
    usage.add_argument("tenant")
    usage.add_argument("--month", help="YYYY-MM (default: this month, UTC)")
    return parser


if __name__ == "__main__":
    sys.exit(main())
