"""The HostedAI API key never leaves the places that must hold it.

Over the local stack (`python -m local`), a set of full requests runs over
HTTP: successes, HostedAI failures (500s, and 401s that make the client read
the secret afresh), an idempotent replay, 4xx answers. Then everything
Harpoon produced is collected: every response (status line, headers, body),
the stack's own output, every function log file, every Step Functions
execution in the moto server (describe_execution and its whole history) and
every DynamoDB item. The key, read from the moto server's Secrets Manager as
the functions read it, must appear in none of it.

The scan is checked not to be vacuous: the corpus must hold every request id
(in the function logs and in the executions), a canary word sent in a prompt
must be found by the same scanner in the execution payloads, and the key the
test looks for must be the one HostedAI (the emulator) accepts.
"""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import httpx
import pytest

pytestmark = pytest.mark.e2e

COMPLEX = ("Prove step by step that the square root of 2 is irrational, then write a Python function "
           "that checks the proof numerically and explain its complexity.")
CANARY = f"canary{uuid.uuid4().hex}"  # a word sent in one prompt: the scanner must find it in the payloads


# --- where the key may be read, and where everything else is collected -------------------------


def aws(stack, service: str):
    return boto3.client(service, endpoint_url=f"http://127.0.0.1:{stack.aws}", region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def hostedai_key(stack) -> str:
    """The key as the functions get it: the secret whose name ends with
    HostedAiApiKeySecret (the bare key or {"api_key": ...})."""
    secrets = aws(stack, "secretsmanager")
    names = [s["Name"] for page in secrets.get_paginator("list_secrets").paginate() for s in page["SecretList"]]
    (name,) = [n for n in names if n.endswith("HostedAiApiKeySecret")]
    raw = secrets.get_secret_value(SecretId=name)["SecretString"].strip()
    return json.loads(raw)["api_key"] if raw.startswith("{") else raw


def log_dir(stack) -> Path:
    args = stack.proc.args
    return Path(args[args.index("--log-dir") + 1])


@dataclass
class Corpus:
    """Every text Harpoon produced, each with where it came from."""

    texts: list[tuple[str, str]] = field(default_factory=list)  # (where, text)

    def add(self, where: str, text: str) -> None:
        self.texts.append((where, text))

    def add_lines(self, where: str, text: str) -> None:
        for number, line in enumerate(text.splitlines(), 1):
            self.add(f"{where}:{number}", line)

    def find(self, needle: str) -> list[str]:
        return [where for where, text in self.texts if needle in text]

    def sources(self, prefix: str) -> list[str]:
        return [where for where, _ in self.texts if where.startswith(prefix)]

    def size(self) -> int:
        return sum(len(text) for _, text in self.texts)


def response_text(response: httpx.Response) -> str:
    headers = "\n".join(f"{name}: {value}" for name, value in response.headers.multi_items())
    return f"HTTP {response.status_code} {response.reason_phrase}\n{headers}\n\n{response.text}"


def collect_executions(stack, corpus: Corpus) -> dict[str, int]:
    """describe_execution and every history event of every execution; returns
    execution name -> number of history events."""
    sfn = aws(stack, "stepfunctions")
    events_by_name: dict[str, int] = {}
    machines = [m for page in sfn.get_paginator("list_state_machines").paginate() for m in page["stateMachines"]]
    for machine in machines:
        pages = sfn.get_paginator("list_executions").paginate(stateMachineArn=machine["stateMachineArn"])
        executions = [e for page in pages for e in page["executions"]]
        for execution in executions:
            arn, name = execution["executionArn"], execution["name"]
            described = sfn.describe_execution(executionArn=arn)
            for part in ("input", "output", "error", "cause"):
                if described.get(part) is not None:
                    corpus.add(f"execution {name} describe_execution.{part}", described[part])
            events = [e for page in sfn.get_paginator("get_execution_history").paginate(executionArn=arn)
                      for e in page["events"]]
            for event in events:
                where = f"execution {name} history event {event['id']} ({event['type']})"
                corpus.add(where, json.dumps(event, default=str))
            events_by_name[name] = len(events)
    return events_by_name


def collect_tables(stack, corpus: Corpus) -> None:
    ddb = aws(stack, "dynamodb")
    for table in ddb.list_tables()["TableNames"]:
        items = [i for page in ddb.get_paginator("scan").paginate(TableName=table) for i in page["Items"]]
        for number, item in enumerate(items):
            corpus.add(f"DynamoDB {table} item {number}", json.dumps(item, default=str))


# --- the requests ------------------------------------------------------------------------------


@dataclass
class Exercise:
    key: str
    corpus: Corpus
    answers: dict[str, httpx.Response]  # scenario -> its (last) response
    request_ids: dict[str, str]  # scenario -> request id, for those that ran a workflow
    history_events: dict[str, int]  # execution name -> events


def request_id_of(response: httpx.Response) -> str | None:
    """The id of the request a workflow ran for: the x-request-id header, or
    the error body's details.request_id."""
    if "x-request-id" in response.headers:
        return response.headers["x-request-id"]
    try:
        return response.json()["error"]["details"].get("request_id")
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def drain_warm_gpus(http: httpx.Client) -> httpx.Response:
    """Give every idle warm GPU back now (`make sweep HORIZON=`), so that the
    next request asks HostedAI for an allocation instead of claiming one.
    No execution runs meanwhile: the requests here go one at a time."""
    reply = http.post("/_local/schedules/CleanupFunction", json={"horizon_seconds": 3600})
    assert reply.status_code == 200, reply.text
    return reply


@pytest.fixture(scope="module")
def exercised(stack) -> Exercise:
    key = hostedai_key(stack)
    answers: dict[str, httpx.Response] = {}
    admin_replies: list[httpx.Response] = []
    idempotency_key = f"hygiene-{uuid.uuid4().hex}"

    with httpx.Client(base_url=stack.url, timeout=120, headers={"x-api-key": stack.api_key}) as http:
        def post(scenario: str, body=None, **kwargs) -> httpx.Response:
            answers[scenario] = http.post("/v2/process", json=body, **kwargs)
            return answers[scenario]

        stack.faults(allocate={}, inference={}, release={})
        try:
            answers["health"] = http.get("/health")
            # Successes (the canary travels in the prompt, through every step's payload).
            post("success simple", {"text": f"Hello, please repeat the word {CANARY}"})
            post("success complex", {"text": COMPLEX, "max_tokens": 48})
            # A transient HostedAI 500, retried by the state machine, then 200.
            stack.faults(inference={"fail_next": 1, "status": 500})
            post("inference 500 once, retried", {"text": "What is the capital of France?"})
            # HostedAI keeps failing with 500: retries run out, 502.
            stack.faults(inference={"error_rate": 1.0, "status": 500})
            post("inference 500 always", {"text": COMPLEX, "max_tokens": 16})
            # HostedAI refuses the key (401): the client reads the secret
            # afresh and tries once more, refused again: 502.
            stack.faults(inference={"error_rate": 1.0, "status": 401})
            post("inference 401", {"text": "Hello there"})
            stack.faults(inference={})
            admin_replies.append(drain_warm_gpus(http))  # else Allocate claims a warm GPU and never calls HostedAI
            stack.faults(allocate={"error_rate": 1.0, "status": 401})
            post("allocate 401", {"text": "Hi"})
            stack.faults(allocate={})
            # Idempotency: first run, replay, the same key with another body.
            post("idempotent first", {"text": "Good morning"}, headers={"Idempotency-Key": idempotency_key})
            post("idempotent replay", {"text": "Good morning"}, headers={"Idempotency-Key": idempotency_key})
            post("idempotent other body", {"text": "Good evening"}, headers={"Idempotency-Key": idempotency_key})
            # Caller errors.
            post("422 empty text", {"text": ""})
            post("400 deployment", {"text": "hi", "deployment": "native"})
            post("400 requirements", {"text": "hi", "requirements": {"min_tflops": 1000}})
            answers["400 invalid json"] = http.post("/v2/process", content=b'{"text": ',
                                                    headers={"content-type": "application/json"})
            answers["401 no tenant key"] = httpx.post(f"{stack.url}/v2/process", json={"text": "hi"}, timeout=60)
            answers["401 wrong tenant key"] = httpx.post(f"{stack.url}/v2/process", json={"text": "hi"}, timeout=60,
                                                         headers={"x-api-key": "hpn_not-a-key-of-anyone-0000000000"})
            answers["404 route"] = http.get("/v1/nothing")
            # One sweep now, its report included in the corpus.
            admin_replies.append(http.post("/_local/schedules/CleanupFunction", json={}))
        finally:
            stack.faults(allocate={}, inference={}, release={})

    corpus = Corpus()
    for scenario, response in answers.items():
        where = f"response [{scenario}] {response.request.method} {response.request.url.path}"
        corpus.add(where, response_text(response))
    for number, response in enumerate(admin_replies):
        corpus.add(f"response [sweep {number}] POST /_local/schedules/CleanupFunction", response_text(response))
    for number, line in enumerate(list(stack.lines), 1):
        corpus.add(f"stack stdout line {number}", line)
    for path in sorted(log_dir(stack).rglob("*")):
        if path.is_file():
            corpus.add_lines(f"log file {path.name}", path.read_text(encoding="utf-8", errors="replace"))
    history_events = collect_executions(stack, corpus)
    collect_tables(stack, corpus)

    request_ids = {scenario: request_id_of(r) for scenario, r in answers.items()
                   if r.request.url.path == "/v2/process" and r.status_code in (200, 502)}
    return Exercise(key, corpus, answers, request_ids, history_events)


# --- the tests ---------------------------------------------------------------------------------


def test_every_scenario_got_the_answer_it_was_meant_to(exercised):
    statuses = {scenario: r.status_code for scenario, r in exercised.answers.items()}
    assert statuses == {
        "health": 200,
        "success simple": 200,
        "success complex": 200,
        "inference 500 once, retried": 200,
        "inference 500 always": 502,
        "inference 401": 502,
        "allocate 401": 502,
        "idempotent first": 200,
        "idempotent replay": 200,
        "idempotent other body": 409,
        "422 empty text": 422,
        "400 deployment": 400,
        "400 requirements": 400,
        "400 invalid json": 400,
        "401 no tenant key": 401,
        "401 wrong tenant key": 401,
        "404 route": 404,
    }, {s: exercised.answers[s].text[:300] for s, status in statuses.items() if status >= 500}
    errors = {s: exercised.answers[s].json()["error"]["details"].get("error") for s in
              ("inference 500 always", "inference 401", "allocate 401")}
    assert errors == {"inference 500 always": "UpstreamUnavailableError", "inference 401": "UpstreamAuthError",
                      "allocate 401": "UpstreamAuthError"}
    assert "401" in exercised.answers["allocate 401"].json()["error"]["message"]  # HostedAI's refusal was heard
    replay = exercised.answers["idempotent replay"]
    assert replay.headers.get("idempotent-replayed") == "true"
    assert replay.headers["x-request-id"] == exercised.answers["idempotent first"].headers["x-request-id"]


def test_the_key_looked_for_is_the_one_hostedai_accepts(stack, exercised):
    """A scan for the wrong string would prove nothing: the emulator (HostedAI)
    authenticates with this key and refuses another."""
    url = f"{stack.emulator_url}/v1/allocate/alloc-does-not-exist"
    assert len(exercised.key) >= 16
    assert httpx.delete(url, headers={"Authorization": f"Bearer {exercised.key}"}).status_code == 404
    assert httpx.delete(url, headers={"Authorization": f"Bearer {exercised.key}x"}).status_code == 401


def test_the_corpus_is_large_and_the_scanner_finds_what_is_there(exercised):
    corpus = exercised.corpus
    workflow_ids = exercised.request_ids
    assert len(workflow_ids) == 8 and len(set(workflow_ids.values())) == 7  # the replay shares the first's id

    # Every response is in it, and the stack's output and every function's log.
    assert len(corpus.sources("response [")) == len(exercised.answers) + 2  # and the two sweeps' reports
    assert any("POST /v2/process 502" in text for where, text in corpus.texts if where.startswith("stack stdout"))
    logged = {where.split(":")[0] for where in corpus.sources("log file ")}
    for function in ("ApiFunction", "AuthorizerFunction", "AllocateFunction", "InferFunction", "ReleaseFunction",
                     "ClassifyFunction", "CleanupFunction"):
        assert f"log file {function}.log" in logged, sorted(logged)

    # Every request that ran a workflow: its execution and a full history.
    for scenario, request_id in workflow_ids.items():
        events = exercised.history_events.get(request_id, 0)
        assert events >= 10, (scenario, request_id, events)
        found = corpus.find(request_id)
        assert any(w.startswith("log file ") for w in found), (scenario, "request id not in any function log")
        assert any(w.startswith(f"execution {request_id} history event") for w in found), scenario
        assert any(w.startswith("response [") for w in found), scenario

    # Positive control: a word sent in a prompt is found, by the same scanner,
    # in the execution's input, its history and the Infer step's payload.
    found = corpus.find(CANARY)
    request_id = workflow_ids["success simple"]
    assert f"execution {request_id} describe_execution.input" in found
    assert any(w.startswith(f"execution {request_id} history event") and "TaskScheduled" in w for w in found), found

    # The failures' causes are in it (what HostedAI answered, as the workflow saw it).
    causes = [text for where, text in corpus.texts if where.endswith("describe_execution.cause")]
    assert any("answered 401" in cause for cause in causes)
    assert corpus.size() > 100_000, corpus.size()  # about 250 kB on this machine


def test_the_hostedai_key_appears_nowhere(exercised):
    key = exercised.key
    needles = {
        "the key": key,
        "the key's first half": key[: len(key) // 2],
        "the key's second half": key[len(key) // 2:],
        "the key in base64": base64.b64encode(key.encode()).decode().rstrip("="),
        "the key in urlsafe base64": base64.urlsafe_b64encode(key.encode()).decode().rstrip("="),
    }
    leaks = {label: exercised.corpus.find(needle) for label, needle in needles.items()}
    leaks = {label: where for label, where in leaks.items() if where}
    assert not leaks, "the HostedAI key was found in:\n" + "\n".join(
        f"  {label}: {where}" for label, places in leaks.items() for where in places)

