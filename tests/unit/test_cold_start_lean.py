"""Issue 8 (lean cold starts): what each function's cold init leaves out, and
that the lighter paths behave exactly as the ones they replace.

* The classify step reads its input without pydantic when it is plainly valid
  and otherwise hands it to harpoon.models.ClassifyInput; its output is the
  dict ClassifyOutput dumps to. Both are checked against the pydantic models.
* Each function's cold init (bench/cold_init.py's snippet: import the handler,
  build what its first request builds) loads none of what it does not need.
* Cue patterns compile on first use; HostedAI's httpx client is built on the
  first call.
"""

from __future__ import annotations

import subprocess

import pytest

from bench import cold_init
from harpoon import models
from harpoon.catalog import load_catalog
from harpoon.domain import classify as step
from harpoon.errors import StepInputError

VALID = [
    {"request_id": "r1", "text": "Hello"},
    {"request_id": "r2", "text": "Prove that sqrt(2) is irrational.", "max_tokens": 512, "tenant_id": "acme"},
    {"request_id": "r3", "text": "x", "max_tokens": 1, "model": "gemma-270m", "extra": [1, 2]},
    {"request_id": "r4", "text": "x", "max_tokens": models.MAX_TOKENS_LIMIT, "model": "qwen-30b",
     "requirements": {"min_tflops": 10.0, "min_vram_mb": 4096}},
    {"request_id": "r5", "text": "x", "max_tokens": None, "requirements": None, "allocation": None},
    # Off the fast path, yet valid: pydantic coerces them.
    {"request_id": "r6", "text": "x", "max_tokens": "12"},
    {"request_id": "r7", "text": "x", "max_tokens": 12.0},
    {"request_id": "r8", "text": b"bytes"},
    {"request_id": "r9", "text": "x", "max_tokens": True},
]
INVALID = [
    {"text": "no id"},
    {"request_id": "r", "text": ""},
    {"request_id": "r"},
    {"request_id": 5, "text": "x"},
    {"request_id": "r", "text": "x", "max_tokens": 0},
    {"request_id": "r", "text": "x", "max_tokens": models.MAX_TOKENS_LIMIT + 1},
    {"request_id": "r", "text": "x", "requirements": []},
    {"request_id": "r", "text": "x", "tenant_id": None},
    ["not", "an", "object"],
    None,
]
FIELDS = ("request_id", "tenant_id", "text", "max_tokens", "model", "requirements")


def test_the_fast_path_limit_is_the_models():
    assert step.MAX_TOKENS_LIMIT == models.MAX_TOKENS_LIMIT
    assert set(FIELDS) == set(models.ClassifyInput.model_fields)


@pytest.mark.parametrize("event", VALID, ids=lambda e: e["request_id"])
def test_a_valid_input_reads_as_the_model_reads_it(event):
    fast = step.parse_classify_input(event)
    model = models.ClassifyInput.model_validate(event)
    assert {f: getattr(fast, f) for f in FIELDS} == {f: getattr(model, f) for f in FIELDS}


@pytest.mark.parametrize("event", INVALID, ids=repr)
def test_an_invalid_input_fails_as_the_model_fails(event):
    with pytest.raises(StepInputError) as fast:
        step.parse_classify_input(event)
    with pytest.raises(StepInputError) as model:
        models.parse_step_input(models.ClassifyInput, event)
    assert (str(fast.value), fast.value.details) == (str(model.value), model.value.details)


@pytest.mark.parametrize("event", VALID[:5], ids=lambda e: e["request_id"])
def test_the_output_is_what_classify_output_dumps(event):
    out = step.classify_request(step.parse_classify_input(event), catalog=load_catalog(), threshold=0.5)
    dumped = models.ClassifyOutput.model_validate(out).model_dump(mode="json")
    assert out == dumped
    assert list(out) == list(dumped) and all(list(out[k]) == list(dumped[k]) for k in ("classification", "route"))
    assert [type(v) for v in out.values()] == [type(v) for v in dumped.values()]


def test_an_unknown_model_is_a_step_input_error():
    with pytest.raises(StepInputError, match="unknown model"):
        step.classify_request(step.parse_classify_input({"request_id": "r", "text": "x", "model": "nope"}),
                              catalog=load_catalog(), threshold=0.5)


LAUNCHES = cold_init.launches()
# Loaded by no function's cold init: boto3 (clients are botocore's) and the X-Ray SDK (no tracing).
NEVER = {"boto3", "s3transfer", "aws_xray_sdk"}
NOT_LOADED = {
    # botocore's package (not a session or client) comes with Powertools' user-agent hook.
    "ClassifyFunction": NEVER | {"httpx", "pydantic", "botocore.session", "harpoon.models", "harpoon.adapters.leases"},
    "AuthorizerFunction": NEVER | {"httpx", "pydantic", "harpoon.adapters.leases"},
    "ApiFunction": NEVER | {"httpx", "harpoon.adapters.leases"},
    "AllocateFunction": NEVER,
    "InferFunction": NEVER,
    # The HostedAI HTTP client waits for a call to HostedAI.
    "ReleaseFunction": NEVER | {"httpx"},
    "CleanupFunction": NEVER | {"httpx", "pydantic"},
    "CompleteFunction": NEVER | {"httpx"},
}


def test_every_function_is_checked():
    assert set(NOT_LOADED) == set(LAUNCHES)


@pytest.mark.parametrize("logical_id", sorted(NOT_LOADED))
def test_cold_init_loads_nothing_it_does_not_need(logical_id):
    argv, env, cwd = LAUNCHES[logical_id]
    check = f"\nimport sys\nprint(sorted(m for m in {sorted(NOT_LOADED[logical_id])!r} if m in sys.modules))\n"
    done = subprocess.run([*argv[:-1], argv[-1] + check], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "[]"  # after the snippet's own "ready"


def _run(code: str) -> str:
    done = subprocess.run([LAUNCHES["ClassifyFunction"][0][0], "-c", code], env=LAUNCHES["ClassifyFunction"][1],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_cue_patterns_compile_on_first_use():
    out = _run(
        "import harpoon.classifier as c\n"
        "lazy = [v for v in vars(c).values() if isinstance(v, c._LazyPattern)] + list(c._GATES)\n"
        "compiled = lambda: sum('search' in vars(p) for p in set(lazy))\n"
        "print(compiled(), end=' ')\n"
        "c.classify('Hello')\n"
        "print(compiled(), len(set(lazy)))\n"
    )
    at_import, after_hello, total = map(int, out.split())
    assert at_import == 0 and 0 < after_hello < total / 4


def test_hostedai_builds_its_http_client_on_first_use():
    out = _run(
        "import sys\n"
        "from harpoon.adapters.hostedai import HostedAIClient\n"
        "client = HostedAIClient('http://h', api_key=lambda refresh=False: 'k')\n"
        "print('httpx' in sys.modules, end=' ')\n"
        "http = client.http\n"
        "print('httpx' in sys.modules, client.http is http, str(http.base_url))\n"
    )
    assert out == "False True True http://h"
