"""HTTP client for the HostedAI compute layer (../shared/brief/hostedai-contract.md).

The whole contract lives here, so re-aligning with the provider's final API
touches only this module. Retries are NOT done here: the state machine owns
retry and backoff, and this client only classifies failures into the typed
errors of harpoon.errors (transient vs permanent).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from harpoon.errors import (
    NoCapacityError,
    UpstreamAuthError,
    UpstreamConnectionError,
    UpstreamError,
    UpstreamRateLimitedError,
    UpstreamRejectedError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
)

if TYPE_CHECKING:
    import httpx


@dataclass(frozen=True)
class Allocation:
    allocation_id: str
    assigned_gpu: str
    status: str
    expires_at: str | None


@dataclass(frozen=True)
class InferenceResult:
    text: str
    tokens_used: int
    duration_ms: float
    model_used: str


@dataclass(frozen=True)
class Timeouts:
    connect: float = 2.0
    default: float = 10.0  # allocate, release
    inference: float = 25.0


class HostedAIClient:
    def __init__(
        self,
        base_url: str,
        api_key: Callable[..., str],
        *,
        timeouts: Timeouts = Timeouts(),
        transport: httpx.BaseTransport | None = None,
        user_agent: str = "harpoon",
    ) -> None:
        # api_key(refresh=False) is a callable so the secret is fetched (and
        # cached) by the caller's policy and never stored on a long-lived
        # object; refresh=True must bypass any cache (the key was rotated).
        self._api_key = api_key
        self._timeouts = timeouts
        self._base_url, self._transport, self._user_agent = base_url.rstrip("/"), transport, user_agent
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()

    @property
    def http(self) -> httpx.Client:
        """The HTTP client, built on the first call. Importing httpx and
        building the client (its TLS context) costs a cold start ~50 ms that a
        request which never calls HostedAI (a warm claim, a warm release, an
        idle sweep) has no use for."""
        if self._client is None:
            with self._lock:
                if self._client is None:
                    import httpx

                    self._client = httpx.Client(
                        base_url=self._base_url,
                        transport=self._transport,
                        timeout=httpx.Timeout(self._timeouts.default, connect=self._timeouts.connect),
                        headers={"User-Agent": self._user_agent, "Accept": "application/json"},
                    )
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    # --- the three calls -----------------------------------------------------

    def allocate(
        self,
        *,
        pool_id: str,
        requirements: dict,
        duration_seconds: int,
        idempotency_key: str,
        preemptible: bool = False,
        metadata: dict | None = None,
    ) -> Allocation:
        body = {
            "pool_id": pool_id,
            "requirements": requirements,
            "duration_seconds": duration_seconds,
            "preemptible": preemptible,
            "metadata": metadata or {},
        }
        headers = {"Idempotency-Key": idempotency_key}
        if (metadata or {}).get("request_id"):
            headers["X-Request-Id"] = str(metadata["request_id"])  # the correlation id, as on every call
        data = self._call("POST", "/v1/allocate", "allocate", json=body, headers=headers)
        try:
            return Allocation(
                allocation_id=str(data["allocation_id"]),
                assigned_gpu=str(data["assigned_gpu"]),
                status=str(data.get("status", "active")),
                expires_at=data.get("expires_at"),
            )
        except (KeyError, TypeError):
            raise UpstreamRejectedError("allocate answered without allocation_id/assigned_gpu") from None

    def infer(
        self,
        *,
        allocation_id: str,
        model: str,
        prompt: str,
        max_tokens: int,
        temperature: float | None = None,
        top_p: float | None = None,
        stop_sequences: list[str] | None = None,
        request_id: str | None = None,
    ) -> InferenceResult:
        parameters = {"max_tokens": max_tokens}
        for key, value in (("temperature", temperature), ("top_p", top_p), ("stop_sequences", stop_sequences)):
            if value is not None:
                parameters[key] = value
        body = {"allocation_id": allocation_id, "model": model, "prompt": prompt, "parameters": parameters}
        import httpx  # loaded once a call is made (see http)

        timeout = httpx.Timeout(self._timeouts.inference, connect=self._timeouts.connect)
        # X-Request-Id: HostedAI's logs (and the emulator's audit) can tie a call to a Harpoon request.
        headers = {"X-Request-Id": request_id} if request_id else {}
        data = self._call("POST", "/v1/inference", "inference", json=body, timeout=timeout, headers=headers)
        try:
            return InferenceResult(
                text=str(data["text"]),
                tokens_used=int(data["tokens_used"]),
                duration_ms=float(data.get("duration_ms", 0.0)),
                model_used=str(data.get("model_used") or model),
            )
        except (KeyError, TypeError, ValueError):
            raise UpstreamRejectedError("inference answered without text/tokens_used") from None

    def release(self, allocation_id: str, *, request_id: str | None = None) -> bool:
        """True when released now; False when HostedAI says it is already gone
        (404), which for a release is success. `request_id`: the Harpoon
        request (or lease) it is released for, sent as X-Request-Id."""
        headers = {"X-Request-Id": request_id} if request_id else {}
        try:
            self._call("DELETE", f"/v1/allocate/{allocation_id}", "release", headers=headers)
        except UpstreamRejectedError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    # --- transport and error mapping ------------------------------------------

    def _call(self, method: str, path: str, operation: str, **kwargs) -> dict:
        extra_headers = kwargs.pop("headers", {})
        response = self._send(method, path, operation, self._api_key(), extra_headers, kwargs)
        if response.status_code == 401:
            # The cached key may predate a rotation: fetch it afresh, once.
            # Safe to repeat: a 401 did nothing, and allocate is idempotent.
            response = self._send(method, path, operation, self._api_key(refresh=True), extra_headers, kwargs)
        if response.status_code == 204:
            return {}
        if response.is_success:
            try:
                data = response.json()
            except ValueError:
                raise UpstreamRejectedError(
                    f"HostedAI {operation} answered {response.status_code} with a body that is not JSON",
                    status=response.status_code,
                ) from None
            if not isinstance(data, dict):
                raise UpstreamRejectedError(
                    f"HostedAI {operation} answered a non-object body", status=response.status_code
                )
            return data
        raise error_for_response(operation, response)

    def _send(self, method, path, operation, key, extra_headers, kwargs) -> httpx.Response:
        import httpx  # loaded once a call is made (see http)

        headers = {"Authorization": f"Bearer {key}", **extra_headers}
        try:
            return self.http.request(method, path, headers=headers, **kwargs)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            # Never connected: the request cannot have reached HostedAI.
            raise UpstreamConnectionError(
                f"HostedAI {operation} failed to connect ({type(exc).__name__})", details={"operation": operation}
            ) from None
        except httpx.TimeoutException as exc:
            raise UpstreamTimeoutError(
                f"HostedAI {operation} timed out ({type(exc).__name__})", details={"operation": operation}
            ) from None
        except httpx.TransportError as exc:
            # Sent, then the connection dropped (read/write error, server
            # disconnected): HostedAI may have done the work. Unknown outcome.
            raise UpstreamUnavailableError(
                f"HostedAI {operation} connection dropped ({type(exc).__name__})", details={"operation": operation}
            ) from None


def error_for_response(operation: str, response: httpx.Response) -> UpstreamError:
    """Map a non-2xx HostedAI answer to the typed error the workflow acts on."""
    status = response.status_code
    message, upstream_code = _error_fields(response)
    text = f"HostedAI {operation} answered {status}: {message}"
    kwargs = {"status": status, "upstream_code": upstream_code, "details": {"operation": operation}}
    if status == 429:
        return UpstreamRateLimitedError(text, retry_after=_retry_after(response), **kwargs)
    if status == 503 and upstream_code == "no_capacity":
        return NoCapacityError(text, retry_after=_retry_after(response), **kwargs)
    if status >= 500:
        return UpstreamUnavailableError(text, retry_after=_retry_after(response), **kwargs)
    if status in (401, 403):
        return UpstreamAuthError(text, **kwargs)
    return UpstreamRejectedError(text, **kwargs)


def _error_fields(response: httpx.Response) -> tuple[str, str | None]:
    try:
        body = response.json()
    except ValueError:
        return (response.reason_phrase or "error", None)
    if not isinstance(body, dict):
        return (response.reason_phrase or "error", None)
    message = body.get("error") or body.get("message") or response.reason_phrase or "error"
    code = body.get("code")
    return (str(message)[:500], str(code) if code is not None else None)


def _retry_after(response: httpx.Response) -> float | None:
    raw = response.headers.get("Retry-After")
    try:
        return float(raw) if raw is not None else None
    except ValueError:
        return None
