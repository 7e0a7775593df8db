"""template.yaml and the ASL: what deploys must be valid and consistent."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from harpoon import errors
from harpoon.adapters.leases import LeasePolicy
from local.template import load_yaml

ROOT = Path(__file__).resolve().parents[2]
ASL_PATH = ROOT / "statemachine" / "harpoon.asl.json"
SAM = ROOT / ".venv-sam" / "bin" / "sam"
ASL_VALIDATOR = ROOT / "node_modules" / ".bin" / "asl-validator"
TEMPLATE = load_yaml(ROOT / "template.yaml")
RESOURCES = TEMPLATE["Resources"]
PARAMETERS = TEMPLATE["Parameters"]
GLOBAL_ENV = TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]
ASL = json.loads(ASL_PATH.read_text())
STATES = ASL["States"]
TASKS = {name: s for name, s in STATES.items() if s["Type"] == "Task"}
SAM_ENV = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1", "SAM_CLI_TELEMETRY": "0"}


def tool(path: Path) -> str:
    if not path.exists():
        pytest.fail(f"{path.relative_to(ROOT)} is missing: run `make install` (make test does it)")
    return str(path)


def test_sam_validate_lint_is_clean():
    run = subprocess.run([tool(SAM), "validate", "--lint"], cwd=ROOT, env=SAM_ENV, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "is a valid SAM Template" in run.stdout + run.stderr


def test_asl_validator_accepts_the_definition():
    run = subprocess.run([tool(ASL_VALIDATOR), "--json-path", str(ASL_PATH)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr


@pytest.mark.slow
def test_sam_build_makes_an_arm64_python313_layer(tmp_path):
    build = tmp_path / "build"
    run = subprocess.run([tool(SAM), "build", "--build-dir", str(build), "--cache-dir", str(tmp_path / "cache")],
                         cwd=ROOT, env=SAM_ENV, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    layer = build / "HarpoonLayer" / "python"
    for data in ("catalog.json", "router_weights.json", "api.py"):
        assert (layer / "harpoon" / data).exists(), data
    native = [p.name for p in layer.rglob("*.so")]
    assert native and all("cpython-313-aarch64-linux-gnu" in name for name in native), native
    for function in ("ApiFunction", "ClassifyFunction", "AllocateFunction", "InferFunction", "ReleaseFunction"):
        assert sorted(p.name for p in (build / function).iterdir()) == ["handler.py"]
    shutil.rmtree(build)


def test_globals_target_python313_arm64_with_tracing():
    function_globals = TEMPLATE["Globals"]["Function"]
    assert function_globals["Runtime"] == "python3.13"
    assert function_globals["Architectures"] == ["arm64"]
    assert function_globals["Tracing"] == "Active"
    assert function_globals["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"] == "harpoon"


def test_state_machine_type_is_a_parameter_defaulting_to_express():
    machine = RESOURCES["RequestStateMachine"]["Properties"]
    assert machine["Type"] == {"Ref": "WorkflowType"}
    assert TEMPLATE["Parameters"]["WorkflowType"]["Default"] == "EXPRESS"
    assert machine["Logging"]["Level"] == "ALL" and machine["Tracing"]["Enabled"] is True


def test_no_hard_coded_resource_names():
    for name, resource in RESOURCES.items():
        props = resource.get("Properties", {})
        for key in ("TableName", "FunctionName", "LogGroupName", "Name", "StateMachineName", "LayerName"):
            assert key not in props, f"{name} hard-codes {key}"


def test_the_api_key_is_only_a_secret_reference():
    for name, resource in RESOURCES.items():
        env = resource.get("Properties", {}).get("Environment", {}).get("Variables", {})
        for key, value in env.items():
            assert "API_KEY" not in key, f"{name}: {key} looks like a plain credential"
        if "HOSTED_AI_SECRET_ARN" in env:
            assert env["HOSTED_AI_SECRET_ARN"] == {"Ref": "HostedAiApiKeySecret"}
    assert "SecretString" not in RESOURCES["HostedAiApiKeySecret"]["Properties"]


def test_every_asl_placeholder_has_a_substitution_and_back():
    placeholders = set(re.findall(r"\$\{(\w+)\}", ASL_PATH.read_text()))
    substitutions = set(RESOURCES["RequestStateMachine"]["Properties"]["DefinitionSubstitutions"])
    assert placeholders == substitutions


def _error_names():
    for name, state in STATES.items():
        for block in state.get("Retry", []) + state.get("Catch", []):
            for error in block["ErrorEquals"]:
                yield name, error


def test_every_error_name_in_the_asl_is_an_error_class():
    for state, error in _error_names():
        if error.startswith(("States.", "Lambda.", "Runtime.")) or error == "Sandbox.Timedout":  # AWS's own names
            continue
        cls = getattr(errors, error, None)
        assert isinstance(cls, type) and issubclass(cls, errors.HarpoonError), f"{state}: {error} is not in harpoon.errors"
    for name, state in STATES.items():
        if state["Type"] == "Fail" and "Error" in state:
            assert issubclass(getattr(errors, state["Error"]), errors.HarpoonError), name


def test_retries_only_on_transient_errors_with_capped_jittered_backoff():
    transient = {cls.__name__ for cls in errors.TRANSIENT_ERRORS}
    lambda_service = {"Lambda.ServiceException", "Lambda.AWSLambdaException", "Lambda.SdkClientException",
                      "Lambda.TooManyRequestsException", "Runtime.ExitError"}
    # Release is idempotent, so a timed-out attempt may be repeated; no other step's may.
    timeouts = {"States.Timeout", "Sandbox.Timedout"}
    for name, state in TASKS.items():
        assert state.get("Retry"), f"{name} has no Retry"
        allowed = transient | lambda_service | (timeouts if name.startswith("Release") else set())
        for retrier in state["Retry"]:
            assert set(retrier["ErrorEquals"]) <= allowed, f"{name} retries {retrier['ErrorEquals']}"
            assert retrier["JitterStrategy"] == "FULL" and retrier["MaxDelaySeconds"] >= retrier["IntervalSeconds"]
            assert retrier["BackoffRate"] > 1
    for name in ("Allocate", "Infer", "Release", "ReleaseAfterFailure"):
        retried = {e for r in TASKS[name]["Retry"] for e in r["ErrorEquals"]}
        assert transient - {"NoCapacityError"} <= retried, f"{name} does not retry every transient upstream error"


def test_every_path_after_allocate_passes_through_release():
    for name in ("Allocate", "Infer"):
        catches = TASKS[name]["Catch"]
        assert [c["ErrorEquals"] for c in catches] == [["States.ALL"]]
        assert catches[0]["Next"] == "ReleaseAfterFailure" and catches[0]["ResultPath"] == "$.error"
    assert TASKS["Infer"]["Next"] == "Release"
    success, failure = (json.loads(json.dumps(TASKS[name]["Parameters"])) for name in ("Release", "ReleaseAfterFailure"))
    # Only a clean run may keep its GPU warm; otherwise the same call.
    assert success["Payload"].pop("keep_warm") is True and "keep_warm" not in failure["Payload"]
    assert success == failure and success["FunctionName"] == "${ReleaseFunctionArn}"


def waits(retrier):
    return sum(min(retrier["IntervalSeconds"] * retrier["BackoffRate"] ** i, retrier["MaxDelaySeconds"])
               for i in range(retrier["MaxAttempts"]))


def worst(name):
    """Every retrier of the Task exhausted: each upstream try lasting the
    whole Task timeout, each Lambda service error (these fail fast: the
    Invoke API refuses) costing 1 s, plus all the backoff waits."""
    total = TASKS[name]["TimeoutSeconds"]
    for retrier in TASKS[name]["Retry"]:
        per_try = 1 if retrier["ErrorEquals"][0].startswith("Lambda.") else TASKS[name]["TimeoutSeconds"]
        total += retrier["MaxAttempts"] * per_try + waits(retrier)
    return total


def longest_wait(name):
    return max(r["MaxDelaySeconds"] for r in TASKS[name]["Retry"])


def test_a_lease_outlives_everything_its_execution_may_still_do_between_renewals():
    """An ACTIVE lease is renewed by Allocate (activate) and by every Infer
    attempt that finds it due. From one renewal, the execution may run an Infer attempt, wait
    for the next one (which renews again), or go on to Release with all its
    retries: the lease TTL must cover the longest of these, or the sweep could
    reclaim a GPU that is still in use."""
    ttl = int(PARAMETERS["LeaseTtlSeconds"]["Default"])
    after_infer_starts = TASKS["Infer"]["TimeoutSeconds"] + max(
        longest_wait("Infer"), max(worst("Release"), worst("ReleaseAfterFailure")))
    assert ttl >= after_infer_starts and ttl >= worst("ReleaseAfterFailure"), (ttl, after_infer_starts)
    assert int(PARAMETERS["LeaseTtlSeconds"]["MinValue"]) >= after_infer_starts
    # Infer skips the renewal only with more than that left, plus clock skew
    # between it and the sweep; a first attempt soon after Allocate can skip it.
    renew_below = int(RESOURCES["InferFunction"]["Properties"]["Environment"]["Variables"]["LEASE_RENEW_BELOW_SECONDS"])
    assert renew_below >= after_infer_starts + 6 and ttl >= renew_below + 5, (renew_below, after_infer_starts, ttl)
    # A claimed warm GPU must outlive the rest of the longest request after
    # Allocate (Infer with all its retries, then Release with all of its own).
    rest_of_request = worst("Infer") + max(worst("Release"), worst("ReleaseAfterFailure"))
    assert LeasePolicy(lease_ttl_seconds=int(PARAMETERS["LeaseTtlSeconds"]["MinValue"])).warm_margin_seconds >= rest_of_request
    # A PENDING lease is due `RECONCILE_AFTER_SECONDS` after its last write; each
    # Allocate attempt writes before it calls HostedAI, so it must outlast one
    # attempt and the wait before the next.
    reconcile = int(GLOBAL_ENV["RECONCILE_AFTER_SECONDS"])
    assert reconcile >= TASKS["Allocate"]["TimeoutSeconds"] + longest_wait("Allocate")


def test_timeouts_on_every_task_cover_the_function_and_fit_the_machine():
    function_of = {"Classify": "ClassifyFunction", "Allocate": "AllocateFunction", "Infer": "InferFunction",
                   "Release": "ReleaseFunction", "ReleaseAfterFailure": "ReleaseFunction"}
    for name, state in TASKS.items():
        function_timeout = RESOURCES[function_of[name]]["Properties"]["Timeout"]
        assert state["TimeoutSeconds"] >= function_timeout, f"{name}: Task times out before its function"

    longest_path = worst("Classify") + worst("Allocate") + worst("Infer") + max(worst("Release"), worst("ReleaseAfterFailure"))
    # A machine timeout would skip Release: it must not come before the longest path ends,
    # and EXPRESS executions cannot run past 300 s.
    assert longest_path <= ASL["TimeoutSeconds"] <= 300, longest_path
