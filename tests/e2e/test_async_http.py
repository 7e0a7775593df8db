"""Async mode over HTTP against the local stack (issue 9): 202, then the
result at the status URL; the local stack delivers Step Functions'
status-change event to the Complete function as EventBridge would."""

from __future__ import annotations

import time

import httpx
import pytest

pytestmark = pytest.mark.e2e


def test_an_async_request_is_accepted_then_fetched(stack):
    headers = {"x-api-key": stack.api_key, "prefer": "respond-async"}
    response = httpx.post(f"{stack.url}/v2/process", json={"text": "Hello", "max_tokens": 16}, headers=headers,
                          timeout=60)
    assert response.status_code == 202, response.text
    accepted = response.json()
    assert response.headers["location"] == accepted["status_url"] and accepted["status"] == "running"
    deadline = time.monotonic() + 60
    while True:
        status = httpx.get(f"{stack.url}{accepted['status_url']}", headers={"x-api-key": stack.api_key}, timeout=60)
        assert status.status_code == 200, status.text
        if status.json()["status"] != "running" or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    body = status.json()
    assert body["status"] == "succeeded" and body["result"]["inference"]["text"]
    assert body["result"]["request_id"] == accepted["request_id"]
    # The Complete function finished it (the event was delivered), not only the GET.
    deadline = time.monotonic() + 10
    while "async request finished" not in _complete_log(stack) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert accepted["request_id"] in _complete_log(stack)
    other = httpx.get(f"{stack.url}{accepted['status_url']}", headers={"x-api-key": "hpn_not-a-key-of-anyone"})
    assert other.status_code == 401


def _complete_log(stack) -> str:
    logs = [p for p in stack.log_dir.glob("*") if "Complete" in p.name]
    return "".join(p.read_text(errors="replace") for p in logs)
