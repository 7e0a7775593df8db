"""Classify step: decide simple vs complex locally and pick the model.

The classification runs on every request, so every answer explains itself,
even when the caller chose the model: by name ("explicit") or by custom
requirements (the API resolved them to the smallest catalog model that meets
them). Otherwise ("auto") the classifier's tier picks the catalog's model
for that tier.

This step imports no pydantic (its cold start is the workflow's first): a
well-formed input is checked here, anything else goes to the pydantic model
(harpoon.models.ClassifyInput), which coerces it or raises the usual
StepInputError. The output is the dict ClassifyOutput dumps to;
tests/unit/test_cold_start_lean.py holds both to the models.
"""

from __future__ import annotations

import time

from harpoon.catalog import Catalog
from harpoon.classifier import classify
from harpoon.domain.timing import ms_since
from harpoon.errors import StepInputError

MAX_TOKENS_LIMIT = 1024  # harpoon.models.MAX_TOKENS_LIMIT (a test keeps them equal)


class ClassifyRequest:
    """A valid ClassifyInput, as the fast path reads it (the same fields).
    A plain class: a dataclass would cost ~0.5 ms of this cold start."""

    __slots__ = ("request_id", "tenant_id", "text", "max_tokens", "model", "requirements")

    def __init__(self, *, request_id: str, tenant_id: str, text: str, max_tokens: int | None, model: str,
                 requirements: dict | None) -> None:
        self.request_id, self.tenant_id, self.text = request_id, tenant_id, text
        self.max_tokens, self.model, self.requirements = max_tokens, model, requirements


_STR_FIELDS = ("request_id", "tenant_id", "text", "model")


def parse_classify_input(event: object):
    """The step's input: a ClassifyRequest when every field already has its
    model's type and bounds, else what harpoon.models.parse_step_input makes of it
    (a coerced ClassifyInput, or StepInputError)."""
    if type(event) is dict and _plainly_valid(event):
        requirements = event.get("requirements")
        return ClassifyRequest(
            request_id=event["request_id"],
            tenant_id=event.get("tenant_id", "default"),
            text=event["text"],
            max_tokens=event.get("max_tokens"),
            model=event.get("model", "auto"),
            requirements=None if requirements is None else dict(requirements),  # pydantic copies it too
        )
    from harpoon.models import ClassifyInput, parse_step_input  # pydantic: only for inputs off the fast path

    return parse_step_input(ClassifyInput, event)


def _plainly_valid(event: dict) -> bool:
    if "request_id" not in event or "text" not in event:
        return False
    for name in _STR_FIELDS:
        if name in event and type(event[name]) is not str:
            return False
    if not event["text"]:
        return False
    max_tokens = event.get("max_tokens")
    if max_tokens is not None and not (type(max_tokens) is int and 1 <= max_tokens <= MAX_TOKENS_LIMIT):
        return False
    requirements = event.get("requirements")
    return requirements is None or type(requirements) is dict


def classify_request(inp, *, catalog: Catalog, threshold: float) -> dict:
    """`inp`: a ClassifyRequest or ClassifyInput. Returns the step's output as
    ClassifyOutput.model_dump(mode="json") would."""
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
    return {
        "classification": {
            "tier": result.tier,
            "is_complex": result.is_complex,
            "score": float(result.score),
            "confidence": float(result.confidence),
            "reasons": list(result.reasons),
        },
        "route": {"model": model.id, "degraded": False, "reason": None, "basis": basis, "explanation": explanation},
        "max_tokens": int(max_tokens),
        "elapsed_ms": float(ms_since(started)),
    }
