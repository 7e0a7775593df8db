"""Infer step: run the prompt on the allocated vGPU.

Inference outcomes feed the model's circuit breaker too: a pool whose GPUs
allocate but fail to infer is as sick as one that fails to allocate.

Before the call, the lease must cover this call and the release after it,
so the sweep never reclaims a GPU mid-inference. With fewer than
`renew_below` seconds left it is renewed (one conditional write), which is
also the fencing check: if the lease was reclaimed, LeaseLostError stops the
step before it uses a GPU it no longer holds. A first attempt that starts
soon after Allocate skips the write: a lease with that much time left cannot
have been reclaimed (the sweep takes only expired ones).
"""

from __future__ import annotations

import time

from harpoon.adapters.hostedai import HostedAIClient
from harpoon.adapters.leases import LeaseRepository
from harpoon.catalog import Catalog
from harpoon.domain.breaker import CircuitBreaker
from harpoon.domain.timing import ms_since
from harpoon.errors import TransientUpstreamError
from harpoon.models import InferInput, InferOutput


def infer(inp: InferInput, *, leases: LeaseRepository, hostedai: HostedAIClient, breaker: CircuitBreaker,
          catalog: Catalog, renew_below: int) -> InferOutput:
    started = time.perf_counter()
    if inp.lease_expires_at is None or inp.lease_expires_at - leases.now() < renew_below:
        leases.renew(inp.request_id, execution_id=inp.execution_id)
    breaker_id = CircuitBreaker.breaker_id(inp.pool_id, inp.model)
    # A fallback model may serve fewer tokens than the request asked for.
    max_tokens = min(inp.max_tokens, catalog.get(inp.model).max_tokens)
    try:
        result = hostedai.infer(allocation_id=inp.allocation_id, model=inp.model, prompt=inp.prompt, max_tokens=max_tokens,
                                temperature=inp.temperature, top_p=inp.top_p, stop_sequences=inp.stop,
                                request_id=inp.request_id)
    except TransientUpstreamError:
        breaker.record_failure(breaker_id, inp.request_id)
        raise
    breaker.record_success(breaker_id, inp.request_id, clean_at=inp.breaker_clean_at)
    return InferOutput(
        text=result.text,
        model_used=result.model_used,
        tokens_generated=result.tokens_used,
        generation_time_ms=result.duration_ms,
        elapsed_ms=ms_since(started),
    )
