"""Tests of the HostedAI emulator (local/emulator.py), over real HTTP with httpx."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:  # the test runs without an installed package
    sys.path.insert(0, str(REPO_ROOT))

from local.emulator import HostedAIEmulator, generate_words, run_in_thread  # noqa: E402

API_KEY = "test-key-5f3a9c"
POOL = "gpu-pool-1"
ONE_L4 = [{"id": "gpu-l4-0", "name": "l4-24gb", "vram_mb": 24576, "tflops": 30.0}]


class FakeClock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def emu():
    with run_in_thread(api_key=API_KEY, time_scale=0) as running:
        yield running


@pytest.fixture
def client(emu):
    with httpx.Client(base_url=emu.base_url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=5) as c:
        yield c


def make_client(running) -> httpx.Client:
    return httpx.Client(base_url=running.base_url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=5)


def alloc_body(vram=20480, tflops=30.0, *, max_vram="same", preemptible=False, duration=300, pool=POOL, **extra):
    requirements = {"min_tflops": tflops, "min_vram_mb": vram}
    if max_vram == "same":
        requirements["max_vram_mb"] = vram
    elif max_vram is not None:
        requirements["max_vram_mb"] = max_vram
    body = {
        "pool_id": pool,
        "requirements": requirements,
        "duration_seconds": duration,
        "preemptible": preemptible,
        "metadata": {"request_id": "r-1"},
    }
    body.update(extra)
    return body


def allocate(client, key=None, **kwargs) -> httpx.Response:
    headers = {"Idempotency-Key": key} if key else {}
    return client.post("/v1/allocate", json=alloc_body(**kwargs), headers=headers)


def infer(client, allocation_id, prompt="Explain tides to a child.", model="gemma-270m", **params):
    body = {"allocation_id": allocation_id, "model": model, "prompt": prompt, "parameters": params}
    return client.post("/v1/inference", json=body)


def assert_error(response: httpx.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code
    assert isinstance(body["error"], str) and body["error"]
    assert isinstance(body["details"], dict)
    return body


# --- basics ----------------------------------------------------------------------


def test_health_needs_no_auth(emu):
    r = httpx.get(f"{emu.base_url}/health")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}
    assert r.headers["content-length"] == str(len(r.content))


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong-key"}, {"Authorization": API_KEY}, {"Authorization": f"Basic {API_KEY}"}],
    ids=["missing", "wrong-key", "no-scheme", "basic"],
)
def test_v1_requires_bearer_key(emu, headers):
    with httpx.Client(base_url=emu.base_url, headers=headers) as c:
        for r in (
            c.post("/v1/allocate", json=alloc_body()),
            c.post("/v1/inference", json={"allocation_id": "x", "model": "m", "prompt": "p"}),
            c.delete("/v1/allocate/alloc-x"),
        ):
            body = assert_error(r, 401, "unauthorized")
            assert API_KEY not in r.text and API_KEY not in str(body)
    assert emu.emulator.list_allocations() == []


def test_unknown_route_and_method(client):
    assert_error(client.get("/v1/nothing"), 404, "not_found")
    r = client.get("/v1/allocate")
    assert_error(r, 405, "method_not_allowed")
    assert r.headers["allow"] == "POST"


def test_allocate_infer_release_lifecycle(client):
    r = allocate(client)
    assert r.status_code == 201
    alloc = r.json()
    assert set(alloc) == {"allocation_id", "assigned_gpu", "status", "expires_at", "pool_id", "vram_mb", "preemptible"}
    assert alloc["status"] == "active"
    assert alloc["assigned_gpu"] == "gpu-l4-0"  # best fit: the smallest GPU that fits
    assert alloc["pool_id"] == POOL and alloc["vram_mb"] == 20480 and alloc["preemptible"] is False
    assert alloc["expires_at"].endswith("Z") and "T" in alloc["expires_at"]

    listed = client.get("/_emulator/allocations").json()["allocations"]
    assert [a["allocation_id"] for a in listed] == [alloc["allocation_id"]]
    assert listed[0]["metadata"] == {"request_id": "r-1"}
    assert {"created_at", "expires_at", "assigned_gpu", "vram_mb", "preemptible", "pool_id"} <= set(listed[0])

    r = infer(client, alloc["allocation_id"], max_tokens=64, temperature=0.7, top_p=0.9)
    assert r.status_code == 200, r.text
    out = r.json()
    assert set(out) == {"text", "tokens_used", "duration_ms", "model_used"}
    assert out["model_used"] == "gemma-270m"
    assert out["text"].startswith("[gemma-270m] ")
    assert 16 <= out["tokens_used"] <= 64
    assert len(out["text"].split()) == out["tokens_used"] + 1
    assert out["duration_ms"] > 0

    r = client.delete(f"/v1/allocate/{alloc['allocation_id']}")
    assert r.status_code == 204 and r.content == b""
    assert client.get("/_emulator/allocations").json() == {"allocations": []}


def test_keep_alive_connection_is_reused(client):
    for _ in range(5):
        r = client.get("/health")
        assert r.headers.get("connection", "").lower() != "close"
        assert r.headers["content-length"] == str(len(r.content))
    assert client.get("/_emulator/stats").status_code == 200


# --- idempotency --------------------------------------------------------------------


def test_idempotent_replay_returns_same_allocation(client, emu):
    first = allocate(client, key="req-123")
    assert first.status_code == 201
    # Metadata is not part of the idempotency fingerprint.
    body = alloc_body()
    body["metadata"] = {"other": True}
    replay = client.post("/v1/allocate", json=body, headers={"Idempotency-Key": "req-123"})
    assert replay.status_code == 200
    assert replay.json() == first.json()
    assert len(emu.emulator.list_allocations()) == 1

    # The replay reports the allocation as it is now.
    assert client.delete(f"/v1/allocate/{first.json()['allocation_id']}").status_code == 204
    again = allocate(client, key="req-123")
    assert again.status_code == 200
    assert again.json()["allocation_id"] == first.json()["allocation_id"]
    assert again.json()["status"] == "released"
    assert emu.emulator.list_allocations() == []


def test_idempotency_mismatch_and_bad_key(client):
    assert allocate(client, key="req-1").status_code == 201
    body = assert_error(allocate(client, key="req-1", vram=2048), 409, "idempotency_mismatch")
    assert body["details"]["allocation_id"]
    assert_error(allocate(client, key="req-1", preemptible=True), 409, "idempotency_mismatch")
    assert_error(allocate(client, key="req-1", duration=60), 409, "idempotency_mismatch")
    assert_error(allocate(client, key="k" * 65), 400, "invalid_idempotency_key")
    assert allocate(client, key="k" * 64).status_code == 201
    # Without a key every call is a new allocation.
    a, b = allocate(client, vram=2048), allocate(client, vram=2048)
    assert a.json()["allocation_id"] != b.json()["allocation_id"]


# --- capacity -------------------------------------------------------------------------


def test_capacity_exhaustion_and_reuse():
    with run_in_thread(api_key=API_KEY, time_scale=0, gpus=ONE_L4) as running, make_client(running) as c:
        first = allocate(c)
        assert first.status_code == 201
        r = allocate(c)
        assert_error(r, 503, "no_capacity")
        assert r.headers["retry-after"] == "1"
        assert c.delete(f"/v1/allocate/{first.json()['allocation_id']}").status_code == 204
        assert allocate(c).status_code == 201


def test_best_fit_fills_small_gpus_before_large(client):
    gpus = [allocate(client).json()["assigned_gpu"] for _ in range(5)]
    assert sorted(gpus[:4]) == ["gpu-l4-0", "gpu-l4-1", "gpu-l4-2", "gpu-l4-3"]
    assert gpus[4].startswith("gpu-a100-")
    # A small request packs onto the fullest A100 rather than an empty one.
    small = allocate(client, vram=40960).json()
    assert small["assigned_gpu"] == gpus[4]


def test_preemptible_overcommit_allows_more():
    with run_in_thread(api_key=API_KEY, time_scale=0, gpus=ONE_L4) as running, make_client(running) as c:
        statuses = [allocate(c, vram=12288).status_code for _ in range(3)]
        assert statuses == [201, 201, 503]

        running.emulator.reset()
        # Preemptible reserves min_vram_mb (max_vram_mb is ignored) on 2x VRAM.
        statuses = [allocate(c, vram=12288, max_vram=24576, preemptible=True).status_code for _ in range(5)]
        assert statuses == [201, 201, 201, 201, 503]
        assert all(a["vram_mb"] == 12288 for a in running.emulator.list_allocations())
        # The GPU is overcommitted: non-preemptible work does not fit now.
        assert_error(allocate(c, vram=2048), 503, "no_capacity")


def test_unsatisfiable_requirements_and_unknown_pool(client):
    assert_error(allocate(client, vram=2048, tflops=500.0), 422, "requirements_unsatisfiable")
    assert_error(allocate(client, vram=200_000), 422, "requirements_unsatisfiable")
    assert_error(allocate(client, pool="gpu-pool-9"), 404, "pool_not_found")


# --- inference --------------------------------------------------------------------------


def test_text_is_deterministic_and_never_echoes_input(client):
    alloc_id = allocate(client).json()["allocation_id"]
    prompt = "Zyxwv quokka SECRET-PROMPT-42"
    a = infer(client, alloc_id, prompt=prompt, max_tokens=200).json()
    b = infer(client, alloc_id, prompt=prompt, max_tokens=200).json()
    c = infer(client, alloc_id, prompt=prompt + "!", max_tokens=200).json()
    assert a == b
    assert a["text"] != c["text"]
    for out in (a, c):
        assert prompt not in out["text"] and "SECRET" not in out["text"]
        assert API_KEY not in out["text"] and "Bearer" not in out["text"]
        assert "127.0.0.1" not in out["text"] and "httpx" not in out["text"]
    # A model name that carries the key is not echoed into the text.
    d = infer(client, alloc_id, prompt=prompt, model=f"m-{API_KEY}").json()
    assert API_KEY not in d["text"]
    # Token count bounds.
    assert infer(client, alloc_id, max_tokens=5).json()["tokens_used"] <= 5
    assert 16 <= infer(client, alloc_id, max_tokens=4096).json()["tokens_used"] <= 4096
    assert infer(client, alloc_id).json()["tokens_used"] <= 128  # default max_tokens


def test_bigger_allocation_models_slower_inference(client):
    small = allocate(client, vram=2048).json()["allocation_id"]
    big = allocate(client, vram=20480).json()["allocation_id"]
    fast = infer(client, small, max_tokens=100).json()
    slow = infer(client, big, max_tokens=100).json()
    assert fast["tokens_used"] == slow["tokens_used"]
    assert slow["duration_ms"] > fast["duration_ms"]


def test_stop_sequences_truncate(client):
    alloc_id = allocate(client).json()["allocation_id"]
    full = infer(client, alloc_id, max_tokens=64).json()
    words = full["text"].split()[1:]
    stop = f" {words[10]} "
    body = " ".join(words)
    expected = body[: body.find(stop)].rstrip()
    cut = infer(client, alloc_id, max_tokens=64, stop_sequences=["never-matches", stop]).json()
    assert cut["text"] == f"[gemma-270m] {expected}"
    assert cut["tokens_used"] == len(expected.split()) < full["tokens_used"]


def test_inference_on_unknown_or_released_allocation(client):
    assert_error(infer(client, "alloc-unknown"), 404, "allocation_not_found")
    alloc_id = allocate(client).json()["allocation_id"]
    assert client.delete(f"/v1/allocate/{alloc_id}").status_code == 204
    body = assert_error(infer(client, alloc_id), 409, "allocation_not_active")
    assert body["details"]["status"] == "released"


def test_release_twice_is_404(client):
    alloc_id = allocate(client).json()["allocation_id"]
    assert client.delete(f"/v1/allocate/{alloc_id}").status_code == 204
    assert client.delete(f"/v1/allocate/{alloc_id}").status_code == 404
    assert_error(client.delete("/v1/allocate/alloc-never"), 404, "allocation_not_found")


# --- validation ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda b: b.pop("pool_id"), "pool_id"),
        (lambda b: b.update(requirements="big"), "requirements"),
        (lambda b: b["requirements"].pop("min_vram_mb"), "requirements.min_vram_mb"),
        (lambda b: b["requirements"].update(min_tflops="fast"), "requirements.min_tflops"),
        (lambda b: b["requirements"].update(max_vram_mb=1024), "requirements.max_vram_mb"),
        (lambda b: b.update(duration_seconds=0), "duration_seconds"),
        (lambda b: b.update(preemptible="yes"), "preemptible"),
        (lambda b: b.update(metadata=[1]), "metadata"),
    ],
)
def test_allocate_validation_names_the_field(client, mutate, field):
    body = alloc_body()
    mutate(body)
    r = client.post("/v1/allocate", json=body)
    assert assert_error(r, 422, "validation_error")["details"]["field"] == field


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"max_tokens": 0}, "parameters.max_tokens"),
        ({"max_tokens": 4097}, "parameters.max_tokens"),
        ({"max_tokens": True}, "parameters.max_tokens"),
        ({"temperature": "hot"}, "parameters.temperature"),
        ({"top_p": 2}, "parameters.top_p"),
        ({"stop_sequences": "x"}, "parameters.stop_sequences"),
        ({"stop_sequences": [""]}, "parameters.stop_sequences"),
    ],
)
def test_inference_validation_names_the_field(client, params, field):
    alloc_id = allocate(client).json()["allocation_id"]
    r = infer(client, alloc_id, **params)
    assert assert_error(r, 422, "validation_error")["details"]["field"] == field


def test_inference_missing_fields(client):
    r = client.post("/v1/inference", json={"model": "m", "prompt": "p"})
    assert assert_error(r, 422, "validation_error")["details"]["field"] == "allocation_id"
    r = client.post("/v1/inference", json={"allocation_id": "a", "prompt": "p"})
    assert assert_error(r, 422, "validation_error")["details"]["field"] == "model"


def test_bad_json_is_400(client):
    headers = {"Content-Type": "application/json"}
    assert_error(client.post("/v1/allocate", content=b"{not json", headers=headers), 400, "invalid_json")
    assert_error(client.post("/v1/inference", content=b"", headers=headers), 400, "invalid_json")
    assert_error(client.post("/v1/allocate", content=b"NaN", headers=headers), 400, "invalid_json")
    r = client.post("/v1/allocate", content=b"[1, 2]", headers=headers)
    assert assert_error(r, 422, "validation_error")["details"]["field"] == "body"


# --- faults ------------------------------------------------------------------------------


def test_fault_error_rate_with_status(client, emu):
    r = client.post("/_emulator/faults", json={"allocate": {"error_rate": 1.0, "status": 500}})
    assert r.status_code == 200
    assert r.json()["allocate"]["error_rate"] == 1.0 and r.json()["allocate"]["status"] == 500
    assert r.json()["inference"]["error_rate"] == 0.0
    assert_error(allocate(client), 500, "injected_fault")
    assert emu.emulator.list_allocations() == []  # an injected error does no work
    assert client.get("/_emulator/faults").json() == r.json()
    # null clears the endpoint.
    client.post("/_emulator/faults", json={"allocate": None})
    assert allocate(client).status_code == 201


def test_fault_fail_next_then_success(client):
    client.post("/_emulator/faults", json={"allocate": {"fail_next": 2, "status": 502}})
    assert_error(allocate(client, key="retry-me"), 502, "injected_fault")
    assert client.get("/_emulator/faults").json()["allocate"]["fail_next"] == 1
    assert_error(allocate(client, key="retry-me"), 502, "injected_fault")
    assert allocate(client, key="retry-me").status_code == 201
    assert client.get("/_emulator/faults").json()["allocate"]["fail_next"] == 0


def test_fault_429_has_retry_after(client):
    client.post("/_emulator/faults", json={"inference": {"error_rate": 1.0, "status": 429}})
    alloc_id = allocate(client).json()["allocation_id"]
    r = infer(client, alloc_id)
    assert_error(r, 429, "injected_fault")
    assert r.headers["retry-after"] == "1"


def test_fault_timeout_creates_allocation_then_hangs(client, emu):
    client.post("/_emulator/faults", json={"allocate": {"timeout_rate": 1.0, "hang_ms": 400}})
    with httpx.Client(
        base_url=emu.base_url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=httpx.Timeout(0.1)
    ) as impatient:
        with pytest.raises(httpx.ReadTimeout):
            allocate(impatient, key="lost-response")
    allocations = client.get("/_emulator/allocations").json()["allocations"]
    assert len(allocations) == 1
    # The retry with the same key finds the allocation the lost response made.
    client.post("/_emulator/faults", json={"allocate": {}})
    r = allocate(client, key="lost-response")
    assert r.status_code == 200
    assert r.json()["allocation_id"] == allocations[0]["allocation_id"]


def test_invalid_fault_settings_are_422(client):
    for body in (
        {"allocate": {"error_rate": 1.5}},
        {"allocate": {"status": 200}},
        {"allocate": {"fail_next": -1}},
        {"allocate": {"latency_ms": "slow"}},
        {"allocate": {"explode": True}},
        {"classify": {"error_rate": 1.0}},
        {"allocate": 3},
    ):
        assert_error(client.post("/_emulator/faults", json=body), 422, "validation_error")
    # All-or-nothing: nothing was applied.
    assert client.get("/_emulator/faults").json()["allocate"]["error_rate"] == 0.0


def test_fault_latency_setting_is_stored(client):
    r = client.post("/_emulator/faults", json={"release": {"latency_ms": 50}})
    assert r.json()["release"]["latency_ms"] == 50.0


# --- admin -------------------------------------------------------------------------------


def test_stats_count_every_call(client, emu):
    alloc_id = allocate(client).json()["allocation_id"]
    infer(client, alloc_id)
    infer(client, "alloc-unknown")  # failed calls count too
    httpx.post(f"{emu.base_url}/v1/allocate", json=alloc_body())  # 401 counts
    client.post("/_emulator/faults", json={"release": {"fail_next": 1}})
    client.delete(f"/v1/allocate/{alloc_id}")
    client.delete(f"/v1/allocate/{alloc_id}")
    client.get("/health")
    stats = client.get("/_emulator/stats").json()
    assert stats["calls"] == {"allocate": 2, "inference": 2, "release": 2}
    assert stats["faults_injected"] == {"allocate": 0, "inference": 0, "release": 1}


def test_reset_clears_everything(client):
    allocate(client, key="k1")
    client.post("/_emulator/faults", json={"inference": {"error_rate": 1.0}})
    r = client.post("/_emulator/reset")
    assert r.status_code == 200 and r.json() == {"status": "reset"}
    assert client.get("/_emulator/allocations").json() == {"allocations": []}
    assert client.get("/_emulator/faults").json()["inference"]["error_rate"] == 0.0
    assert client.get("/_emulator/stats").json()["calls"] == {"allocate": 0, "inference": 0, "release": 0}
    # The idempotency record is gone: the same key makes a new allocation.
    assert allocate(client, key="k1").status_code == 201


# --- expiry (injectable clock) -------------------------------------------------------------


def test_allocations_expire_lazily():
    clock = FakeClock()
    with run_in_thread(api_key=API_KEY, time_scale=0, gpus=ONE_L4, clock=clock) as running, make_client(running) as c:
        first = allocate(c, duration=10).json()
        assert first["expires_at"] == "2023-11-14T22:13:30.000Z"
        assert_error(allocate(c), 503, "no_capacity")
        clock.advance(9.5)
        assert len(c.get("/_emulator/allocations").json()["allocations"]) == 1
        clock.advance(1)
        assert c.get("/_emulator/allocations").json() == {"allocations": []}
        body = assert_error(infer(c, first["allocation_id"]), 409, "allocation_not_active")
        assert body["details"]["status"] == "expired"
        assert allocate(c).status_code == 201  # expired capacity is free again
        assert c.delete(f"/v1/allocate/{first['allocation_id']}").status_code == 404


def test_fractional_duration_is_accepted(client):
    r = allocate(client, duration=0.5)
    assert r.status_code == 201


# --- without HTTP, and the CLI ----------------------------------------------------------------


def test_emulator_usable_without_http():
    emulator = HostedAIEmulator(API_KEY, time_scale=0)
    body = b'{"pool_id": "gpu-pool-1", "requirements": {"min_vram_mb": 2048}}'
    r = emulator.handle("POST", "/v1/allocate", {"Authorization": f"Bearer {API_KEY}"}, body)
    assert r.status == 201
    out = emulator.inference({"allocation_id": r.body["allocation_id"], "model": "m", "prompt": "p"})
    assert out["text"].split()[1:] == generate_words("m", "p", 128)[: out["tokens_used"]]
    assert emulator.handle("GET", "/v1/inference").status == 405


def test_cli_starts_and_stops_on_sigterm():
    env = {**os.environ, "HOSTED_AI_EMULATOR_API_KEY": "env-key"}
    with subprocess.Popen(
        [sys.executable, "-m", "local.emulator", "--port", "0", "--time-scale", "0"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        try:
            line = proc.stdout.readline()
            assert "listening on http://127.0.0.1:" in line, line
            url = line.split("listening on ", 1)[1].split()[0]
            assert httpx.get(f"{url}/health").json() == {"status": "ok"}
            r = httpx.post(f"{url}/v1/allocate", json=alloc_body(), headers={"Authorization": "Bearer env-key"})
            assert r.status_code == 201
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=5) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()



def test_fault_code_setting_models_a_full_pool(client):
    r = client.post("/_emulator/faults", json={"allocate": {"error_rate": 1.0, "status": 503, "code": "no_capacity"}})
    assert r.status_code == 200 and r.json()["allocate"]["code"] == "no_capacity"
    r = allocate(client)
    assert r.status_code == 503 and r.json()["code"] == "no_capacity" and r.headers["Retry-After"] == "1"
    assert client.post("/_emulator/faults", json={"allocate": {"code": "Not A Code"}}).status_code == 422


def test_statuses_mix_injected_errors_and_history_keeps_every_allocation(client):
    client.post("/_emulator/faults", json={"inference": {"fail_next": 40, "statuses": [500, 429]}}).raise_for_status()
    a = allocate(client).json()["allocation_id"]
    seen = {infer(client, a).status_code for _ in range(40)}
    assert seen == {500, 429}
    assert client.delete(f"/v1/allocate/{a}").status_code == 204
    history = client.get("/_emulator/history").json()["allocations"]
    assert [(h["allocation_id"], h["status"]) for h in history] == [(a, "released")]
    assert client.get("/_emulator/allocations").json()["allocations"] == []


def test_slow_rate_zero_never_adds_latency(client):
    r = client.post("/_emulator/faults", json={"allocate": {"latency_ms": 8000, "slow_rate": 0.0}})
    assert r.status_code == 200
    # The latency would outlast this client's timeout (a ReadTimeout) if it applied.
    assert client.post("/v1/allocate", json=alloc_body(), timeout=2).status_code == 201
    assert client.post("/_emulator/faults", json={"allocate": {"statuses": [200]}}).status_code == 422


def test_lost_rate_does_the_work_then_answers_5xx(client):
    client.post("/_emulator/faults", json={"allocate": {"lost_rate": 1.0, "status": 503}}).raise_for_status()
    r = allocate(client, key="k-lost")
    assert r.status_code == 503 and r.json()["details"]["kind"] == "lost"
    assert len(client.get("/_emulator/allocations").json()["allocations"]) == 1  # it was made


def test_two_requests_inferring_on_one_gpu_at_once_are_counted_as_shared():
    """The chaos audit's "GPU shared at once": calls tagged with different
    X-Request-Id overlapping on one allocation. The same request's retry is not."""
    import threading

    with run_in_thread(api_key=API_KEY, time_scale=10.0) as running, make_client(running) as c:
        alloc_id = allocate(c).json()["allocation_id"]

        def call(request_id):
            c2 = make_client(running)
            c2.post("/v1/inference", headers={"X-Request-Id": request_id},
                    json={"allocation_id": alloc_id, "model": "qwen-30b", "prompt": "p", "parameters": {"max_tokens": 64}})

        for ids, expected in ((["req-a", "req-a"], 0), (["req-b", "req-c"], 1)):
            before = c.get("/_emulator/stats").json()["shared_inferences"]
            threads = [threading.Thread(target=call, args=(rid,)) for rid in ids]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert c.get("/_emulator/stats").json()["shared_inferences"] - before == expected
