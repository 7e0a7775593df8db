"""HTTP emulator of the HostedAI GPU-as-a-Service API (standard library only).

Used by ``make local`` (``python -m local.emulator --port 8090 ...``) and by the
tests (``run_in_thread(api_key=..., time_scale=0)`` on a random free port).

Public API
----------
* ``HostedAIEmulator`` -- all state and logic; usable without HTTP through
  ``handle(method, path, headers, body)`` (full HTTP semantics: auth, faults,
  routing) or the direct methods ``allocate``/``inference``/``release``/...
  (which raise ``EmulatorError``).
* ``make_server(emulator, host, port)`` -> ``ThreadingHTTPServer``.
* ``run_in_thread(api_key, host, port, **emulator_kwargs)`` -> ``RunningEmulator``
  (``.base_url``, ``.emulator``, ``.stop()``, context manager).

The contract
------------
Every ``/v1`` call needs ``Authorization: Bearer <key>``.

* ``POST /v1/allocate`` -> 201 (200 on an idempotent replay)
* ``POST /v1/inference`` -> 200
* ``DELETE /v1/allocate/{allocation_id}`` -> 204
* ``GET /health`` -> 200 (no auth)

Errors are ``{"error": <message>, "code": <snake_code>, "details": {...}}``.

Admin surface (no auth): ``GET /_emulator/allocations``, ``GET|POST
/_emulator/faults``, ``POST /_emulator/reset``, ``GET /_emulator/stats``.

Capacity model
--------------
A non-preemptible allocation reserves ``max_vram_mb`` (or ``min_vram_mb``)
exclusively: it fits a GPU when ``physical - used_by_all >= requested``.
A preemptible allocation reserves ``min_vram_mb`` and may overcommit the VRAM
not held by non-preemptible allocations: it fits when
``overcommit_ratio * (physical - used_non_preemptible) - used_preemptible >=
requested``. (Preemption itself is not modelled: an overcommitted GPU simply
refuses non-preemptible work until preemptible allocations go away.) A single
allocation never exceeds the GPU's physical VRAM.

Faults
------
For each ``/v1`` call (after the auth check): the extra ``latency_ms`` is slept
first (never scaled); then ``fail_next`` (deterministic), else ``error_rate``,
else ``timeout_rate``, else ``lost_rate`` is drawn from a seeded ``random.Random``. An injected
error answers ``status`` without doing anything. An injected timeout performs
the call normally (so an allocation IS created, a release IS done: a lost
response), then hangs ``hang_ms`` and answers 504. Errors answer with the
fault's ``code`` (default ``injected_fault``; e.g. ``no_capacity`` with status
503 is what a full pool answers); timeouts with ``injected_fault``.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import math
import os
import re
import random
import signal
import socket
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterable, Mapping
from urllib.parse import unquote, urlsplit

__all__ = [
    "API_KEY_ENV",
    "DEFAULT_GPUS",
    "DEFAULT_POOL_ID",
    "EmulatorError",
    "Gpu",
    "HostedAIEmulator",
    "Response",
    "RunningEmulator",
    "load_gpus",
    "main",
    "make_server",
    "run_in_thread",
]

API_KEY_ENV = "HOSTED_AI_EMULATOR_API_KEY"
DEFAULT_POOL_ID = "gpu-pool-1"
ENDPOINTS = ("allocate", "inference", "release")

MAX_BODY_BYTES = 1 << 20
MAX_IDEMPOTENCY_KEY_LENGTH = 64
DEFAULT_MAX_TOKENS = 128
MAX_TOKENS_LIMIT = 4096
MIN_GENERATED_TOKENS = 16
MAX_STOP_SEQUENCES = 16
MAX_MODEL_LENGTH = 128
DEFAULT_DURATION_SECONDS = 300
MAX_DURATION_SECONDS = 7 * 24 * 3600
DEFAULT_FAULT_STATUS = 503
DEFAULT_HANG_MS = 3000.0
MAX_FAULT_DELAY_MS = 600_000.0

# Modelled latencies, in milliseconds before time_scale.
ALLOCATE_BASE_MS = 15.0
ALLOCATE_MS_PER_GB = 1.5
INFERENCE_BASE_MS = 10.0
INFERENCE_MS_PER_TOKEN_PER_GB = 0.05
RELEASE_MS = 5.0


# --- pool ----------------------------------------------------------------------


@dataclass(frozen=True)
class Gpu:
    id: str
    name: str
    vram_mb: int
    tflops: float

    def to_dict(self) -> dict:
        return {"id": self.id, "name": self.name, "vram_mb": self.vram_mb, "tflops": self.tflops}


DEFAULT_GPUS: tuple[Gpu, ...] = (
    *(Gpu(f"gpu-a100-{i}", "a100-80gb", 81920, 60.0) for i in range(2)),
    *(Gpu(f"gpu-l4-{i}", "l4-24gb", 24576, 30.0) for i in range(4)),
)


def load_gpus(spec: Any) -> list[Gpu]:
    """GPUs from a list of ``Gpu``/dicts, or ``{"gpus": [...]}``.

    A dict entry has ``vram_mb`` and ``tflops``, plus ``id`` and ``name``
    (defaults derived from the position), and an optional ``count``: then
    ``count`` GPUs are made, with ids ``<id_prefix or id>-0`` ... ``-<count-1>``.
    Raises ``ValueError`` on anything malformed.
    """
    if isinstance(spec, Mapping):
        spec = spec.get("gpus")
    if not isinstance(spec, (list, tuple)) or not spec:
        raise ValueError("GPU spec must be a non-empty list (or an object with a non-empty 'gpus' list)")
    gpus: list[Gpu] = []
    for index, entry in enumerate(spec):
        if isinstance(entry, Gpu):
            gpus.append(entry)
            continue
        if not isinstance(entry, Mapping):
            raise ValueError(f"gpus[{index}] must be an object")
        vram = entry.get("vram_mb")
        tflops = entry.get("tflops")
        if not _is_int(vram) or vram <= 0:
            raise ValueError(f"gpus[{index}].vram_mb must be a positive integer")
        if not _is_number(tflops) or tflops <= 0:
            raise ValueError(f"gpus[{index}].tflops must be a positive number")
        name = entry.get("name") or f"gpu-{vram // 1024}gb"
        count = entry.get("count")
        if count is None:
            gpu_id = entry.get("id") or f"gpu-{index}"
            gpus.append(Gpu(str(gpu_id), str(name), int(vram), float(tflops)))
        else:
            if not _is_int(count) or count <= 0:
                raise ValueError(f"gpus[{index}].count must be a positive integer")
            prefix = entry.get("id_prefix") or entry.get("id") or f"gpu-{index}"
            gpus.extend(Gpu(f"{prefix}-{k}", str(name), int(vram), float(tflops)) for k in range(count))
    ids = [g.id for g in gpus]
    if len(set(ids)) != len(ids):
        raise ValueError("GPU ids must be unique")
    return gpus


# --- errors and responses ----------------------------------------------------------


@dataclass
class Response:
    """An HTTP answer: ``body`` is JSON-serialisable, or None for no body."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)

    def json(self) -> Any:  # convenience for tests using handle() directly
        return self.body


def error_body(message: str, code: str, details: Mapping[str, Any] | None = None) -> dict:
    return {"error": message, "code": code, "details": dict(details or {})}


class EmulatorError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = dict(details or {})
        self.headers = dict(headers or {})

    def to_response(self) -> Response:
        return Response(self.status, error_body(self.message, self.code, self.details), dict(self.headers))


def _validation(field_name: str, message: str, **extra: Any) -> EmulatorError:
    return EmulatorError(422, "validation_error", f"{field_name}: {message}", {"field": field_name, **extra})


# --- small helpers -------------------------------------------------------------------


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_int(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, float) and math.isfinite(value) and value.is_integer()


def rfc3339(epoch_seconds: float) -> str:
    dt = datetime.fromtimestamp(epoch_seconds, tz=timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _parse_json_object(raw: bytes) -> dict:
    if not raw.strip():
        raise EmulatorError(400, "invalid_json", "request body must be a JSON object", {"reason": "empty body"})
    try:
        data = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError) as exc:
        # The reason names the position only; it never echoes the body.
        reason = f"{type(exc).__name__} at position {getattr(exc, 'pos', '?')}"
        raise EmulatorError(400, "invalid_json", "request body is not valid JSON", {"reason": reason}) from None
    if not isinstance(data, dict):
        raise _validation("body", "must be a JSON object", type=type(data).__name__)
    return data


def _lower_headers(headers: Any) -> dict[str, str]:
    if headers is None:
        return {}
    items = headers.items() if hasattr(headers, "items") else headers
    return {str(k).lower(): str(v) for k, v in items}


# Plain English words only: no word here equals a header value we could be sent
# (no "close", "json", "gzip", ...), and the text is built from these alone.
VOCABULARY: tuple[str, ...] = tuple(
    """
    the a of and to in is that it for on with as was at by from this be or are
    an which one all were there we their more when can time about would many
    some them these so other into has its two could people only first been
    water long little very after words called just where most know through back
    much before good new great year same right think also around another came
    three small world every under never house found still should between place
    while river mountain light garden story country morning evening summer winter
    bridge forest village harbor island meadow valley window market lantern
    journey letter music number paper picture question reason answer sentence
    simple gentle quiet bright careful curious patient steady clever honest
    early later often always together during across toward beyond behind
    travel gather follow remember explain wonder listen carry build shape
    measure notice settle wander discover imagine balance signal pattern
    circle corner surface detail moment season harvest orchard stone cloud
    rain snow wind thunder candle mirror ladder basket pocket ribbon silver
    golden yellow purple orange green blue white black warm cool soft clear
    """.split()
)

_SAFE_MODEL_TAG = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,127}")


def generate_words(model: str, prompt: str, max_tokens: int) -> list[str]:
    """Deterministic words for (model, prompt, max_tokens).

    The seed is sha256(model + NUL + prompt); words come from a sha256 counter
    stream (stable across Python versions), so the same inputs always give the
    same words and a larger max_tokens extends the same sequence.
    """
    seed = hashlib.sha256(model.encode("utf-8") + b"\x00" + prompt.encode("utf-8")).digest()
    low = min(MIN_GENERATED_TOKENS, max_tokens)
    count = low + int.from_bytes(seed[:8], "big") % (max_tokens - low + 1)
    words: list[str] = []
    block = 0
    while len(words) < count:
        digest = hashlib.sha256(seed + block.to_bytes(8, "big")).digest()
        for i in range(0, 32, 4):
            words.append(VOCABULARY[int.from_bytes(digest[i : i + 4], "big") % len(VOCABULARY)])
        block += 1
    return words[:count]


# --- state ---------------------------------------------------------------------------


@dataclass
class _Allocation:
    allocation_id: str
    gpu: Gpu
    pool_id: str
    vram_mb: int
    preemptible: bool
    created_at: float
    expires_at: float
    metadata: dict
    status: str = "active"  # active | released | expired
    ended_at: float | None = None  # when it was released or expired (audits)

    def public_view(self) -> dict:
        return {
            "allocation_id": self.allocation_id,
            "assigned_gpu": self.gpu.id,
            "status": self.status,
            "expires_at": rfc3339(self.expires_at),
            "pool_id": self.pool_id,
            "vram_mb": self.vram_mb,
            "preemptible": self.preemptible,
        }

    def admin_view(self) -> dict:
        return {
            "allocation_id": self.allocation_id,
            "assigned_gpu": self.gpu.id,
            "gpu_name": self.gpu.name,
            "status": self.status,
            "pool_id": self.pool_id,
            "vram_mb": self.vram_mb,
            "preemptible": self.preemptible,
            "created_at": rfc3339(self.created_at),
            "expires_at": rfc3339(self.expires_at),
            "metadata": self.metadata,
            # Epoch seconds for audits (e.g. two GPUs held at once).
            "created_epoch": self.created_at,
            "ended_epoch": self.ended_at,
        }


@dataclass(frozen=True)
class _AllocateRequest:
    pool_id: str
    min_tflops: float
    min_vram_mb: int
    max_vram_mb: int | None
    duration_seconds: float
    preemptible: bool
    metadata: dict

    @property
    def reserved_vram_mb(self) -> int:
        if self.preemptible or self.max_vram_mb is None:
            return self.min_vram_mb
        return self.max_vram_mb

    def fingerprint(self) -> str:
        """The parameters an idempotent replay must repeat (metadata excluded)."""
        return json.dumps(
            [self.pool_id, self.min_tflops, self.min_vram_mb, self.max_vram_mb, self.duration_seconds, self.preemptible]
        )


@dataclass(frozen=True)
class _FaultDecision:
    latency_s: float
    kind: str | None  # None | "fail_next" | "error" | "timeout"
    status: int
    hang_s: float
    code: str


def _default_fault() -> dict:
    return {
        "error_rate": 0.0,
        "status": DEFAULT_FAULT_STATUS,
        "latency_ms": 0.0,
        "timeout_rate": 0.0,
        "fail_next": 0,
        "hang_ms": DEFAULT_HANG_MS,
        "code": "injected_fault",
        "statuses": [],  # when set, each injected error draws its status from these
        "slow_rate": 1.0,  # probability that latency_ms applies to a call
        "lost_rate": 0.0,  # probability that the work is done but a 5xx is answered
    }


def _validate_fault(endpoint: str, spec: Any) -> dict:
    if spec is None or spec == {}:
        return _default_fault()
    if not isinstance(spec, Mapping):
        raise _validation(endpoint, "must be an object or null")
    result = _default_fault()
    for key, value in spec.items():
        name = f"{endpoint}.{key}"
        if key in ("error_rate", "timeout_rate", "lost_rate"):
            if not _is_number(value) or not 0.0 <= value <= 1.0:
                raise _validation(name, "must be a number between 0 and 1")
            result[key] = float(value)
        elif key == "status":
            if not _is_int(value) or not 400 <= value <= 599:
                raise _validation(name, "must be an integer HTTP error status (400..599)")
            result[key] = int(value)
        elif key in ("latency_ms", "hang_ms"):
            if not _is_number(value) or not 0.0 <= value <= MAX_FAULT_DELAY_MS:
                raise _validation(name, f"must be a number between 0 and {MAX_FAULT_DELAY_MS:g}")
            result[key] = float(value)
        elif key == "statuses":
            if not isinstance(value, list) or not all(_is_int(v) and 400 <= v <= 599 for v in value):
                raise _validation(name, "must be a list of HTTP error statuses (400..599)")
            result[key] = [int(v) for v in value]
        elif key == "slow_rate":
            if not _is_number(value) or not 0.0 <= value <= 1.0:
                raise _validation(name, "must be a number between 0 and 1")
            result[key] = float(value)
        elif key == "code":
            if not isinstance(value, str) or not re.fullmatch(r"[a-z][a-z0-9_]{0,63}", value):
                raise _validation(name, "must be a snake_case error code, e.g. no_capacity")
            result[key] = value
        elif key == "fail_next":
            if not _is_int(value) or value < 0:
                raise _validation(name, "must be a non-negative integer")
            result[key] = int(value)
        else:
            raise _validation(name, "unknown fault setting", allowed=sorted(_default_fault()))
    return result


class HostedAIEmulator:
    """State and behaviour of the emulated HostedAI API (thread-safe)."""

    def __init__(
        self,
        api_key: str,
        *,
        pool_id: str = DEFAULT_POOL_ID,
        gpus: Iterable[Gpu | Mapping[str, Any]] | Mapping[str, Any] | None = None,
        time_scale: float = 1.0,
        seed: int | None = 0,
        overcommit_ratio: float = 2.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not api_key:
            raise ValueError("api_key must be a non-empty string")
        if not _is_number(time_scale) or time_scale < 0:
            raise ValueError("time_scale must be a number >= 0")
        if not _is_number(overcommit_ratio) or overcommit_ratio < 1.0:
            raise ValueError("overcommit_ratio must be a number >= 1")
        self.api_key = api_key
        self.pool_id = pool_id
        if gpus is None:
            self.gpus: tuple[Gpu, ...] = DEFAULT_GPUS
        else:
            self.gpus = tuple(load_gpus(gpus if isinstance(gpus, Mapping) else list(gpus)))
        self.time_scale = float(time_scale)
        self.seed = seed
        self.overcommit_ratio = float(overcommit_ratio)
        self.clock = clock
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._reset_state()

    # --- lifecycle --------------------------------------------------------------

    def _reset_state(self) -> None:  # caller holds the lock (or is __init__)
        self._allocations: dict[str, _Allocation] = {}
        self._idempotency: dict[str, tuple[str, str]] = {}  # key -> (fingerprint, allocation_id)
        self._faults: dict[str, dict] = {e: _default_fault() for e in ENDPOINTS}
        self._calls: dict[str, int] = {e: 0 for e in ENDPOINTS}
        self._faults_injected: dict[str, int] = {e: 0 for e in ENDPOINTS}
        # allocation -> caller request ids (X-Request-Id) inferring on it now;
        # two different callers at once on one GPU is a double use (audits).
        self._inferring: dict[str, list] = {}
        self._shared: list[dict] = []
        self._rng = random.Random(self.seed)

    def reset(self) -> None:
        """Forget allocations, idempotency records, faults and stats; re-seed."""
        with self._lock:
            self._reset_state()

    def close(self) -> None:
        """Wake any sleeping (latency/hang) request so shutdown is quick."""
        self._closed.set()

    def _sleep(self, seconds: float) -> None:
        if seconds > 0:
            self._closed.wait(seconds)

    def _scaled(self, modelled_ms: float) -> float:
        return modelled_ms * self.time_scale / 1000.0

    def _expire_locked(self, now: float) -> None:
        for alloc in self._allocations.values():
            if alloc.status == "active" and alloc.expires_at <= now:
                alloc.status = "expired"
                alloc.ended_at = alloc.expires_at

    # --- the contract, without HTTP ---------------------------------------------------

    def allocate(self, payload: Mapping[str, Any], idempotency_key: str | None = None) -> dict:
        """Allocate (or replay); returns the response body. Raises EmulatorError."""
        body, _replayed = self._allocate(payload, idempotency_key)
        return body

    @staticmethod
    def _check_idempotency_key(key: str | None) -> None:
        if key is not None and not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY_LENGTH:
            raise EmulatorError(
                400,
                "invalid_idempotency_key",
                f"Idempotency-Key must be 1..{MAX_IDEMPOTENCY_KEY_LENGTH} characters",
                {"length": len(key), "max_length": MAX_IDEMPOTENCY_KEY_LENGTH},
            )

    def _allocate(self, payload: Mapping[str, Any], idempotency_key: str | None) -> tuple[dict, bool]:
        self._check_idempotency_key(idempotency_key)
        req = self._validate_allocate(payload)
        requested = req.reserved_vram_mb
        with self._lock:
            now = self.clock()
            self._expire_locked(now)
            if idempotency_key is not None and idempotency_key in self._idempotency:
                fingerprint, allocation_id = self._idempotency[idempotency_key]
                if fingerprint != req.fingerprint():
                    raise EmulatorError(
                        409,
                        "idempotency_mismatch",
                        "Idempotency-Key was already used with different parameters",
                        {"allocation_id": allocation_id},
                    )
                return self._allocations[allocation_id].public_view(), True
            if req.pool_id != self.pool_id:
                raise EmulatorError(404, "pool_not_found", "unknown pool", {"pool_id": req.pool_id})
            eligible = [g for g in self.gpus if g.tflops >= req.min_tflops and g.vram_mb >= requested]
            if not eligible:
                raise EmulatorError(
                    422,
                    "requirements_unsatisfiable",
                    "no GPU in the pool meets the requirements",
                    {
                        "pool_id": self.pool_id,
                        "min_tflops": req.min_tflops,
                        "vram_mb": requested,
                        "max_gpu_tflops": max(g.tflops for g in self.gpus),
                        "max_gpu_vram_mb": max(g.vram_mb for g in self.gpus),
                    },
                )
            gpu = self._best_fit_locked(eligible, requested, req.preemptible)
            if gpu is None:
                raise EmulatorError(
                    503,
                    "no_capacity",
                    "no GPU in the pool has enough free VRAM now",
                    {"pool_id": self.pool_id, "vram_mb": requested, "preemptible": req.preemptible},
                    {"Retry-After": "1"},
                )
            alloc = _Allocation(
                allocation_id=f"alloc-{uuid.uuid4().hex}",
                gpu=gpu,
                pool_id=self.pool_id,
                vram_mb=requested,
                preemptible=req.preemptible,
                created_at=now,
                expires_at=now + req.duration_seconds,
                metadata=req.metadata,
            )
            self._allocations[alloc.allocation_id] = alloc
            if idempotency_key is not None:
                self._idempotency[idempotency_key] = (req.fingerprint(), alloc.allocation_id)
            body = alloc.public_view()
        self._sleep(self._scaled(ALLOCATE_BASE_MS + ALLOCATE_MS_PER_GB * requested / 1024.0))
        return body, False

    def _best_fit_locked(self, eligible: list[Gpu], requested: int, preemptible: bool) -> Gpu | None:
        used_np: dict[str, int] = {g.id: 0 for g in self.gpus}
        used_p: dict[str, int] = {g.id: 0 for g in self.gpus}
        for alloc in self._allocations.values():
            if alloc.status == "active":
                (used_p if alloc.preemptible else used_np)[alloc.gpu.id] += alloc.vram_mb
        candidates = []
        for gpu in eligible:
            if preemptible:
                free = self.overcommit_ratio * (gpu.vram_mb - used_np[gpu.id]) - used_p[gpu.id]
            else:
                free = gpu.vram_mb - used_np[gpu.id] - used_p[gpu.id]
            if free >= requested:
                candidates.append((gpu.vram_mb, gpu.tflops, free, gpu.id, gpu))
        if not candidates:
            return None
        return min(candidates, key=lambda c: c[:4])[4]

    def _validate_allocate(self, payload: Mapping[str, Any]) -> _AllocateRequest:
        pool_id = payload.get("pool_id")
        if not isinstance(pool_id, str) or not pool_id:
            raise _validation("pool_id", "is required and must be a non-empty string")
        reqs = payload.get("requirements")
        if not isinstance(reqs, Mapping):
            raise _validation("requirements", "is required and must be an object")
        min_tflops = reqs.get("min_tflops", 0.0)
        if min_tflops is None:
            min_tflops = 0.0
        if not _is_number(min_tflops) or min_tflops < 0:
            raise _validation("requirements.min_tflops", "must be a number >= 0")
        min_vram = reqs.get("min_vram_mb")
        if not _is_int(min_vram) or min_vram <= 0:
            raise _validation("requirements.min_vram_mb", "is required and must be a positive integer")
        max_vram = reqs.get("max_vram_mb")
        if max_vram is not None:
            if not _is_int(max_vram) or max_vram <= 0:
                raise _validation("requirements.max_vram_mb", "must be a positive integer")
            if max_vram < min_vram:
                raise _validation("requirements.max_vram_mb", "must be >= requirements.min_vram_mb")
            max_vram = int(max_vram)
        duration = payload.get("duration_seconds", DEFAULT_DURATION_SECONDS)
        if not _is_number(duration) or not 0 < duration <= MAX_DURATION_SECONDS:
            raise _validation("duration_seconds", f"must be a number in (0, {MAX_DURATION_SECONDS}]")
        preemptible = payload.get("preemptible", False)
        if preemptible is None:
            preemptible = False
        if not isinstance(preemptible, bool):
            raise _validation("preemptible", "must be a boolean")
        metadata = payload.get("metadata")
        if metadata is None:
            metadata = {}
        if not isinstance(metadata, dict):
            raise _validation("metadata", "must be an object")
        return _AllocateRequest(
            pool_id=pool_id,
            min_tflops=float(min_tflops),
            min_vram_mb=int(min_vram),
            max_vram_mb=max_vram,
            duration_seconds=float(duration),
            preemptible=preemptible,
            metadata=json.loads(json.dumps(metadata)),  # private copy
        )

    def inference(self, payload: Mapping[str, Any], request_id: str | None = None) -> dict:
        """Run (emulated) inference; returns the response body. Raises EmulatorError.
        `request_id` (the caller's X-Request-Id) lets audits see a GPU used by
        two requests at once."""
        allocation_id = payload.get("allocation_id")
        if not isinstance(allocation_id, str) or not allocation_id:
            raise _validation("allocation_id", "is required and must be a non-empty string")
        model = payload.get("model")
        if not isinstance(model, str) or not model or len(model) > MAX_MODEL_LENGTH:
            raise _validation("model", f"is required and must be a string of 1..{MAX_MODEL_LENGTH} characters")
        prompt = payload.get("prompt")
        if not isinstance(prompt, str):
            raise _validation("prompt", "is required and must be a string")
        params = payload.get("parameters")
        if params is None:
            params = {}
        if not isinstance(params, Mapping):
            raise _validation("parameters", "must be an object")
        max_tokens = params.get("max_tokens")
        if max_tokens is None:
            max_tokens = DEFAULT_MAX_TOKENS
        if not _is_int(max_tokens) or not 1 <= max_tokens <= MAX_TOKENS_LIMIT:
            raise _validation("parameters.max_tokens", f"must be an integer in 1..{MAX_TOKENS_LIMIT}")
        max_tokens = int(max_tokens)
        temperature = params.get("temperature")
        if temperature is not None and (not _is_number(temperature) or not 0 <= temperature <= 2):
            raise _validation("parameters.temperature", "must be a number in 0..2")
        top_p = params.get("top_p")
        if top_p is not None and (not _is_number(top_p) or not 0 <= top_p <= 1):
            raise _validation("parameters.top_p", "must be a number in 0..1")
        stops = params.get("stop_sequences")
        if stops is None:
            stops = []
        if (
            not isinstance(stops, list)
            or len(stops) > MAX_STOP_SEQUENCES
            or not all(isinstance(s, str) and s for s in stops)
        ):
            raise _validation(
                "parameters.stop_sequences", f"must be a list of at most {MAX_STOP_SEQUENCES} non-empty strings"
            )

        with self._lock:
            vram_mb = self._active_locked(allocation_id, inactive_status=409).vram_mb

        body = " ".join(generate_words(model, prompt, max_tokens))
        cut = min((i for i in (body.find(s) for s in stops) if i >= 0), default=-1)
        if cut >= 0:
            body = body[:cut].rstrip()
        tokens_used = len(body.split())
        # The tag is shown only when it cannot leak a secret or the prompt.
        show_tag = (
            _SAFE_MODEL_TAG.fullmatch(model) is not None
            and self.api_key not in model
            and not (prompt.strip() and prompt.strip() in model)
        )
        tag = f"[{model}]" if show_tag else "[model]"
        text = f"{tag} {body}" if body else tag
        # duration_ms reports the MODELLED time, before time_scale is applied.
        modelled_ms = INFERENCE_BASE_MS + tokens_used * INFERENCE_MS_PER_TOKEN_PER_GB * vram_mb / 1024.0
        with self._lock:
            callers = self._inferring.setdefault(allocation_id, [])
            others = sorted({str(c) for c in callers if c is None or c != request_id})
            if others:
                self._shared.append({"allocation_id": allocation_id, "request_id": request_id, "while": others})
            callers.append(request_id)
        try:
            self._sleep(self._scaled(modelled_ms))
        finally:
            with self._lock:
                callers.remove(request_id)
                if not callers:
                    self._inferring.pop(allocation_id, None)
        return {"text": text, "tokens_used": tokens_used, "duration_ms": round(modelled_ms, 3), "model_used": model}

    def release(self, allocation_id: str) -> None:
        """Release an active allocation. Raises EmulatorError(404) otherwise."""
        with self._lock:
            # Releasing what is no longer active is 404, as the contract says.
            alloc = self._active_locked(allocation_id, inactive_status=404)
            alloc.status, alloc.ended_at = "released", self.clock()
        self._sleep(self._scaled(RELEASE_MS))

    def _active_locked(self, allocation_id: str, *, inactive_status: int) -> "_Allocation":
        """The active allocation with this id; EmulatorError otherwise."""
        self._expire_locked(self.clock())
        alloc = self._allocations.get(allocation_id)
        if alloc is None:
            raise EmulatorError(404, "allocation_not_found", "unknown allocation", {"allocation_id": allocation_id})
        if alloc.status != "active":
            raise EmulatorError(
                inactive_status,
                "allocation_not_active",
                f"allocation is {alloc.status}",
                {"allocation_id": allocation_id, "status": alloc.status},
            )
        return alloc

    # --- admin ---------------------------------------------------------------------

    def list_allocations(self) -> list[dict]:
        """Active, unexpired allocations (oldest first)."""
        with self._lock:
            self._expire_locked(self.clock())
            return [a.admin_view() for a in self._allocations.values() if a.status == "active"]

    def history(self) -> list[dict]:
        """Every allocation ever made (any status), oldest first: for audits
        such as the chaos run's leak and double-allocation counts."""
        with self._lock:
            self._expire_locked(self.clock())
            return [a.admin_view() for a in self._allocations.values()]

    def get_faults(self) -> dict:
        with self._lock:
            return {e: dict(self._faults[e]) for e in ENDPOINTS}

    def set_faults(self, config: Mapping[str, Any] | None) -> dict:
        """Replace the settings of the endpoints named; all-or-nothing."""
        if config is None:
            config = {}
        if not isinstance(config, Mapping):
            raise _validation("body", "must be an object keyed by endpoint")
        updates = {}
        for endpoint, spec in config.items():
            if endpoint not in ENDPOINTS:
                raise _validation(endpoint, "unknown endpoint", allowed=list(ENDPOINTS))
            updates[endpoint] = _validate_fault(endpoint, spec)
        with self._lock:
            self._faults.update(updates)
            return {e: dict(self._faults[e]) for e in ENDPOINTS}

    def stats(self) -> dict:
        with self._lock:
            self._expire_locked(self.clock())
            return {
                "calls": dict(self._calls),
                "faults_injected": dict(self._faults_injected),
                "active_allocations": sum(1 for a in self._allocations.values() if a.status == "active"),
                # inference calls that ran on a GPU while another caller's ran on it
                "shared_inferences": len(self._shared),
                "shared_examples": self._shared[:5],
            }

    def _draw_fault(self, endpoint: str) -> _FaultDecision:
        with self._lock:
            f = self._faults[endpoint]
            kind = None
            if f["fail_next"] > 0:
                f["fail_next"] -= 1
                kind = "fail_next"
            elif self._chance(f["error_rate"]):
                kind = "error"
            elif self._chance(f["timeout_rate"]):
                kind = "timeout"
            elif self._chance(f["lost_rate"]):
                kind = "lost"
            if kind is not None:
                self._faults_injected[endpoint] += 1
            status = self._rng.choice(f["statuses"]) if f["statuses"] else f["status"]
            latency = f["latency_ms"] / 1000.0 if self._chance(f["slow_rate"]) else 0.0
            return _FaultDecision(latency, kind, status, f["hang_ms"] / 1000.0, f["code"])

    def _chance(self, rate: float) -> bool:  # caller holds the lock
        if rate <= 0.0:
            return False
        if rate >= 1.0:
            return True
        return self._rng.random() < rate

    # --- HTTP semantics without sockets ----------------------------------------------

    def handle(self, method: str, path: str, headers: Any = None, body: bytes | str = b"") -> Response:
        """Answer one request (auth, faults, routing, errors) as a Response."""
        if isinstance(body, str):
            body = body.encode("utf-8")
        try:
            return self._route(method.upper(), urlsplit(path).path, _lower_headers(headers), body or b"")
        except EmulatorError as exc:
            return exc.to_response()
        except Exception as exc:  # a bug in the emulator: still answer JSON
            return Response(500, error_body("internal emulator error", "internal_error", {"type": type(exc).__name__}))

    def _route(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Response:
        if path == "/health":
            self._require_method(method, "GET")
            return Response(200, {"status": "ok"})
        if path == "/v1/allocate":
            self._require_method(method, "POST")
            return self._v1("allocate", headers, lambda: self._http_allocate(headers, body))
        if path == "/v1/inference":
            self._require_method(method, "POST")
            return self._v1("inference", headers,
                            lambda: Response(200, self.inference(_parse_json_object(body), headers.get("x-request-id"))))
        if path.startswith("/v1/allocate/") and path.count("/") == 3 and len(path) > len("/v1/allocate/"):
            self._require_method(method, "DELETE")
            allocation_id = unquote(path[len("/v1/allocate/") :])
            return self._v1("release", headers, lambda: self._http_release(allocation_id))
        if path == "/_emulator/allocations":
            self._require_method(method, "GET")
            return Response(200, {"allocations": self.list_allocations()})
        if path == "/_emulator/history":
            self._require_method(method, "GET")
            return Response(200, {"allocations": self.history()})
        if path == "/_emulator/faults":
            self._require_method(method, "GET", "POST")
            if method == "GET":
                return Response(200, self.get_faults())
            if not body.strip():
                raise EmulatorError(400, "invalid_json", "request body must be a JSON object", {"reason": "empty body"})
            try:
                config = json.loads(body.decode("utf-8"), parse_constant=_reject_constant)
            except (UnicodeDecodeError, ValueError):
                raise EmulatorError(400, "invalid_json", "request body is not valid JSON") from None
            return Response(200, self.set_faults(config))
        if path == "/_emulator/reset":
            self._require_method(method, "POST")
            self.reset()
            return Response(200, {"status": "reset"})
        if path == "/_emulator/stats":
            self._require_method(method, "GET")
            return Response(200, self.stats())
        raise EmulatorError(404, "not_found", "no such route", {"method": method, "path": path})

    @staticmethod
    def _require_method(method: str, *allowed: str) -> None:
        if method not in allowed:
            raise EmulatorError(
                405,
                "method_not_allowed",
                "method not allowed on this route",
                {"method": method, "allowed": list(allowed)},
                {"Allow": ", ".join(allowed)},
            )

    def _check_auth(self, headers: Mapping[str, str]) -> None:
        value = headers.get("authorization", "")
        scheme, _, token = value.partition(" ")
        if not value:
            raise EmulatorError(401, "unauthorized", "missing Authorization header", {}, {"WWW-Authenticate": "Bearer"})
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            token.strip().encode("utf-8"), self.api_key.encode("utf-8")
        ):
            raise EmulatorError(401, "unauthorized", "invalid API key", {}, {"WWW-Authenticate": "Bearer"})

    def _v1(self, endpoint: str, headers: Mapping[str, str], action: Callable[[], Response]) -> Response:
        with self._lock:
            self._calls[endpoint] += 1
        self._check_auth(headers)
        decision = self._draw_fault(endpoint)
        self._sleep(decision.latency_s)  # injected latency is never scaled
        if decision.kind in ("fail_next", "error"):
            extra = {"Retry-After": "1"} if decision.status in (429, 503) else {}
            return Response(
                decision.status,
                error_body(
                    "injected fault",
                    decision.code,
                    {"endpoint": endpoint, "kind": decision.kind, "status": decision.status},
                ),
                extra,
            )
        try:
            response = action()
        except EmulatorError as exc:
            response = exc.to_response()
        if decision.kind == "timeout":
            # The work above is done; its answer is "lost" after a hang.
            self._sleep(decision.hang_s)
            details = {"endpoint": endpoint, "kind": "timeout", "status": 504}
            return Response(504, error_body("injected timeout", "injected_fault", details))
        if decision.kind == "lost":
            # The work above is done, but the caller hears a 5xx at once (a
            # crashed gateway): the answer is lost without any hang.
            status = decision.status if decision.status >= 500 else 502
            details = {"endpoint": endpoint, "kind": "lost", "status": status}
            return Response(status, error_body("injected fault after the work was done", "injected_fault", details))
        return response

    def _http_allocate(self, headers: Mapping[str, str], body: bytes) -> Response:
        key = headers.get("idempotency-key")
        self._check_idempotency_key(key)  # before the body: a bad key is 400 whatever the body
        result, replayed = self._allocate(_parse_json_object(body), key)
        return Response(200 if replayed else 201, result)

    def _http_release(self, allocation_id: str) -> Response:
        self.release(allocation_id)
        return Response(204, None)


# --- HTTP server ------------------------------------------------------------------------


def _snake(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_") or "error"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive; every response has Content-Length
    disable_nagle_algorithm = True  # else ~40 ms per request (Nagle + delayed ACK)
    server_version = "HostedAIEmulator/1.0"
    sys_version = ""
    timeout = 120  # idle keep-alive connections are closed after this

    server: _EmulatorHTTPServer

    def _handle(self) -> None:
        started = time.perf_counter()
        try:
            body = self._read_body()
        except EmulatorError as exc:
            self.close_connection = True
            response = exc.to_response()
        except (OSError, ValueError):
            self.close_connection = True
            return
        else:
            response = self.server.emulator.handle(self.command, self.path, self.headers, body)
        self._send(response)
        if self.server.verbose:
            self._log_line(response.status, started)

    do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = do_OPTIONS = _handle

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks, total = [], 0
            while True:
                size_line = self.rfile.readline(1024)
                size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                total += size
                if total > MAX_BODY_BYTES:
                    raise EmulatorError(
                        413, "payload_too_large", "request body too large", {"max_bytes": MAX_BODY_BYTES}
                    )
                chunks.append(self.rfile.read(size))
                self.rfile.readline(1024)
        raw = self.headers.get("Content-Length")
        if raw is None:
            return b""
        try:
            length = int(raw)
        except ValueError:
            length = -1
        if length < 0:
            raise EmulatorError(400, "invalid_request", "invalid Content-Length")
        if length > MAX_BODY_BYTES:
            raise EmulatorError(413, "payload_too_large", "request body too large", {"max_bytes": MAX_BODY_BYTES})
        return self.rfile.read(length) if length else b""

    def _send(self, response: Response) -> None:
        payload = b"" if response.body is None else json.dumps(response.body, separators=(",", ":")).encode("utf-8")
        try:
            self.send_response(response.status)
            if response.body is not None:
                self.send_header("Content-Type", "application/json")
            if response.status != 204:  # RFC 9110: no Content-Length on 204
                self.send_header("Content-Length", str(len(payload)))
            for name, value in response.headers.items():
                self.send_header(name, value)
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if payload and self.command != "HEAD":
                self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError):
            self.close_connection = True  # the client gave up (e.g. its read timed out)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Protocol-level errors (malformed request line, ...) as JSON too."""
        phrase = self.responses.get(code, ("Error", ""))[0]
        self.close_connection = True
        self._send(Response(code, error_body(message or phrase, _snake(phrase))))
        if self.server.verbose:
            self.log_message("%s -> %d", self.requestline or "-", code)

    def log_request(self, code: Any = "-", size: Any = "-") -> None:
        pass  # one line per request is written by _handle when verbose

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.verbose:
            sys.stderr.write(f"[emulator] {self.address_string()} {format % args}\n")

    def _log_line(self, status: int, started: float) -> None:
        elapsed_ms = (time.perf_counter() - started) * 1000.0
        path = urlsplit(self.path).path
        sys.stderr.write(f"[emulator] {self.command} {path} -> {status} ({elapsed_ms:.1f} ms)\n")


class _EmulatorHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], emulator: HostedAIEmulator, verbose: bool) -> None:
        self.emulator = emulator
        self.verbose = verbose
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if self.verbose:
            super().handle_error(request, client_address)


class _EmulatorHTTPServer6(_EmulatorHTTPServer):
    address_family = socket.AF_INET6


def make_server(
    emulator: HostedAIEmulator, host: str = "127.0.0.1", port: int = 0, *, verbose: bool = False
) -> ThreadingHTTPServer:
    """A bound (not yet serving) threading HTTP server for ``emulator``."""
    cls = _EmulatorHTTPServer6 if ":" in host else _EmulatorHTTPServer
    return cls((host, port), emulator, verbose)


def server_url(server: ThreadingHTTPServer) -> str:
    host, port = server.server_address[:2]
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


class RunningEmulator:
    """An emulator served from a background thread; stop() is idempotent."""

    def __init__(self, emulator: HostedAIEmulator, server: ThreadingHTTPServer) -> None:
        self.emulator = emulator
        self.server = server
        self.base_url = server_url(server)
        self.host, self.port = server.server_address[:2]
        self._stopped = False
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.01}, name="hostedai-emulator", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self.server.shutdown()
        self.server.server_close()
        self.emulator.close()
        self._thread.join(timeout=5)

    def __enter__(self) -> RunningEmulator:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()


def run_in_thread(
    api_key: str, host: str = "127.0.0.1", port: int = 0, *, verbose: bool = False, **emulator_kwargs: Any
) -> RunningEmulator:
    """Start an emulator on host:port (0 = a free port) in a daemon thread."""
    emulator = HostedAIEmulator(api_key, **emulator_kwargs)
    return RunningEmulator(emulator, make_server(emulator, host, port, verbose=verbose))


# --- CLI ---------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.emulator", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--api-key", default=None, help=f"required; else from ${API_KEY_ENV}")
    parser.add_argument("--time-scale", type=float, default=1.0, help="multiplies modelled latencies (0 = none)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the fault-injection random draws")
    parser.add_argument("--gpus", default=None, help="JSON file: a list of GPUs, or {\"gpus\": [...]}")
    parser.add_argument("--pool-id", default=DEFAULT_POOL_ID)
    parser.add_argument("--overcommit-ratio", type=float, default=2.0)
    parser.add_argument("--verbose", action="store_true", help="log one line per request to stderr")
    args = parser.parse_args(argv)

    api_key = args.api_key or os.environ.get(API_KEY_ENV)
    if not api_key:
        parser.error(f"an API key is required: --api-key or ${API_KEY_ENV}")
    gpus = None
    if args.gpus:
        try:
            with open(args.gpus, encoding="utf-8") as fh:
                gpus = load_gpus(json.load(fh))
        except (OSError, ValueError) as exc:
            parser.error(f"--gpus {args.gpus}: {exc}")
    try:
        emulator = HostedAIEmulator(
            api_key,
            pool_id=args.pool_id,
            gpus=gpus,
            time_scale=args.time_scale,
            seed=args.seed,
            overcommit_ratio=args.overcommit_ratio,
        )
        server = make_server(emulator, args.host, args.port, verbose=args.verbose)
    except (ValueError, OSError) as exc:
        parser.error(str(exc))

    stop = threading.Event()

    def _on_signal(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
    thread.start()
    print(
        f"HostedAI emulator listening on {server_url(server)} "
        f"(pool {emulator.pool_id}, {len(emulator.gpus)} GPUs, time_scale {emulator.time_scale:g})",
        flush=True,
    )
    try:
        while not stop.wait(0.5):
            pass
    finally:
        server.shutdown()
        server.server_close()
        emulator.close()
        thread.join(timeout=5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
