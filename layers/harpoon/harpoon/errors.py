"""Every error a step can raise, in one module.

Lambda reports a raised exception's class name as ``errorType`` and the state
machine's ``ErrorEquals`` matches on it, so these class names are a contract
with ``statemachine/harpoon.asl.json``: rename one and the template tests fail.

Two families matter to the workflow:
- ``TransientUpstreamError`` subclasses: a retry can help (429, 5xx, timeouts,
  connection errors). The ASL retries them with backoff.
- ``PermanentUpstreamError`` subclasses: the same call will fail again (400,
  401, 403, 404, 409, 422). Never retried.
"""

from __future__ import annotations


class HarpoonError(Exception):
    """Base class. ``code`` is the stable machine-readable name in API errors."""

    code = "internal_error"

    def __init__(self, message: str, *, details: dict | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}


# --- Upstream (HostedAI) --------------------------------------------------


class UpstreamError(HarpoonError):
    """Any failure talking to HostedAI. ``status`` is the HTTP status, if any."""

    code = "upstream_error"

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        upstream_code: str | None = None,
        retry_after: float | None = None,
        details: dict | None = None,
    ) -> None:
        merged = {"status": status, "upstream_code": upstream_code}
        merged.update(details or {})
        super().__init__(message, details={k: v for k, v in merged.items() if v is not None})
        self.status = status
        self.upstream_code = upstream_code
        self.retry_after = retry_after


class TransientUpstreamError(UpstreamError):
    """A retry may succeed. Abstract: raise a subclass."""


class UpstreamUnavailableError(TransientUpstreamError):
    """HostedAI answered 500, 502, 503 (other than no capacity) or 504."""

    code = "upstream_unavailable"


class NoCapacityError(TransientUpstreamError):
    """HostedAI answered 503 ``no_capacity``: the pool has no GPU free now."""

    code = "no_capacity"


class UpstreamRateLimitedError(TransientUpstreamError):
    """HostedAI answered 429."""

    code = "upstream_rate_limited"


class UpstreamTimeoutError(TransientUpstreamError):
    """No answer within the client timeout (the call may still have happened)."""

    code = "upstream_timeout"


class UpstreamConnectionError(TransientUpstreamError):
    """Could not connect to HostedAI at all."""

    code = "upstream_connection_error"


class PermanentUpstreamError(UpstreamError):
    """The same call will fail again. Abstract: raise a subclass."""


class UpstreamRejectedError(PermanentUpstreamError):
    """HostedAI answered 400, 404, 409 or 422 (or a body we cannot parse)."""

    code = "upstream_rejected"


class UpstreamAuthError(PermanentUpstreamError):
    """HostedAI answered 401 or 403: our credentials are wrong or lack rights."""

    code = "upstream_auth_failed"


# --- Our own steps ----------------------------------------------------------


class StepInputError(HarpoonError):
    """A step received an input that does not match its model (a bug upstream
    of the step, never retried)."""

    code = "invalid_step_input"


class ConfigurationError(HarpoonError):
    """A required setting or secret is missing or malformed."""

    code = "configuration_error"


class CircuitOpenError(HarpoonError):
    """Every model that could serve the request has its circuit open (and none
    lacked only capacity). Not retried: the breakers say when to come back,
    in the message as "(retry after N s)"."""

    code = "circuit_open"


class LeaseConflictError(HarpoonError):
    """A lease is not in the state this step expects (another execution or the
    cleanup owns it)."""

    code = "lease_conflict"


class RequestInFlightError(LeaseConflictError):
    """Another execution is running this same request (a client retried its
    Idempotency-Key while the first run goes on)."""

    code = "request_in_flight"


class RequestAlreadyRunError(LeaseConflictError):
    """Another execution already finished this same request; it may be run
    again under a new request id."""

    code = "request_already_run"


class LeaseLostError(LeaseConflictError):
    """The lease expired and the cleanup reclaimed its GPU before this step
    could renew it: the allocation must not be used. Never retried."""

    code = "lease_lost"


TRANSIENT_ERRORS: tuple[type[TransientUpstreamError], ...] = (
    UpstreamUnavailableError,
    NoCapacityError,
    UpstreamRateLimitedError,
    UpstreamTimeoutError,
    UpstreamConnectionError,
)


# --- Raised by the state machine itself (Fail states), never by Python ------
# A Fail state may not re-raise a reserved States.* name, so the ASL renames
# them; the API maps these names to HTTP like the others.


class StepTimeoutError(HarpoonError):
    """A Task exceeded its TimeoutSeconds (States.Timeout)."""

    code = "step_timeout"


class WorkflowError(HarpoonError):
    """Any other States.* failure of the workflow itself."""

    code = "workflow_error"
