"""Least privilege, checked against what the code really calls: every
DynamoDB call each function makes across the request paths (success, warm
reuse, failures, idempotent replay, quotas, the authorizer, the cleanup) is
recorded with the function that made it, then compared with the function's
policy in template.yaml. Every call must be allowed (or it fails in AWS); every
allowed (action, table or index) must have been used, unless listed below
with the path that needs it."""

from __future__ import annotations

import contextvars
import json
import time
from collections import defaultdict
from pathlib import Path

import boto3
import botocore.client
import httpx
import pytest

from local.template import load_yaml
from tests.conftest import load_event, load_handler
from tests.statemachine.conftest import STEPS

ROOT = Path(__file__).resolve().parents[2]
current = contextvars.ContextVar("function", default=None)

# Allowed but not reached by the scenarios below, and why each is needed.
NOT_EXERCISED = {
    # Powertools reads an idempotency record when a conditional put's failure
    # does not carry it (DynamoDB returns it, so this is the fallback).
    "ApiFunction": {("GetItem", "IdempotencyTable", None)},
}

# TransactWriteItems is authorised per item, by the item's own action.
TRANSACT = {"ConditionCheck": "ConditionCheckItem", "Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem"}


@pytest.fixture
def recorded(engine, aws, monkeypatch):
    """(function logical id, action, table logical id, index) of every DynamoDB call, in order."""
    calls: list[tuple] = []
    logical = {table.name: logical_id for logical_id, table in aws.tables.items()}
    real_call = botocore.client.BaseClient._make_api_call

    def record(client, operation, params):
        function = current.get()
        if client.meta.service_model.service_name == "dynamodb" and function is not None:
            if operation == "TransactWriteItems":
                for item in params["TransactItems"]:
                    (kind, spec), = item.items()
                    calls.append((function, TRANSACT[kind], logical[spec["TableName"]], None))
            else:
                calls.append((function, operation, logical[params["TableName"]], params.get("IndexName")))
        return real_call(client, operation, params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", record)
    step_of = {v: k for k, v in STEPS.items()}
    real_invoke = engine.invoke

    def invoke(name, event):
        from harpoon import deps

        # One process hosts every step here; in Lambda each function has its
        # own container, so its own breaker cache.
        deps.breaker.cache_clear()
        token = current.set(step_of[engine.by_arn[name]])
        try:
            return real_invoke(name, event)
        finally:
            current.reset(token)

    engine.invoke = invoke
    return calls


def as_function(logical_id: str, handler: str, event: dict, lambda_context):
    token = current.set(logical_id)
    try:
        return load_handler(handler).lambda_handler(event, lambda_context)
    finally:
        current.reset(token)


def api(lambda_context, text="Hello", *, tenant="acme", tier="pro", key=None) -> dict:
    event = json.loads(json.dumps(load_event("api")))
    event["body"] = json.dumps({"text": text})
    event["requestContext"]["authorizer"] = {"lambda": {"tenant_id": tenant, "tier": tier}}
    if key:
        event["headers"]["idempotency-key"] = key
    return as_function("ApiFunction", "api", event, lambda_context)


def allowed_by_template() -> dict[str, set[tuple]]:
    """Function -> {(action, table, index)} from the inline DynamoDB statements."""
    resources = load_yaml(ROOT / "template.yaml")["Resources"]
    allowed: dict[str, set[tuple]] = defaultdict(set)
    for logical_id, resource in resources.items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        for policy in resource["Properties"].get("Policies", []):
            for statement in policy.get("Statement", []) if isinstance(policy, dict) else []:
                actions = [a.split(":", 1)[1] for a in statement["Action"] if a.startswith("dynamodb:")]
                if actions:
                    table, index = _resource(statement["Resource"])
                    allowed[logical_id].update((action, table, index) for action in actions)
    return allowed


def _resource(resource) -> tuple[str, str | None]:
    if "Fn::GetAtt" in resource:
        return resource["Fn::GetAtt"][0], None
    text = resource["Fn::Sub"]  # ${Table.Arn}/index/Name
    table = text.split("${", 1)[1].split(".", 1)[0]
    return table, text.rsplit("/index/", 1)[1] if "/index/" in text else None


def test_every_dynamodb_call_is_allowed_and_every_permission_is_used(recorded, engine, emulator, lambda_context,
                                                                      monkeypatch, aws):
    from harpoon import deps
    from harpoon.tenancy import quota_for

    # The authorizer, for a known and an unknown key.
    _, key = deps.tenants().create("acme", "pro")
    for presented in (key, "hpn_unknown"):
        event = {**load_event("authorizer"), "headers": {"x-api-key": presented}}
        as_function("AuthorizerFunction", "authorizer", event, lambda_context)
    # Success, in a month after the tenant's last one (whose totals are archived).
    deps.quotas().charge("acme", tokens=1, gpu_seconds=0, cost_usd=0)
    boto3.client("dynamodb").update_item(
        TableName=deps.quotas().table, Key={"pk": {"S": "quota#acme"}}, UpdateExpression="SET #m = :old",
        ExpressionAttributeNames={"#m": "month"}, ExpressionAttributeValues={":old": {"S": "2000-01"}})
    assert api(lambda_context)["statusCode"] == 200
    assert deps.quotas().usage("acme", "2000-01").requests == 1
    # Infer starting late (its lease is due for renewal).
    monkeypatch.setenv("LEASE_RENEW_BELOW_SECONDS", "100000")
    deps.reset()
    assert api(lambda_context)["statusCode"] == 200
    monkeypatch.delenv("LEASE_RENEW_BELOW_SECONDS")
    deps.reset()
    # An idempotent request and its replay.
    assert api(lambda_context, key="k-1")["statusCode"] == api(lambda_context, key="k-1")["statusCode"] == 200
    # An idempotent request that fails (its record is deleted).
    faults = f"{emulator.base_url}/_emulator/faults"
    httpx.post(faults, json={"inference": {"error_rate": 1.0, "status": 500}})
    assert api(lambda_context, key="k-2")["statusCode"] == 502
    httpx.post(faults, json={"inference": {}})
    # Warm reuse: kept warm, then claimed.
    monkeypatch.setenv("WARM_IDLE_SECONDS", "30")
    deps.reset()
    assert api(lambda_context)["statusCode"] == api(lambda_context)["statusCode"] == 200
    # A quota refusal.
    deps.quotas().acquire("tiny", "req-tiny-held", quota_for("free"), hold_seconds=300)
    assert api(lambda_context, tenant="tiny", tier="free")["statusCode"] == 429
    # A slot never given back, past its time: the next acquire takes it back.
    deps.quotas().acquire("lost", "req-lost-held", quota_for("free"), hold_seconds=0)
    assert api(lambda_context, tenant="lost", tier="free")["statusCode"] == 200
    # Async mode: one request finished by a GET (its event not arrived), one
    # by the Complete function, in a month after the tenant's last one.
    from local.execution_events import status_change_event

    def async_request() -> dict:
        event = json.loads(json.dumps(load_event("api")))
        event["body"] = json.dumps({"text": "Hello", "mode": "async"})
        event["requestContext"]["authorizer"] = {"lambda": {"tenant_id": "acme", "tier": "pro"}}
        response = as_function("ApiFunction", "api", event, lambda_context)
        assert response["statusCode"] == 202, response
        request_id = json.loads(response["body"])["request_id"]
        arn = f"{engine.async_arn.replace(':stateMachine:', ':execution:')}:{request_id}"
        for _ in range(1500):
            described = engine.sfn.describe_execution(executionArn=arn)
            if described["status"] != "RUNNING":
                return described
            time.sleep(0.02)
        raise AssertionError("the async execution did not end")

    ended = async_request()
    event = json.loads(json.dumps(load_event("api")))
    path = f"/v2/requests/{ended['name']}"
    event.update(rawPath=path, routeKey=f"GET {path}", body=None)
    event["requestContext"]["http"].update(method="GET", path=path)
    event["requestContext"]["authorizer"] = {"lambda": {"tenant_id": "acme", "tier": "pro"}}
    assert json.loads(as_function("ApiFunction", "api", event, lambda_context)["body"])["status"] == "succeeded"
    ended = async_request()
    boto3.client("dynamodb").update_item(
        TableName=deps.quotas().table, Key={"pk": {"S": "quota#acme"}}, UpdateExpression="SET #m = :old",
        ExpressionAttributeNames={"#m": "month"}, ExpressionAttributeValues={":old": {"S": "2000-02"}})
    assert as_function("CompleteFunction", "complete", status_change_event(ended), lambda_context)["finished_now"]
    # Last, as it opens the breaker: an Allocate retried and failing (the
    # retry finds its lease; Release reads it). Warm reuse off, or the warm
    # GPU would serve it.
    monkeypatch.setenv("WARM_IDLE_SECONDS", "0")
    deps.reset()
    httpx.post(faults, json={"allocate": {"error_rate": 1.0, "status": 500}})
    assert api(lambda_context)["statusCode"] == 502
    httpx.post(faults, json={"allocate": {}})
    # The cleanup: the idle warm GPU is due.
    sweep = {**load_event("cleanup"), "horizon_seconds": 120}
    report = as_function("CleanupFunction", "cleanup", sweep, lambda_context)
    assert report["released"] >= 1

    allowed = allowed_by_template()
    used: dict[str, set[tuple]] = defaultdict(set)
    for function, action, table, index in recorded:
        used[function].add((action, table, index))
    missing = {f: sorted(used[f] - allowed[f]) for f in used if used[f] - allowed[f]}
    assert missing == {}, f"calls the template does not allow: {missing}"
    unused = {f: sorted(allowed[f] - used[f] - NOT_EXERCISED.get(f, set())) for f in allowed
              if allowed[f] - used[f] - NOT_EXERCISED.get(f, set())}
    assert unused == {}, f"permissions no path used: {unused}"


def test_a_happy_request_costs_five_writes_and_one_read(recorded, emulator, lambda_context, monkeypatch, aws):
    """Issue 8's budget, warm reuse off, every container's breaker cache
    cold: the quota's take and give-back, the lease's begin, activate and
    release; the one read is Allocate's breaker check (Infer trusts what
    Allocate saw, fresh). A regression guard on counts, not on time."""
    from harpoon import deps

    monkeypatch.setenv("WARM_IDLE_SECONDS", "0")
    deps.reset()
    assert api(lambda_context)["statusCode"] == 200  # the tenant's first request creates its quota item
    recorded.clear()
    assert api(lambda_context)["statusCode"] == 200
    assert recorded == [
        ("ApiFunction", "UpdateItem", "UsageTable", None),
        ("AllocateFunction", "PutItem", "LeasesTable", None),
        ("AllocateFunction", "GetItem", "BreakersTable", None),
        ("AllocateFunction", "UpdateItem", "LeasesTable", None),
        ("ReleaseFunction", "UpdateItem", "LeasesTable", None),
        ("ApiFunction", "UpdateItem", "UsageTable", None),
    ]
