"""One request id, followed through the local stack: the answer's
X-Request-Id, the gateway's request line, and every log line of every
function invocation that worked on the request."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.e2e

STEPS = {"ApiFunction", "ClassifyFunction", "AllocateFunction", "InferFunction", "ReleaseFunction"}


def log_lines(stack) -> list[dict]:
    lines = []
    for path in sorted(stack.log_dir.glob("*.log")):
        for text in path.read_text(encoding="utf-8", errors="replace").splitlines():
            if text.startswith("{") and '"level"' in text:
                lines.append({**json.loads(text), "_file": path.stem})
    return lines


def test_one_request_id_runs_through_every_log_line_of_its_request(stack, client):
    response = client.post("/v2/process", json={"text": "Prove that 17 is prime, step by step.", "max_tokens": 16})
    assert response.status_code == 200
    request_id = response.json()["request_id"]
    assert response.headers["x-request-id"] == request_id
    lines = log_lines(stack)
    # The invocations that worked on it: any whose lines name it.
    invocations = {line["function_request_id"] for line in lines if line.get("request_id") == request_id}
    ours = [line for line in lines if line.get("function_request_id") in invocations]
    assert {line["_file"] for line in ours} == STEPS  # the API and every step
    # Every line those invocations wrote carries the id (and the tenant).
    assert all(line.get("request_id") == request_id for line in ours), [
        line for line in ours if line.get("request_id") != request_id]
    assert {line.get("tenant_id") for line in ours} == {"demo"}
    # The EMF metric lines name it too, in metadata: classify 1, allocate 2,
    # infer 2, the API's GPU-seconds and cost 2.
    metrics = [json.loads(line)["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"]
               for path in stack.log_dir.glob("*.log") for line in path.read_text().splitlines()
               if '"_aws"' in line and request_id in line]
    assert sorted(metrics) == ["AllocationLatency", "Allocations", "Classifications", "GpuCost", "GpuSeconds",
                               "InferenceLatency", "TokensGenerated"]
