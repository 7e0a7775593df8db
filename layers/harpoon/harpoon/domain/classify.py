"""Classify step: decide simple vs complex locally and pick the model."""

from __future__ import annotations

import time

from harpoon.catalog import Catalog
from harpoon.classifier import classify
from harpoon.domain.timing import ms_since
from harpoon.models import ClassificationOut, ClassifyInput, ClassifyOutput, RouteOut


def classify_request(inp: ClassifyInput, *, catalog: Catalog, threshold: float) -> ClassifyOutput:
    started = time.perf_counter()
    result = classify(inp.text, threshold=threshold)
    model = catalog.for_tier(result.tier)
    # The request's max_tokens is honoured but never beyond what the model serves.
    max_tokens = min(inp.max_tokens or model.max_tokens, model.max_tokens)
    return ClassifyOutput(
        classification=ClassificationOut(
            tier=result.tier,
            is_complex=result.is_complex,
            score=result.score,
            confidence=result.confidence,
            reasons=list(result.reasons),
        ),
        route=RouteOut(model=model.id, degraded=False, reason=None),
        max_tokens=max_tokens,
        elapsed_ms=ms_since(started),
    )
