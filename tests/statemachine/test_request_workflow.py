"""Every path of the request state machine, on moto's engine."""

from __future__ import annotations

import json
import time

import httpx
import pytest
from botocore.exceptions import ClientError

from harpoon.errors import UpstreamUnavailableError

HAPPY = ["Classify", "Allocate", "Infer", "Release", "Respond"]


def allocations(emulator) -> list:
    return httpx.get(f"{emulator.base_url}/_emulator/allocations").json()["allocations"]


def faults(emulator, **settings) -> None:
    httpx.post(f"{emulator.base_url}/_emulator/faults", json=settings).raise_for_status()


def cause(result) -> dict:
    return json.loads(result["cause"])


def test_happy_path_releases_and_answers(engine, emulator):
    result = engine.run()
    assert result["status"] == "SUCCEEDED", result
    assert result["states"] == HAPPY
    output = json.loads(result["output"])
    assert set(output) == {"request_id", "classify", "allocation", "inference", "release"}
    assert output["release"]["status"] == "released"
    assert output["inference"]["model_used"] == "gemma-270m"
    assert allocations(emulator) == [] and engine.sleeps == []


def test_classify_retries_lambda_service_errors_then_succeeds(engine, emulator):
    real = engine.invoke

    def flaky(name, event):
        if engine.by_arn[name] == "classify" and engine.steps("classify") < 2:
            engine.calls.append(("classify", event))
            raise ClientError({"Error": {"Code": "ServiceException", "Message": "try again"},
                               "ResponseMetadata": {"HTTPStatusCode": 500, "RequestId": "r"}}, "Invoke")
        return real(name, event)

    engine.invoke = flaky
    result = engine.run()
    assert result["status"] == "SUCCEEDED", result
    assert engine.steps("classify") == 3 and engine.sleeps == [1, 2]


def test_classify_failure_ends_failed_without_touching_hostedai(engine, emulator):
    def broken(event, n):
        raise ValueError("classifier bug")

    engine.fakes["classify"] = broken
    result = engine.run()
    assert result["status"] == "FAILED"
    assert result["error"] == "ValueError" and cause(result)["errorMessage"] == "classifier bug"
    assert result["states"] == ["Classify", "ClassifyFailure", "Failed"]
    assert engine.steps("allocate") == engine.steps("release") == 0 and engine.sleeps == []


def test_allocate_retries_transient_upstream_errors_with_backoff(engine, emulator):
    faults(emulator, allocate={"fail_next": 2, "status": 502})
    result = engine.run()
    assert result["status"] == "SUCCEEDED", result
    assert engine.steps("allocate") == 3 and engine.sleeps == [1, 2]
    assert allocations(emulator) == []


def test_allocate_backoff_is_capped_by_max_delay(engine, emulator):
    for state in engine.definition["States"].values():
        for retrier in state.get("Retry", []):
            assert retrier["MaxDelaySeconds"] >= retrier["IntervalSeconds"]
            assert retrier["JitterStrategy"] == "FULL"
    variant = json.loads(json.dumps(engine.definition))
    variant["States"]["Allocate"]["Retry"][0].update(MaxAttempts=5, IntervalSeconds=3)
    engine.replace_definition(variant)
    faults(emulator, allocate={"fail_next": 5, "status": 500})
    assert engine.run()["status"] == "SUCCEEDED"
    assert engine.sleeps == [3, 6, 8, 8, 8]  # 12 and 24 capped at MaxDelaySeconds 8


def test_no_capacity_exhausted_goes_through_release_and_fails(engine, emulator):
    faults(emulator, allocate={"error_rate": 1.0, "status": 503, "code": "no_capacity"})
    result = engine.run()
    assert result["status"] == "FAILED"
    assert result["error"] == "NoCapacityError"
    assert engine.steps("allocate") == 3 and engine.sleeps == [2, 4]
    assert result["states"] == ["Classify", "Allocate", "ReleaseAfterFailure", "ClassifyFailure", "Failed"]
    from harpoon import deps

    assert deps.leases().get(result["request_id"]).status == "FAILED"  # HostedAI said no every time
    assert allocations(emulator) == []


def test_allocate_whose_answer_is_lost_is_retried_without_a_second_gpu(engine, emulator, lambda_context):
    from tests.conftest import load_handler

    def lost_once(event, n):
        out = load_handler("allocate").lambda_handler(event, lambda_context)
        if n == 1:  # the GPU is allocated and the lease ACTIVE, but the answer never arrives
            raise ClientError({"Error": {"Code": "ServiceException", "Message": "lost"},
                               "ResponseMetadata": {"HTTPStatusCode": 500, "RequestId": "r"}}, "Invoke")
        return out

    engine.fakes["allocate"] = lost_once
    result = engine.run()
    assert result["status"] == "SUCCEEDED", result
    assert engine.steps("allocate") == 2 and engine.sleeps == [1]
    assert httpx.get(f"{emulator.base_url}/_emulator/stats").json()["calls"]["allocate"] == 1
    assert allocations(emulator) == []


def test_allocate_answer_lost_every_time_is_still_released(engine, emulator, lambda_context):
    from tests.conftest import load_handler

    def always_lost(event, n):
        load_handler("allocate").lambda_handler(event, lambda_context)
        raise ClientError({"Error": {"Code": "ServiceException", "Message": "lost"},
                           "ResponseMetadata": {"HTTPStatusCode": 500, "RequestId": "r"}}, "Invoke")

    engine.fakes["allocate"] = always_lost
    result = engine.run()
    assert result["status"] == "FAILED" and result["error"] == "Lambda.ServiceException"
    assert result["states"] == ["Classify", "Allocate", "ReleaseAfterFailure", "ClassifyFailure", "Failed"]
    assert allocations(emulator) == []  # Release found the GPU in the lease


def test_allocate_timeouts_leave_an_abandoned_lease_for_the_cleanup(engine, emulator, monkeypatch):
    monkeypatch.setenv("HOSTED_AI_TIMEOUT", "0.2")
    faults(emulator, allocate={"timeout_rate": 1.0, "hang_ms": 600})
    result = engine.run()
    assert result["status"] == "FAILED" and result["error"] == "UpstreamTimeoutError"
    assert engine.steps("allocate") == 3
    from harpoon import deps

    lease = deps.leases().get(result["request_id"])
    assert lease.status == "ABANDONED" and len(lease.pending_keys) == 1
    assert len(allocations(emulator)) == 1  # created by a lost answer: the cleanup's job (issue 4)


def test_permanent_allocate_error_is_not_retried(engine, emulator):
    faults(emulator, allocate={"error_rate": 1.0, "status": 422})
    result = engine.run()
    assert result["status"] == "FAILED" and result["error"] == "UpstreamRejectedError"
    assert engine.steps("allocate") == 1 and engine.sleeps == []
    assert result["states"] == ["Classify", "Allocate", "ReleaseAfterFailure", "ClassifyFailure", "Failed"]


def test_infer_transient_error_is_retried(engine, emulator):
    faults(emulator, inference={"fail_next": 1, "status": 500})
    result = engine.run()
    assert result["status"] == "SUCCEEDED", result
    assert engine.steps("infer") == 2 and engine.sleeps == [1]


def test_infer_failure_still_releases_the_gpu(engine, emulator):
    faults(emulator, inference={"error_rate": 1.0, "status": 500})
    result = engine.run()
    assert result["status"] == "FAILED" and result["error"] == "UpstreamUnavailableError"
    assert "500" in cause(result)["errorMessage"]
    assert engine.steps("infer") == 3 and engine.sleeps == [1, 2]
    assert result["states"] == ["Classify", "Allocate", "Infer", "ReleaseAfterFailure", "ClassifyFailure", "Failed"]
    assert allocations(emulator) == []


def test_infer_permanent_error_releases_without_retry(engine, emulator):
    faults(emulator, inference={"error_rate": 1.0, "status": 400})
    result = engine.run()
    assert result["error"] == "UpstreamRejectedError" and engine.steps("infer") == 1
    assert allocations(emulator) == []


def test_release_transient_error_is_retried(engine, emulator):
    faults(emulator, release={"fail_next": 2, "status": 503})
    result = engine.run()
    assert result["status"] == "SUCCEEDED"
    assert json.loads(result["output"])["release"]["status"] == "released"
    assert engine.steps("release") == 3 and engine.sleeps == [1, 2]
    assert allocations(emulator) == []


def test_release_that_keeps_failing_still_answers_and_leaves_the_lease_for_reclaim(engine, emulator):
    faults(emulator, release={"error_rate": 1.0, "status": 500})
    result = engine.run()
    assert result["status"] == "SUCCEEDED"
    assert result["states"] == ["Classify", "Allocate", "Infer", "Release", "MarkReleasePending", "Respond"]
    output = json.loads(result["output"])
    assert output["release"] == {"status": "pending_reclaim", "released": False, "error": "UpstreamUnavailableError"}
    assert engine.steps("release") == 4 and engine.sleeps == [1, 2, 4]
    from harpoon import deps

    assert deps.leases().get(result["request_id"]).status == "RELEASING"
    assert len(allocations(emulator)) == 1  # still held: the reclaim sweep's job


def test_release_after_failure_that_fails_keeps_the_original_error(engine, emulator):
    faults(emulator, inference={"error_rate": 1.0, "status": 400}, release={"error_rate": 1.0, "status": 500})
    result = engine.run()
    assert result["status"] == "FAILED" and result["error"] == "UpstreamRejectedError"
    assert result["states"] == ["Classify", "Allocate", "Infer", "ReleaseAfterFailure", "ClassifyFailure", "Failed"]
    assert engine.steps("release") == 4


def test_task_timeout_is_caught_and_released(engine, emulator):
    import time

    variant = json.loads(json.dumps(engine.definition))
    variant["States"]["Infer"]["TimeoutSeconds"] = 1
    engine.replace_definition(variant)

    def slow(event, n):
        time.sleep(2.5)
        raise UpstreamUnavailableError("too late")

    engine.fakes["infer"] = slow
    result = engine.run()
    assert result["status"] == "FAILED" and result["error"] == "StepTimeoutError"
    assert result["states"] == ["Classify", "Allocate", "Infer", "ReleaseAfterFailure", "ClassifyFailure", "TimedOut"]
    assert allocations(emulator) == []


def test_api_runs_the_workflow_and_answers_200(engine, emulator, lambda_context):
    from tests.conftest import load_event, load_handler

    response = load_handler("api").lambda_handler(load_event("api"), lambda_context)
    assert response["statusCode"] == 200, response
    body = json.loads(response["body"])
    assert body["route"]["model"] == "gemma-270m" and body["inference"]["text"]
    assert response["headers"]["X-Request-Id"] == body["request_id"]
    assert allocations(emulator) == []


def test_api_maps_an_upstream_failure_to_502(engine, emulator, lambda_context):
    from tests.conftest import load_event, load_handler

    faults(emulator, inference={"error_rate": 1.0, "status": 500})
    response = load_handler("api").lambda_handler(load_event("api"), lambda_context)
    assert response["statusCode"] == 502
    error = json.loads(response["body"])["error"]
    assert error["code"] == "upstream_error" and error["details"]["error"] == "UpstreamUnavailableError"
    assert allocations(emulator) == []


def test_release_that_times_out_is_retried(engine, emulator):
    real = engine.invoke

    def sandbox_timeout_once(name, event):
        if engine.by_arn[name] == "release" and engine.steps("release") == 0:
            engine.calls.append(("release", event))
            return {"error": {"errorType": "Sandbox.Timedout", "errorMessage": "Task timed out after 12.00 seconds",
                              "stackTrace": []}}
        return real(name, event)

    engine.invoke = sandbox_timeout_once
    result = engine.run()
    assert result["status"] == "SUCCEEDED", result
    assert engine.steps("release") == 2 and engine.sleeps == [1]
    assert allocations(emulator) == []


def api_call(lambda_context, body: dict, key: str | None = None) -> dict:
    from tests.conftest import load_event, load_handler

    event = json.loads(json.dumps(load_event("api")))
    event["body"] = json.dumps(body)
    if key is not None:
        event["headers"]["idempotency-key"] = key
    return load_handler("api").lambda_handler(event, lambda_context)


def stats(emulator) -> dict:
    return httpx.get(f"{emulator.base_url}/_emulator/stats").json()["calls"]


def test_idempotency_key_replays_the_first_answer_without_new_gpu_work(engine, emulator, lambda_context):
    first = api_call(lambda_context, {"text": "Hello"}, key="order-42")
    assert first["statusCode"] == 200, first
    calls = stats(emulator)
    again = api_call(lambda_context, {"text": "Hello"}, key="order-42")
    assert again["statusCode"] == 200 and json.loads(again["body"]) == json.loads(first["body"])
    assert again["headers"]["Idempotent-Replayed"] == "true"
    assert stats(emulator) == calls  # no allocate, inference or release
    other = api_call(lambda_context, {"text": "Hello"}, key="order-43")
    assert json.loads(other["body"])["request_id"] != json.loads(first["body"])["request_id"]


def test_idempotency_key_with_another_body_is_409(engine, emulator, lambda_context):
    assert api_call(lambda_context, {"text": "Hello"}, key="k-1")["statusCode"] == 200
    conflict = api_call(lambda_context, {"text": "Hello again"}, key="k-1")
    assert conflict["statusCode"] == 409
    assert json.loads(conflict["body"])["error"]["code"] == "idempotency_key_reused"


def test_a_failed_request_is_not_stored_so_its_key_can_be_retried(engine, emulator, lambda_context):
    faults(emulator, inference={"error_rate": 1.0, "status": 400})
    assert api_call(lambda_context, {"text": "Hello"}, key="retry-me")["statusCode"] == 502
    faults(emulator, inference={})
    assert api_call(lambda_context, {"text": "Hello"}, key="retry-me")["statusCode"] == 200


def test_a_malformed_idempotency_key_is_400(engine, lambda_context):
    response = api_call(lambda_context, {"text": "Hello"}, key="has space")
    assert response["statusCode"] == 400
    assert json.loads(response["body"])["error"]["code"] == "invalid_idempotency_key"


def test_open_circuit_falls_back_to_the_small_model_and_labels_it(engine, emulator, lambda_context):
    from harpoon import deps

    breaker = deps.breaker()
    pool = engine.stack.functions["AllocateFunction"].environment["HOSTED_AI_POOL_ID"]
    for i in range(10):
        breaker.record_failure(f"{pool}#qwen-30b", f"f{i}")
    from harpoon.classifier import classify

    text = "Prove step by step that sqrt(2) is irrational."
    response = api_call(lambda_context, {"text": text, "max_tokens": 512})
    assert response["statusCode"] == 200, response
    body = json.loads(response["body"])
    assert body["route"] == {"model": "gemma-270m", "requested_model": "qwen-30b", "degraded": True,
                             "reason": "qwen-30b: circuit open", "basis": "classifier",
                             "explanation": f"classifier: complex (score {classify(text).score:.3f}, threshold 0.5)"}
    assert body["inference"]["model_used"] == "gemma-270m" and body["inference"]["tokens_generated"] <= 256
    assert allocations(emulator) == []


def test_nothing_can_serve_is_503_with_retry_after(engine, emulator, lambda_context):
    faults(emulator, allocate={"error_rate": 1.0, "status": 503, "code": "no_capacity"})
    response = api_call(lambda_context, {"text": "Hello"})
    assert response["statusCode"] == 503
    assert json.loads(response["body"])["error"]["code"] == "no_capacity"
    assert int(response["headers"]["Retry-After"]) >= 1


def test_a_key_retried_after_a_504_gets_the_first_executions_answer_without_new_gpu_work(
        engine, emulator, lambda_context, monkeypatch):
    import time

    from harpoon import deps

    monkeypatch.setenv("SYNC_TIMEOUT_SECONDS", "0.5")
    deps.reset()
    faults(emulator, inference={"latency_ms": 1500})
    first = api_call(lambda_context, {"text": "Hello"}, key="slow-1")
    assert first["statusCode"] == 504
    request_id = json.loads(first["body"])["error"]["details"]["request_id"]
    deadline = time.monotonic() + 20
    while allocations(emulator) and time.monotonic() < deadline:  # the execution runs on and releases
        time.sleep(0.1)
    monkeypatch.setenv("SYNC_TIMEOUT_SECONDS", "25")
    deps.reset()
    again = api_call(lambda_context, {"text": "Hello"}, key="slow-1")
    assert again["statusCode"] == 200, again
    assert json.loads(again["body"])["request_id"] == request_id  # the first execution's answer
    assert stats(emulator)["allocate"] == 1


def test_a_clean_run_keeps_its_gpu_warm_and_the_next_run_reuses_it(engine, emulator, monkeypatch):
    from harpoon import deps

    monkeypatch.setenv("WARM_IDLE_SECONDS", "30")
    deps.reset()
    first, second = engine.run(), engine.run()
    assert first["status"] == second["status"] == "SUCCEEDED" and second["states"] == HAPPY
    one, two = json.loads(first["output"]), json.loads(second["output"])
    assert (one["allocation"]["warm"], one["release"]["status"]) == (False, "kept_warm")
    assert two["allocation"]["warm"] is True and two["allocation"]["allocation_id"] == one["allocation"]["allocation_id"]
    assert stats(emulator)["allocate"] == 1 and len(allocations(emulator)) == 1  # idle, not leaked
    faults(emulator, inference={"error_rate": 1.0, "status": 400})
    third = engine.run()  # a failed run gives its (warm) GPU back for real
    assert third["status"] == "FAILED" and third["states"][-3:] == ["ReleaseAfterFailure", "ClassifyFailure", "Failed"]
    assert allocations(emulator) == [] and stats(emulator)["allocate"] == 1  # it ran on the warm GPU


def test_a_lease_lost_before_inference_is_caught_and_released_without_inferring(engine, emulator):
    from harpoon import deps
    from harpoon.domain.cleanup import sweep

    real = engine.invoke

    def stall_then_infer(name, event):
        if engine.by_arn[name] == "infer":
            # The execution stalled past its lease and the sweep reclaimed the GPU.
            sweep(leases=deps.leases(), hostedai=deps.hostedai(), horizon_seconds=10_000)
            # Infer's clock, after that stall, is past the expiry Allocate passed it.
            event = {**event, "lease_expires_at": int(time.time()) - 1}
        return real(name, event)

    engine.invoke = stall_then_infer
    result = engine.run()
    assert result["status"] == "FAILED" and result["error"] == "LeaseLostError"
    assert result["states"] == ["Classify", "Allocate", "Infer", "ReleaseAfterFailure", "ClassifyFailure", "Failed"]
    assert engine.steps("infer") == 1  # permanent: not retried
    assert stats(emulator)["inference"] == 0 and allocations(emulator) == []


@pytest.mark.parametrize("choice, model, basis", [
    ({"model": "qwen-30b"}, "qwen-30b", "explicit"),
    ({"requirements": {"min_tflops": 10, "min_vram_mb": 4096}}, "qwen-30b", "requirements"),
    ({"requirements": {"min_vram_mb": 1024}}, "gemma-270m", "requirements"),
])
def test_the_callers_model_choice_serves_and_the_answer_explains_it(engine, emulator, lambda_context, choice, model,
                                                                    basis):
    response = api_call(lambda_context, {"text": "Hello", **choice})
    assert response["statusCode"] == 200, response
    body = json.loads(response["body"])
    assert (body["route"]["model"], body["route"]["basis"], body["inference"]["model_used"]) == (model, basis, model)
    assert body["route"]["explanation"] and body["classification"]["reasons"]  # classified all the same
    assert body["classification"]["tier"] == "simple"


def test_unmeetable_requirements_are_a_400_before_any_gpu_work(engine, emulator, lambda_context):
    response = api_call(lambda_context, {"text": "Hello", "requirements": {"min_tflops": 500}})
    assert response["statusCode"] == 400 and json.loads(response["body"])["error"]["code"] == "requirements_not_met"
    assert stats(emulator)["allocate"] == 0 and engine.calls == []


def test_sampling_parameters_reach_hostedai(engine, emulator, lambda_context):
    plain = api_call(lambda_context, {"text": "Hello", "model": "gemma-270m", "max_tokens": 40})
    assert plain["statusCode"] == 200, plain
    words = json.loads(plain["body"])["inference"]["text"].split()
    stop = words[len(words) // 2]
    first = words.index(stop)
    cut = api_call(lambda_context, {"text": "Hello", "model": "gemma-270m", "max_tokens": 40, "stop": [stop],
                                    "temperature": 0.2, "top_p": 0.9})
    assert cut["statusCode"] == 200, cut
    # HostedAI ended the text before the stop sequence: it was sent.
    assert json.loads(cut["body"])["inference"]["text"] == " ".join(words[:first])


@pytest.mark.parametrize("field, value", [("temperature", 2.5), ("temperature", "0.5"), ("top_p", -0.1),
                                          ("stop", ["a", "b", "c", "d", "e"]), ("stop", [""]), ("stop", "END")])
def test_sampling_parameters_out_of_range_are_a_422(engine, lambda_context, field, value):
    response = api_call(lambda_context, {"text": "Hello", field: value})
    assert response["statusCode"] == 422, response
    assert json.loads(response["body"])["error"]["details"]["problems"][0]["field"].startswith(field)
