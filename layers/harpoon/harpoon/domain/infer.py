"""Infer step: run the prompt on the allocated vGPU."""

from __future__ import annotations

import time

from harpoon.adapters.hostedai import HostedAIClient
from harpoon.domain.timing import ms_since
from harpoon.models import InferInput, InferOutput


def infer(inp: InferInput, *, hostedai: HostedAIClient) -> InferOutput:
    started = time.perf_counter()
    result = hostedai.infer(
        allocation_id=inp.allocation_id, model=inp.model, prompt=inp.prompt, max_tokens=inp.max_tokens
    )
    return InferOutput(
        text=result.text,
        model_used=result.model_used,
        tokens_generated=result.tokens_used,
        generation_time_ms=result.duration_ms,
        elapsed_ms=ms_since(started),
    )
