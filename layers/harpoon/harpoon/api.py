"""The HTTP API (API Gateway HTTP API, payload v2): GET /health, GET /openapi.json,
POST /v2/process, and the OpenAI-compatible POST /v1/chat/completions and
GET /v1/models (harpoon.openai_compat: the same path, OpenAI's shapes).

Refuses a request the authorizer did not vouch for, validates the body, takes
a quota slot, runs the workflow and maps its outcome to HTTP. Every error body
is {"error": {"code", "message", "details"}}; no stack trace or upstream secret
ever reaches a caller.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from pydantic import ValidationError

from harpoon import __version__
from harpoon.adapters.workflow import WorkflowResult, WorkflowRunner, WorkflowStartError, WorkflowTimeout
from harpoon.catalog import load_catalog
from harpoon.models import (
    ACCEPTED_DEPLOYMENTS,
    DEPLOYMENT_ALIASES,
    MAX_BODY_BYTES,
    MAX_JSON_DEPTH,
    MAX_TEXT_BYTES,
    ProcessRequest,
    WorkflowInput,
)
from harpoon.settings import get_settings

logger = Logger()  # same service as the handler's: shares its keys and formatter
app = APIGatewayHttpResolver()

RETRY_AFTER_NO_CAPACITY_SECONDS = 5


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, details: dict | None = None, headers=None, *,
                 still_running: bool | None = False) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.details = details or {}
        self.headers = headers or {}
        # Whether the request's execution goes on (the wait ended, or another
        # run of the same request holds it: its quota slot must stay taken);
        # None: unknown (Step Functions could not be asked).
        self.still_running = still_running


def error_response(exc: ApiError) -> Response:
    if app.current_event.raw_path.startswith("/v1/"):  # the OpenAI-compatible routes answer in OpenAI's shape
        from harpoon.openai_compat import error_body

        body = error_body(exc.status, exc.code, exc.message, exc.details)
    else:
        body = {"error": {"code": exc.code, "message": exc.message, "details": exc.details}}
    return Response(exc.status, "application/json", json.dumps(body),
                    headers={"X-Request-Id": correlation_id(), **exc.headers})


def correlation_id() -> str:
    """The id every response carries as X-Request-Id and every log line as
    request_id: the Harpoon request id once there is one, else API Gateway's
    own id of the call (in its access logs too)."""
    context = app.context.get("request_id")
    if context:
        return context
    gateway = (app.current_event.raw_event.get("requestContext") or {}).get("requestId") or uuid.uuid4().hex
    return f"apigw-{gateway}"


def _set_request_id(request_id: str) -> None:
    app.append_context(request_id=request_id)
    logger.append_keys(request_id=request_id)


@app.exception_handler(ApiError)
def _api_error(exc: ApiError) -> Response:
    return error_response(exc)


@app.exception_handler(Exception)
def _unexpected(exc: Exception) -> Response:
    # Anything unplanned still answers in the documented error shape.
    logger.exception("unhandled error")
    return error_response(ApiError(500, "internal_error", "the request failed inside Harpoon", {"error": type(exc).__name__}))


@app.not_found
def _not_found(_exc) -> Response:
    event = app.current_event
    return error_response(
        ApiError(404, "not_found", f"no route for {event.request_context.http.method} {event.raw_path}")
    )


# Paths a caller reaches without an API key.
OPEN_PATHS = frozenset({"/health", "/openapi.json"})
_AUTH_MESSAGES = {
    "missing_api_key": "send your API key in the x-api-key header or as Authorization: Bearer <key>",
    "invalid_api_key": "this API key is not valid (a rotated key stops working within a minute)",
    "tenant_disabled": "this API key's tenant is disabled; ask your Harpoon administrator",
}


def require_tenant(app: APIGatewayHttpResolver, next_middleware):
    """Every route but OPEN_PATHS runs only for a tenant the authorizer found
    (harpoon.authorizer explains why the refusal is made here)."""
    logger.append_keys(request_id=correlation_id())
    if app.current_event.raw_path in OPEN_PATHS:
        return _with_request_id(next_middleware(app))
    verdict = ((app.current_event.raw_event.get("requestContext") or {}).get("authorizer") or {}).get("lambda") or {}
    reason = verdict.get("auth_error")
    if reason == "auth_unavailable":
        raise ApiError(503, "auth_unavailable", "API keys cannot be checked right now; retry shortly",
                       headers={"Retry-After": "1"})
    if reason or not verdict.get("tenant_id"):
        if not reason:
            logger.error("request without an authorizer verdict: is the route behind the authorizer?")
        reason = reason or "missing_api_key"
        raise ApiError(401, "unauthorized", _AUTH_MESSAGES.get(reason, "not authorized"), {"reason": reason},
                       headers={"WWW-Authenticate": 'Bearer realm="harpoon"'})
    app.append_context(tenant_id=verdict["tenant_id"], tier=verdict.get("tier") or "free")
    logger.append_keys(tenant_id=verdict["tenant_id"])
    return _with_request_id(next_middleware(app))


def _with_request_id(response: Response) -> Response:
    response.headers.setdefault("X-Request-Id", correlation_id())
    return response


app.use(middlewares=[require_tenant])


@app.get("/health")
def health() -> dict:
    return {"status": "healthy", "version": __version__, "deployment_modes": ["hostedai"]}


@app.get("/openapi.json")
def openapi_document() -> dict:
    from harpoon.openapi import document  # imported on first use: cold starts never pay for it

    return document()


@app.post("/v2/process")
def process() -> Response:
    started = time.perf_counter()
    request = parse_process_request(app.current_event.headers.get("content-type"), _raw_body())
    status, body, headers = serve(request, started, allow_async=True)
    return Response(status, "application/json", json.dumps(body), headers=headers)


@app.get("/v2/requests/<request_id>")
def request_status(request_id: str) -> Response:
    """An async request's status, for the tenant that made it only."""
    from harpoon import async_requests

    record = None
    if REQUEST_ID_PATTERN.fullmatch(request_id):
        record = async_requests.status(app.context["tenant_id"], request_id)
    if record is None:
        raise ApiError(404, "request_not_found",
                       f"no request {request_id!r} for this API key's tenant (or its result has expired)",
                       {"request_id": request_id})
    headers = {"X-Request-Id": request_id, **({"Retry-After": "1"} if record.status == "running" else {})}
    return Response(200, "application/json", json.dumps(async_requests.response_body(record)), headers=headers)


@app.post("/v1/chat/completions")
def chat_completions() -> Response:
    """OpenAI's chat completions over the same path as /v2/process (harpoon.openai_compat)."""
    from harpoon import openai_compat

    started = time.perf_counter()
    data = parse_json_object(app.current_event.headers.get("content-type"), _raw_body())
    try:
        fields = openai_compat.process_body(data)
    except openai_compat.ChatRequestError as exc:
        raise ApiError(400, exc.code, exc.message, {"param": exc.param}) from None
    request = validate_process_request(fields)
    _, body, headers = serve(request, started, allow_async=False)
    catalog = load_catalog()
    asked = request.max_tokens or catalog.models[body["route"]["requested_model"]].max_tokens
    max_tokens = min(asked, catalog.models[body["route"]["model"]].max_tokens)
    completion = openai_compat.completion(body, max_tokens=max_tokens, prompt_tokens=estimate_tokens(request.text))
    headers.update({"x-harpoon-model": body["route"]["model"],
                    "x-harpoon-degraded": "true" if body["route"]["degraded"] else "false"})
    return Response(200, "application/json", json.dumps(completion), headers=headers)


@app.get("/v1/models")
def list_models() -> dict:
    from harpoon.openai_compat import models

    return models(load_catalog())


def serve(request: ProcessRequest, started: float, *, allow_async: bool) -> tuple[int, dict, dict]:
    """Run a validated request for the calling tenant, with its
    Idempotency-Key if it sent one: (status, body, response headers). Async
    (asked for and allowed): 202 at once, the result at its status_url."""
    headers = app.current_event.headers
    tenant = Caller(app.context["tenant_id"], app.context["tier"])
    choice = resolve_model_choice(request)  # 400 before any work if the choice cannot be served
    from harpoon.async_requests import wants_async

    run_async = allow_async and wants_async(request.mode, headers.get("prefer"))
    idempotency_key = parse_idempotency_key(headers.get("idempotency-key"))
    settings = get_settings()
    # The request id (and execution name): with a key, it follows from the
    # tenant, key and body, so a retry after a 504 finds the first execution
    # instead of running a second one.
    request_id = (new_request_id(tenant.tenant_id) if idempotency_key is None
                  else idempotent_request_id(tenant.tenant_id, idempotency_key, request))
    _set_request_id(request_id)
    def run() -> dict:
        if run_async:
            return start_async(request, tenant, request_id, choice)
        return run_request(request, started, tenant, request_id, choice=choice)

    if idempotency_key is None:
        body = run()
        replayed = False
    else:
        from harpoon.adapters.idempotency import IdempotencyInProgress, IdempotencyMismatch, run_once

        try:
            body, replayed = run_once(
                table_name=settings.require("idempotency_table"),
                # Keys are the tenant's own: the same key from another tenant
                # is another record.
                key=f"{tenant.tenant_id}#{idempotency_key}",
                # The same key for another route or mode is another request (409), never a
                # replay of an answer in the wrong shape.
                body={**request.model_dump(mode="json"), "_async": run_async, "_openai": not allow_async},
                run=run,
                expires_after_seconds=settings.idempotency_ttl_seconds,
                lambda_context=app.lambda_context,
            )
        except IdempotencyMismatch:
            raise ApiError(
                409,
                "idempotency_key_reused",
                "this Idempotency-Key was used with a different body; use a new key for a new request",
                {"idempotency_key": idempotency_key},
            ) from None
        except IdempotencyInProgress:
            raise ApiError(
                409,
                "idempotency_in_progress",
                "the first request with this Idempotency-Key is still running; retry shortly",
                {"idempotency_key": idempotency_key},
                headers={"Retry-After": "1"},
            ) from None
    response_headers = {"X-Request-Id": body["request_id"]}
    if replayed:
        response_headers["Idempotent-Replayed"] = "true"
    if run_async:
        response_headers.update({"Location": body["status_url"], "Preference-Applied": "respond-async"})
        return 202, body, response_headers
    return 200, body, response_headers


def start_async(request: ProcessRequest, tenant: Caller, request_id: str, choice: dict) -> dict:
    """Take the tenant's slot and start the request on the STANDARD machine;
    the slot is given back when the request is finished (harpoon.async_requests)."""
    from harpoon import async_requests, deps

    taken = take_slot(deps.quotas(), tenant, request_id)
    try:
        body, started = async_requests.start(_workflow_input(request, tenant, request_id, choice),
                                             tenant.tenant_id, request_id)
    except ApiError:
        raise  # recorded as failed, its slot given back
    except BaseException:
        if taken:
            _give_back(deps.quotas(), tenant, request_id, None)
        raise
    if taken and not started:
        _give_back(deps.quotas(), tenant, request_id, None)  # this request ran before: not this call's slot
    return body


@dataclass(frozen=True)
class Caller:
    tenant_id: str
    tier: str


def run_request(request: ProcessRequest, started: float, tenant: Caller, request_id: str | None = None, *,
                choice: dict | None = None) -> dict:
    """Run the workflow for a validated request within the tenant's quotas:
    the success body, or ApiError. `choice` is the request's resolved model
    choice (resolved here if absent)."""
    base_id = request_id or new_request_id(tenant.tenant_id)
    choice = choice if choice is not None else resolve_model_choice(request)
    logger.append_keys(request_id=base_id)
    with quota_slot(tenant, base_id) as slot:
        body = _run_workflow(request, started, tenant, base_id, choice)
        slot.charge = usage_of(request.text, body)  # recorded as the slot is given back: one write
    emit_usage(tenant, body, slot.charge)
    return body


def new_request_id(tenant_id: str) -> str:
    # The tenant is part of every request id, hence of every lease and
    # execution name: no two tenants' records can share a key.
    return f"req-{tenant_id}-{uuid.uuid4().hex}"


@contextmanager
def quota_slot(tenant: Caller, request_id: str):
    """Hold one of the tenant's concurrent-allocation slots while the request
    runs (429 naming the limit if none is free, or a budget is spent). A
    request that times out keeps its slot: its workflow goes on and still
    holds a GPU; the slot expires after the workflow's longest life and the
    next acquire that finds the tenant full takes it back. Yields a holder
    whose `charge`, once set, is recorded with the give-back."""
    from harpoon import deps

    quotas = deps.quotas()
    taken = take_slot(quotas, tenant, request_id)
    running: bool | None = False  # is the request's execution still going on?
    holder = SlotHolder()
    try:
        yield holder
    except ApiError as exc:
        running = exc.still_running
        raise
    except BaseException:
        running = None
        raise
    finally:
        # A slot this call did not take is an earlier run's of the same
        # request: given back only once that run is known to be over.
        if running is False or (running is None and taken):
            _give_back(quotas, tenant, request_id, holder.charge)


def take_slot(quotas, tenant: Caller, request_id: str) -> bool:
    """One of the tenant's slots for this request (False: it holds one
    already), or the 429 / 503 that says why not."""
    from harpoon.adapters.quotas import QuotaBusy, QuotaExceeded
    from harpoon.tenancy import quota_for

    try:
        return quotas.acquire(tenant.tenant_id, request_id, quota_for(tenant.tier),
                              hold_seconds=get_settings().slot_hold_seconds)
    except QuotaExceeded as exc:
        raise ApiError(
            429, "quota_exceeded", f"{tenant.tier} tier: {exc}; retry after {exc.retry_after} s",
            {"limit": exc.limit, "limit_value": exc.limit_value, "current": exc.current, "tier": tenant.tier,
             "retry_after_seconds": exc.retry_after},
            headers={"Retry-After": str(exc.retry_after)},
        ) from None
    except QuotaBusy:
        raise ApiError(503, "quota_busy", "this tenant's quota could not be checked now; retry shortly",
                       headers={"Retry-After": "1"}) from None


@dataclass
class SlotHolder:
    charge: object = None  # adapters.quotas.Charge of the finished request


def _give_back(quotas, tenant: Caller, request_id: str, charge) -> None:
    """Free the slot and record the charge (if any); the answer stands
    whatever fails here: a slot not freed expires, a charge not recorded is
    logged."""
    try:
        quotas.release(tenant.tenant_id, request_id, charge=charge)
    except Exception:  # noqa: BLE001
        logger.exception("quota slot not given back or usage not recorded",
                         extra={"slot_request_id": request_id, "charge": charge and charge.__dict__})


def usage_of(text: str, body: dict):
    """What a finished request is charged: tokens (the prompt's, estimated at
    4 UTF-8 bytes a token, plus those generated), and the GPU-seconds its
    steps held the allocation, priced from the catalog."""
    from harpoon.adapters.quotas import Charge

    timings = body["timings_ms"]
    gpu_seconds = sum(timings.get(step) or 0.0 for step in ("allocate", "infer", "release")) / 1000
    price = load_catalog().models[body["route"]["model"]].price_per_gpu_second
    tokens = estimate_tokens(text) + int(body["inference"]["tokens_generated"])
    return Charge(tokens=tokens, gpu_seconds=gpu_seconds, cost_usd=gpu_seconds * price)


def estimate_tokens(text: str) -> int:
    """A prompt's tokens, estimated at 4 UTF-8 bytes a token (no tokenizer
    for HostedAI's models here)."""
    return max(1, len(text.encode("utf-8")) // 4)


def emit_usage(tenant: Caller, body: dict, charge) -> None:
    from harpoon.metrics import emit

    where = {"model": body["route"]["model"], "pool": body["allocation"]["pool_id"]}
    tags = {"tenant_id": tenant.tenant_id, "request_id": body["request_id"]}
    emit("GpuSeconds", charge.gpu_seconds, **where, metadata=tags)
    emit("GpuCost", charge.cost_usd, **where, metadata=tags)


def _workflow_input(request: ProcessRequest, tenant: Caller, request_id: str, choice: dict) -> dict:
    return WorkflowInput(request_id=request_id, text=request.text, max_tokens=request.max_tokens,
                         tenant_id=tenant.tenant_id, temperature=request.temperature, top_p=request.top_p,
                         stop=request.stop, **choice).model_dump(mode="json")


def _run_workflow(request: ProcessRequest, started: float, tenant: Caller, base_id: str, choice: dict) -> dict:
    settings = get_settings()
    runner = _runner()
    try:
        for attempt in range(1, 6):
            # A request id that already ran to an end (an idempotent retry
            # with EXPRESS, which cannot look an execution up by name) runs
            # again under a new one; STANDARD resolves this in the runner.
            request_id = base_id if attempt == 1 else f"{base_id}-{attempt}"
            _set_request_id(request_id)
            result = runner.run(request_id, _workflow_input(request, tenant, request_id, choice),
                                timeout_seconds=settings.sync_timeout_seconds)
            if result.error != "RequestAlreadyRunError":
                break
    except WorkflowStartError as exc:
        raise ApiError(
            503,
            "workflow_unavailable",
            f"Step Functions did not run or report the request workflow ({exc.reason}); retry later",
            {"request_id": request_id},
            headers={"Retry-After": "1"},
            still_running=None,
        ) from None
    except WorkflowTimeout:
        raise ApiError(
            504,
            "workflow_timeout",
            f"the request did not finish within {settings.sync_timeout_seconds:g} s; "
            "its GPU is still released when it ends",
            {"request_id": request_id},
            still_running=True,
        ) from None
    total_ms = round((time.perf_counter() - started) * 1000, 2)
    if result.status != "SUCCEEDED":
        raise workflow_failure(result, request_id)
    body = success_body(result.output or {}, total_ms)
    logger.info(
        "processed",
        extra={"model": body["route"]["model"], "degraded": body["route"]["degraded"],
               "tier": body["classification"]["tier"], "timings_ms": body["timings_ms"]},
    )
    return body


# --- pieces, public for the tests ----------------------------------------------


def parse_process_request(content_type: str | None, raw: bytes) -> ProcessRequest:
    return validate_process_request(parse_json_object(content_type, raw))


def parse_json_object(content_type: str | None, raw: bytes) -> dict:
    """A JSON object body, or the 4xx that says why not."""
    media_type = (content_type or "").split(";")[0].strip().lower()
    if media_type != "application/json":
        raise ApiError(
            415,
            "unsupported_media_type",
            "send the body as JSON with Content-Type: application/json",
            {"content_type": content_type},
        )
    if len(raw) > MAX_BODY_BYTES:
        raise ApiError(413, "payload_too_large", f"body is {len(raw)} bytes; the limit is {MAX_BODY_BYTES}")
    data = parse_json_body(raw)
    if not isinstance(data, dict):
        raise ApiError(400, "invalid_body", "body must be a JSON object")
    return data


def validate_process_request(data: dict) -> ProcessRequest:
    text = data.get("text")
    if isinstance(text, str) and len(text.encode("utf-8")) > MAX_TEXT_BYTES:
        raise ApiError(
            413,
            "text_too_large",
            f"text is {len(text.encode('utf-8'))} bytes in UTF-8; the limit is {MAX_TEXT_BYTES}",
            {"field": "text", "limit_bytes": MAX_TEXT_BYTES},
        )
    deployment = data.get("deployment")
    if deployment is not None:
        if not isinstance(deployment, str) or deployment.lower() not in DEPLOYMENT_ALIASES:
            raise ApiError(
                400,
                "unsupported_deployment",
                f"deployment {deployment!r} is not supported; accepted values: "
                f"{', '.join(ACCEPTED_DEPLOYMENTS)} (case-insensitive)",
                {"field": "deployment", "accepted": ACCEPTED_DEPLOYMENTS},
            )
    try:
        return ProcessRequest.model_validate(data)
    except ValidationError as exc:
        problems = [
            {"field": ".".join(str(p) for p in err["loc"]) or "body", "problem": err["msg"]}
            for err in exc.errors(include_url=False)
        ]
        fields = ", ".join(p["field"] for p in problems)
        raise ApiError(422, "validation_error", f"invalid field(s): {fields}", {"problems": problems}) from None


def parse_json_body(raw: bytes) -> object:
    """The body parsed as JSON, or a 400: not JSON, nested deeper than
    MAX_JSON_DEPTH, or holding a string that is not valid Unicode."""
    try:
        # Decoded as json.loads(bytes) would (UTF-8, -16 or -32), so that the
        # depth scan sees the same characters the parser will.
        text = raw.decode(json.detect_encoding(raw), "surrogatepass")
    except ValueError as exc:
        raise ApiError(400, "invalid_json", f"body is not valid JSON: {exc}") from None
    depth = json_depth_exceeds(text, MAX_JSON_DEPTH)
    if depth:
        raise ApiError(400, "json_too_deep", f"body nests arrays or objects deeper than {MAX_JSON_DEPTH} levels",
                       {"limit": MAX_JSON_DEPTH, "at_offset": depth})
    try:
        data = json.loads(text)
        # A lone surrogate ("\ud800") is legal JSON but not Unicode: no UTF-8
        # can carry it on to the workflow, so refuse it here.
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise ApiError(400, "invalid_json", "body is not valid JSON: a string holds a lone UTF-16 surrogate "
                       "(\\ud800-\\udfff without its pair), which is not Unicode") from None
    except ValueError as exc:
        raise ApiError(400, "invalid_json", f"body is not valid JSON: {exc}") from None
    return data


# A JSON string (skipped whole: brackets inside it do not nest) or a bracket.
# The closing quote is optional: an unterminated string then ends the scan in
# one pass, where a required quote would make the engine retry from every
# escaped quote (quadratic: 84 s on a 200 KB body of \").
_JSON_STRING_OR_BRACKET = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?|[\[\]{}]', re.DOTALL)


def json_depth_exceeds(text: str, limit: int) -> int:
    """Where (a character offset, 1-based) the nesting of arrays and objects
    first goes past `limit`, or 0. A flat scan, not a recursive parse: cheap
    on any input, and stops at the first bracket too many."""
    depth = 0
    for match in _JSON_STRING_OR_BRACKET.finditer(text):
        token = match.group()
        if token == "[" or token == "{":
            depth += 1
            if depth > limit:
                return match.end()
        elif token == "]" or token == "}":
            depth -= 1
    return 0


def resolve_model_choice(request: ProcessRequest) -> dict:
    """The caller's model choice as the workflow takes it ({model, requirements}),
    or a 400 that says what cannot be served and what can."""
    catalog = load_catalog()
    known = sorted(catalog.models)
    if request.requirements is not None:
        if request.model != "auto":
            raise ApiError(400, "conflicting_model_choice",
                           "give either a model or requirements, not both (model must be \"auto\" with requirements)",
                           {"fields": ["model", "requirements"]})
        wanted = request.requirements.model_dump()
        spec = catalog.smallest_meeting(**wanted)
        if spec is None:
            offered = [{"model": m.id, "tflops": m.min_tflops, "vram_mb": m.vram_mb} for m in catalog.models.values()]
            raise ApiError(400, "requirements_not_met",
                           f"no catalog model meets min_tflops={wanted['min_tflops']:g} and "
                           f"min_vram_mb={wanted['min_vram_mb']}; the catalog offers {offered}",
                           {"field": "requirements", "requirements": wanted, "catalog": offered})
        return {"model": spec.id, "requirements": wanted}
    if request.model != "auto" and request.model not in catalog.models:
        raise ApiError(400, "unknown_model",
                       f"model {request.model!r} is not in the catalog; use \"auto\" or one of {known}",
                       {"field": "model", "accepted": ["auto", *known]})
    return {"model": request.model, "requirements": None}


def idempotent_request_id(tenant_id: str, key: str, request: ProcessRequest) -> str:
    digest = hashlib.sha256(f"{tenant_id}\n{key}\n{request.model_dump_json()}".encode("utf-8")).hexdigest()
    return f"req-{tenant_id}-{digest[:32]}"


IDEMPOTENCY_KEY_PATTERN = re.compile(r"[\x21-\x7e]{1,255}")  # printable ASCII, no spaces
REQUEST_ID_PATTERN = re.compile(r"req-[a-z0-9][a-z0-9-]{0,31}-[0-9a-f]{32}")  # new_request_id / idempotent_request_id


def parse_idempotency_key(raw: str | None) -> str | None:
    if raw is None:
        return None
    if not IDEMPOTENCY_KEY_PATTERN.fullmatch(raw):
        raise ApiError(
            400,
            "invalid_idempotency_key",
            "Idempotency-Key must be 1 to 255 printable ASCII characters without spaces",
            {"header": "Idempotency-Key"},
        )
    return raw


# The workflow error names (Lambda errorType / States.*) mapped to HTTP.
_UPSTREAM_502 = {
    "UpstreamUnavailableError",
    "UpstreamTimeoutError",
    "UpstreamConnectionError",
    "UpstreamRejectedError",
    "UpstreamAuthError",
}
_BUSY_503 = {"NoCapacityError", "UpstreamRateLimitedError", "CircuitOpenError"}
_BUSY_CODES = {"NoCapacityError": "no_capacity", "UpstreamRateLimitedError": "upstream_busy", "CircuitOpenError": "circuit_open"}
_TIMEOUT_504 = {"StepTimeoutError", "Sandbox.Timedout"}


def workflow_failure(result: WorkflowResult, request_id: str) -> ApiError:
    error = result.error or result.status
    message = _cause_message(result.cause)
    details = {"request_id": request_id, "error": error}
    if error in _BUSY_503:
        hinted = re.search(r"retry after (\d+) s", message)
        retry_after = int(hinted.group(1)) if hinted else RETRY_AFTER_NO_CAPACITY_SECONDS
        return ApiError(
            503,
            _BUSY_CODES[error],
            f"no model can serve this request now: {message}",
            {**details, "retry_after_seconds": retry_after},
            headers={"Retry-After": str(retry_after)},
        )
    if error in _UPSTREAM_502:
        return ApiError(502, "upstream_error", f"HostedAI failed after retries: {message}", details)
    if error == "RequestInFlightError":
        return ApiError(
            409,
            "idempotency_in_progress",
            "the first request with this Idempotency-Key is still running; retry shortly",
            details,
            headers={"Retry-After": "1"},
            still_running=True,
        )
    if error in _TIMEOUT_504 or result.status == "TIMED_OUT":
        what = "the request's workflow" if result.status == "TIMED_OUT" else "a step of the request"
        return ApiError(504, "workflow_timeout", f"{what} timed out", details)
    if result.status == "ABORTED":
        return ApiError(503, "workflow_aborted", "the request's workflow was stopped before it finished; retry",
                        details, headers={"Retry-After": "1"})
    if error.startswith("Lambda.") or error in ("Runtime.ExitError", "LeaseLostError"):
        # The Lambda service or a step's runtime failed even after retries, or
        # the execution stalled so long that its GPU was reclaimed:
        # infrastructure, not the request. Worth retrying later.
        return ApiError(
            503, "service_unavailable", "a step of the request could not run; retry shortly", details,
            headers={"Retry-After": "1"},
        )
    logger.error("workflow failed", extra={"error": error, "cause": result.cause})
    return ApiError(500, "internal_error", "the request failed inside Harpoon", details)


def success_body(output: dict, total_ms: float) -> dict:
    classify, allocation, inference = output["classify"], output["allocation"], output["inference"]
    release = output.get("release") or {}
    return {
        "request_id": output["request_id"],
        "classification": classify["classification"],
        # The model that served: the classifier's choice, or a labelled fallback.
        "route": {
            "model": allocation["model"],
            "requested_model": classify["route"]["model"],
            "degraded": bool(allocation.get("degraded")),
            "reason": allocation.get("reason"),
            # How the model was chosen (classifier / explicit / requirements), in words.
            "basis": classify["route"].get("basis", "classifier"),
            "explanation": classify["route"].get("explanation"),
        },
        "allocation": {
            "allocation_id": allocation["allocation_id"],
            "assigned_gpu": allocation["assigned_gpu"],
            "pool_id": allocation["pool_id"],
            # True: a warm allocation was reused, no HostedAI allocate call was made.
            "warm": bool(allocation.get("warm")),
        },
        "inference": {
            "text": inference["text"],
            "model_used": inference["model_used"],
            "tokens_generated": inference["tokens_generated"],
            "generation_time_ms": inference["generation_time_ms"],
        },
        "deployment_used": "hostedai",
        "release": {"status": release.get("status", "unknown"), "released": bool(release.get("released"))},
        "timings_ms": {
            "classify": classify.get("elapsed_ms"),
            "allocate": allocation.get("elapsed_ms"),
            "infer": inference.get("elapsed_ms"),
            "release": release.get("elapsed_ms"),
            "total": total_ms,
        },
    }


def _cause_message(cause: str | None) -> str:
    """A Lambda failure's Cause is the JSON error payload; keep its message only
    (never the stack trace)."""
    if not cause:
        return "no detail"
    try:
        parsed = json.loads(cause)
    except ValueError:
        return cause[:300]
    if isinstance(parsed, dict):
        return str(parsed.get("errorMessage") or parsed.get("Error") or "no detail")[:300]
    return str(parsed)[:300]


def _raw_body() -> bytes:
    event = app.current_event
    body = event.body or ""
    if event.is_base64_encoded:
        import base64

        return base64.b64decode(body)
    return body.encode("utf-8")


def _runner() -> WorkflowRunner:
    from harpoon.adapters import aws

    settings = get_settings()
    # EXPRESS answers on the StartSyncExecution call: its read timeout bounds
    # the wait, and it is never retried (that would start a second execution).
    express = settings.state_machine_type == "EXPRESS"
    sfn = aws.client("stepfunctions", read_timeout=settings.sync_timeout_seconds, max_attempts=1 if express else 3)
    return WorkflowRunner(sfn, settings.require("state_machine_arn"), settings.state_machine_type)
