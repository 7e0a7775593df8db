"""Tenants over HTTP against the local stack: the admin CLI makes them, the
gateway runs the authorizer, the API refuses or serves, quotas hold under a
burst of concurrent requests."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from datetime import datetime, timezone

import boto3
import httpx
import pytest

from tests.e2e.conftest import ROOT

pytestmark = pytest.mark.e2e


def admin(stack, *args: str) -> str:
    """`python -m harpoon.admin` against the stack's tables; its stdout."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "layers" / "harpoon"), "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    run = subprocess.run(
        [sys.executable, "-m", "harpoon.admin", "--endpoint-url", f"http://127.0.0.1:{stack.aws}",
         "--table", "harpoon-local-TenantsTable", "--usage-table", "harpoon-local-UsageTable", "tenants", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    return run.stdout


def create(stack, tenant: str, tier: str) -> str:
    out = admin(stack, "create", tenant, "--tier", tier)
    assert f"created tenant {tenant} (tier {tier})" in out
    return out.rsplit(": ", 1)[1].strip()


def process(stack, key: str | None, text: str = "Hello", **headers) -> httpx.Response:
    if key is not None:
        headers["x-api-key"] = key
    return httpx.post(f"{stack.url}/v2/process", json={"text": text, "max_tokens": 16}, headers=headers, timeout=60)


def test_health_is_open_and_process_needs_a_key(stack):
    assert httpx.get(f"{stack.url}/health").status_code == 200
    response = process(stack, None)
    assert response.status_code == 401
    assert response.json()["error"]["details"] == {"reason": "missing_api_key"}
    assert response.headers["www-authenticate"] == 'Bearer realm="harpoon"'
    assert process(stack, "hpn_made-up").json()["error"]["details"] == {"reason": "invalid_api_key"}


def test_a_new_tenants_key_works_as_x_api_key_and_as_bearer(stack):
    key = create(stack, "e2e-acme", "basic")
    answer = process(stack, key)
    assert answer.status_code == 200, answer.text
    assert answer.json()["request_id"].startswith("req-e2e-acme-")
    bearer = process(stack, None, Authorization=f"Bearer {key}")
    assert bearer.status_code == 200
    listing = admin(stack, "list")
    assert "e2e-acme" in listing and key not in listing and key[:8] in listing


def test_a_disabled_tenant_and_a_rotated_key_are_refused(stack):
    # Keys never used before the change: the authorizer has nothing cached
    # (a used key follows a change within AUTH_CACHE_SECONDS).
    off = create(stack, "e2e-off", "free")
    admin(stack, "disable", "e2e-off")
    assert process(stack, off).json()["error"]["details"] == {"reason": "tenant_disabled"}
    old = create(stack, "e2e-rot", "free")
    out = admin(stack, "rotate-key", "e2e-rot")
    new = out.rsplit(": ", 1)[1].strip()
    assert process(stack, old).status_code == 401
    assert process(stack, new).status_code == 200


def burst(n: int, call) -> list:
    """n calls released together; their results."""
    results, lock, barrier = [], threading.Lock(), threading.Barrier(n)

    def one():
        barrier.wait()
        try:
            result = call()
        except httpx.HTTPError as exc:  # no answer at all: a result too, for the test to judge
            result = exc
        with lock:
            results.append(result)

    threads = [threading.Thread(target=one) for _ in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


# The local stack runs at most 32 invocations of a function at once (Lambda
# would throttle past its limit too) on this machine's 2 cores: the HTTP burst
# stays under that. 50 concurrent acquires are proven on the quota table
# itself (tests/adapters/test_tenants_and_quotas.py) and through the API
# function (tests/statemachine/test_tenant_isolation.py).
BURST = 30


def test_a_burst_of_concurrent_requests_never_runs_more_than_the_tiers_slots(stack):
    key = create(stack, "e2e-busy", "basic")  # basic: 3 concurrent allocations
    # Start the gateway's workers first, as steady traffic would have: 30
    # cold starts at once on 2 cores would time the authorizer out.
    burst(BURST, lambda: process(stack, "hpn_warm-up-only"))
    stack.faults(inference={"latency_ms": 400, "slow_rate": 1.0})  # requests overlap
    responses = burst(BURST, lambda: process(stack, key))
    stack.faults(inference={})
    statuses = [getattr(r, "status_code", repr(r)) for r in responses]
    assert len(statuses) == BURST
    assert set(statuses) <= {200, 429} and statuses.count(200) >= 3, statuses
    for refused in (r for r in responses if r.status_code == 429):
        details = refused.json()["error"]["details"]
        assert details["limit"] == "concurrent_allocations" and details["limit_value"] == 3
        assert refused.headers["retry-after"] == "1"
    # Zero overshoot, seen from Step Functions: never more than 3 of the
    # tenant's executions running at once.
    sfn = boto3.client("stepfunctions", endpoint_url=f"http://127.0.0.1:{stack.aws}", region_name="us-east-1",
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    machine = sfn.list_state_machines()["stateMachines"][0]["stateMachineArn"]
    runs = [e for e in sfn.list_executions(stateMachineArn=machine, maxResults=1000)["executions"]
            if e["name"].startswith("req-e2e-busy-")]
    assert len(runs) == statuses.count(200)
    assert max_overlap([(e["startDate"], e["stopDate"]) for e in runs]) <= 3
    usage = admin(stack, "usage", "e2e-busy")
    assert f"e2e-busy in {datetime.now(timezone.utc):%Y-%m}: requests {statuses.count(200)}," in usage
    assert usage.rstrip().endswith("in flight now 0")


def max_overlap(spans: list[tuple[datetime, datetime]]) -> int:
    edges = sorted([(start, 1) for start, _ in spans] + [(stop, -1) for _, stop in spans], key=lambda e: (e[0], e[1]))
    running = peak = 0
    for _, step in edges:
        running += step
        peak = max(peak, running)
    return peak
