"""Classify step: decide simple vs complex locally and pick the model.

The classification runs on every request, so every answer explains itself,
even when the caller chose the model: by name ("explicit") or by custom
requirements (the API resolved them to the smallest catalog model that meets
them). Otherwise ("auto") the classifier's tier picks the catalog's model
for that tier.
"""

from __future__ import annotations

import time

from harpoon.catalog import Catalog
from harpoon.classifier import classify
from harpoon.domain.timing import ms_since
from harpoon.errors import StepInputError
from harpoon.models import ClassificationOut, ClassifyInput, ClassifyOutput, RouteOut


def classify_request(inp: ClassifyInput, *, catalog: Catalog, threshold: float) -> ClassifyOutput:
    started = time.perf_counter()
    result = classify(inp.text, threshold=threshold)
    if inp.model == "auto":
        model = catalog.for_tier(result.tier)
        basis = "classifier"
        explanation = f"classifier: {result.tier} (score {result.score:.3f}, threshold {threshold:g})"
    else:
        try:
            model = catalog.get(inp.model)
        except KeyError as exc:
            raise StepInputError(str(exc)) from None
        if inp.requirements:
            basis = "requirements"
            asked = ", ".join(f"{k}={v:g}" for k, v in sorted(inp.requirements.items()))
            explanation = f"requirements {asked}: {model.id} is the smallest catalog model that meets them"
        else:
            basis = "explicit"
            explanation = f"{model.id} requested by the caller"
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
        route=RouteOut(model=model.id, degraded=False, reason=None, basis=basis, explanation=explanation),
        max_tokens=max_tokens,
        elapsed_ms=ms_since(started),
    )
