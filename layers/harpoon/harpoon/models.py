"""pydantic models for the API body and every step's input and output.

The step models are the contract between the state machine (which shapes each
Task's Payload with Parameters) and the handlers; events/*.json are validated
against them by the tests.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, field_validator

# Text is capped in UTF-8 bytes (not characters) so that the workflow payload,
# which carries the text once plus at most a few KB of results, stays far below
# Step Functions' 256 KB limit: 32 KiB text + ~8 KB generated text + metadata.
MAX_TEXT_BYTES = 32 * 1024
# The largest body we parse at all; larger is 413 before any JSON work. JSON
# may escape every byte of the text as \uXXXX (6 bytes), so allow for that.
MAX_BODY_BYTES = 6 * MAX_TEXT_BYTES + 4 * 1024
MAX_TOKENS_LIMIT = 1024
# Stop sequences: OpenAI's limit (HostedAI takes up to 16).
MAX_STOP_SEQUENCES = 4
MAX_STOP_LENGTH = 200
# The deepest JSON nesting a body may have (a valid one needs 2). Checked by a
# flat scan before parsing: json.loads recurses, and a body of 100k '[' would
# otherwise end in a RecursionError, not a 400.
MAX_JSON_DEPTH = 32

DEPLOYMENT_ALIASES = {"hostedai": "hostedai", "hosted_ai": "hostedai"}
ACCEPTED_DEPLOYMENTS = ["HostedAI", "hostedai", "hosted_ai"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _StepModel(BaseModel):
    # Steps tolerate extra keys so an older handler survives a newer ASL.
    model_config = ConfigDict(extra="ignore", frozen=True)


class Requirements(_Strict):
    min_tflops: float = Field(default=0.0, ge=0, le=10_000)
    min_vram_mb: StrictInt = Field(default=0, ge=0, le=10_000_000)


class ProcessRequest(_Strict):
    """Body of POST /v2/process."""

    text: StrictStr = Field(min_length=1, description=f"Prompt; at most {MAX_TEXT_BYTES} UTF-8 bytes.")
    deployment: StrictStr | None = Field(
        default=None, description="HostedAI (any case; hosted_ai accepted). Defaults to HostedAI."
    )
    max_tokens: StrictInt | None = Field(default=None, ge=1, le=MAX_TOKENS_LIMIT)
    model: StrictStr = Field(default="auto", description='"auto" (the classifier decides) or a catalog model id.')
    requirements: Requirements | None = Field(
        default=None, description="Custom requirements: the smallest catalog model that meets them serves."
    )
    mode: Literal["sync", "async"] | None = Field(
        default=None, description='"async" (or the header Prefer: respond-async): 202 at once, the result at '
                                  'GET /v2/requests/{request_id}.')
    # Sampling, passed to HostedAI's inference as they are.
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    stop: list[Annotated[StrictStr, Field(min_length=1, max_length=MAX_STOP_LENGTH)]] | None = Field(
        default=None, max_length=MAX_STOP_SEQUENCES, description="Stop sequences: generation ends before the first."
    )

    @field_validator("temperature", "top_p", mode="before")
    @classmethod
    def _a_number(cls, value: object) -> object:
        # JSON numbers only: "0.5" or true are not a temperature.
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise ValueError("must be a number")
        return value

    @field_validator("text")
    @classmethod
    def _text_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("text must contain non-whitespace characters")
        return value


# --- Workflow input and steps --------------------------------------------------


class WorkflowInput(_StepModel):
    """What the API starts the state machine with."""

    request_id: str = Field(min_length=1, max_length=80)
    text: str = Field(min_length=1)
    deployment: Literal["hostedai"] = "hostedai"
    max_tokens: int | None = Field(default=None, ge=1, le=MAX_TOKENS_LIMIT)
    # Whose request this is (set by the API from the authorizer's verdict):
    # every step logs it, and warm allocations are only reused within a tenant.
    tenant_id: str = Field(default="default", min_length=1, max_length=64)
    # The caller's model choice, resolved by the API: "auto", or a catalog id
    # (named, or the smallest meeting `requirements`).
    model: str = "auto"
    requirements: dict | None = None
    # Sampling for Infer (null: HostedAI's defaults).
    temperature: float | None = None
    top_p: float | None = None
    stop: list[str] | None = None
    # Always present (null until Allocate succeeds) so Release's Parameters can
    # read $.allocation on every path.
    allocation: dict | None = None


class ClassifyInput(_StepModel):
    request_id: str
    tenant_id: str = "default"
    text: str = Field(min_length=1)
    max_tokens: int | None = Field(default=None, ge=1, le=MAX_TOKENS_LIMIT)
    model: str = "auto"
    requirements: dict | None = None


class ClassificationOut(_StepModel):
    tier: Literal["simple", "complex"]
    is_complex: bool
    score: float = Field(ge=0, le=1)
    confidence: float = Field(ge=0, le=1)
    reasons: list[str]


class RouteOut(_StepModel):
    model: str
    degraded: bool = False
    reason: str | None = None
    # How the model was chosen: "classifier", "explicit" or "requirements".
    basis: Literal["classifier", "explicit", "requirements"] = "classifier"
    explanation: str | None = None


class ClassifyOutput(_StepModel):
    classification: ClassificationOut
    route: RouteOut
    max_tokens: int = Field(ge=1, description="Effective limit: the request's, capped by the model's.")
    elapsed_ms: float


class AllocateInput(_StepModel):
    request_id: str
    model: str
    # The execution that owns the lease ($$.Execution.Id): a second execution
    # for the same request (a client retry) never touches the first one's GPU.
    execution_id: str | None = None
    tenant_id: str = "default"


class AllocateOutput(_StepModel):
    lease_id: str
    allocation_id: str
    assigned_gpu: str
    pool_id: str
    model: str  # the model allocated for: the classifier's choice or a fallback
    degraded: bool = False
    reason: str | None = None  # why a fallback was taken
    expires_at: str | None = None  # HostedAI's expiry of the allocation
    tenant_id: str = "default"
    lease_expires_at: int | None = None  # epoch s: the lease needs renewing before then
    warm: bool = False  # claimed from the warm pool: no HostedAI allocate call
    breaker_clean_at: float | None = None  # epoch s: the model's breaker was seen clean then
    elapsed_ms: float


class InferInput(_StepModel):
    request_id: str
    tenant_id: str = "default"
    execution_id: str | None = None
    allocation_id: str
    lease_expires_at: int | None = None  # as Allocate left it; None: renew before the call
    breaker_clean_at: float | None = None  # Allocate's CircuitBreaker.clean_at
    pool_id: str
    model: str
    prompt: str = Field(min_length=1)
    max_tokens: int = Field(ge=1, le=MAX_TOKENS_LIMIT)
    temperature: float | None = None
    top_p: float | None = None
    stop: list[str] | None = None


class InferOutput(_StepModel):
    text: str
    model_used: str
    tokens_generated: int
    generation_time_ms: float
    elapsed_ms: float


class ReleaseInput(_StepModel):
    request_id: str
    tenant_id: str = "default"
    execution_id: str | None = None
    # Allocate's output, or null when Allocate never succeeded.
    allocation: AllocateOutput | None = None
    # Only the success path sets it: a GPU is kept warm only after a clean run.
    keep_warm: bool = False


class ReleaseOutput(_StepModel):
    status: Literal["released", "already_gone", "kept_warm", "nothing_to_release"]
    released: bool
    elapsed_ms: float


def parse_step_input(model: type[BaseModel], event: object) -> BaseModel:
    """Validate a step's event, raising StepInputError (a named, never-retried
    error in the ASL) instead of pydantic's ValidationError."""
    from pydantic import ValidationError

    from harpoon.errors import StepInputError

    try:
        return model.model_validate(event)
    except ValidationError as exc:
        problems = [
            {"field": ".".join(str(p) for p in err["loc"]), "problem": err["msg"]} for err in exc.errors()
        ]
        raise StepInputError(f"invalid {model.__name__}: {problems}", details={"problems": problems}) from None
