"""Shared fixtures for every test tier."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events"
API_KEY = "test-hostedai-key-0123456789"


def load_event(name: str) -> dict:
    return json.loads((EVENTS / f"{name}.json").read_text())


def load_handler(step: str):
    """Import functions/<step>/handler.py under a unique module name (every
    function's module is called `handler`, as in Lambda)."""
    name = f"harpoon_fn_{step}_handler"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "functions" / step / "handler.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


class FakeContext:
    function_name = "harpoon-test"
    function_version = "$LATEST"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:harpoon-test"
    aws_request_id = "00000000-0000-0000-0000-000000000000"
    log_group_name = "/aws/lambda/harpoon-test"
    log_stream_name = "test"

    def get_remaining_time_in_millis(self) -> int:
        return 10_000


@pytest.fixture
def lambda_context() -> FakeContext:
    return FakeContext()


@pytest.fixture(scope="session")
def emulator_server():
    from local.emulator import run_in_thread

    with run_in_thread(api_key=API_KEY, time_scale=0) as running:
        yield running


@pytest.fixture
def emulator(emulator_server):
    """The HostedAI emulator, reset before and after each test."""
    emulator_server.emulator.reset()
    yield emulator_server
    emulator_server.emulator.reset()


@pytest.fixture
def aws_credentials(monkeypatch):
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)


@pytest.fixture
def harpoon_reset():
    """Forget cached settings, clients and secrets around a test."""
    from harpoon import deps

    def reset():
        deps.reset()
        try:
            from aws_lambda_powertools.utilities import parameters

            parameters.clear_caches()
        except ImportError:
            pass

    reset()
    yield
    reset()


@pytest.fixture
def aws(aws_credentials, harpoon_reset, monkeypatch, emulator):
    """moto (with its Step Functions engine on) holding the template's tables
    and the HostedAI secret, and the environment the template gives the
    functions (union of all of them), pointed at the emulator."""
    from moto import mock_aws

    from local.provision import provision

    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}):
        import boto3

        stack = provision(
            ROOT,
            boto3.client,
            prefix="harpoon-test",
            secret_value=API_KEY,
            # Warm reuse off unless a test turns it on: most tests check that
            # every path gives its GPU back.
            overrides={"WorkflowType": "STANDARD", "HostedAiBaseUrl": emulator.base_url, "WarmIdleSeconds": "0"},
        )
        for function in stack.functions.values():
            for key, value in function.environment.items():
                monkeypatch.setenv(key, value)
        monkeypatch.setenv("SWEEP_ALLOW_HORIZON", "true")  # as the local stack: tests look ahead in time
        yield stack
