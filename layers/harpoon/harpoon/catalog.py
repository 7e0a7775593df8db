"""The model catalog, kept as data in catalog.json beside this module.

Adding a model is one entry there: id, tier (the classifier tier it serves
by default), min TFLOPS, VRAM MB, max tokens, price per GPU-second (USD; the
figures shipped are placeholders to set from the HostedAI contract) and its
fallback. Figures are the seed's: gemma-270m needs 5 TFLOPS and 2048 MB of
VRAM, qwen-30b 30 TFLOPS and 20480 MB.

A request routes to a model in one of three ways: the classifier's tier
("auto", the default), a catalog model named explicitly, or custom
requirements, which take the smallest model that meets them.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

CATALOG_PATH = Path(__file__).with_name("catalog.json")


# Immutable like a frozen dataclass, and several times cheaper to build at import (cold starts).
class ModelSpec(NamedTuple):
    id: str
    tier: str
    min_tflops: float
    vram_mb: int
    max_tokens: int
    price_per_gpu_second: float
    fallback: str | None = None

    def meets(self, *, min_tflops: float, min_vram_mb: int) -> bool:
        return self.min_tflops >= min_tflops and self.vram_mb >= min_vram_mb

    def requirements(self) -> dict:
        """What HostedAI is asked for: exactly the model's VRAM, no overcommit."""
        return {"min_tflops": self.min_tflops, "min_vram_mb": self.vram_mb, "max_vram_mb": self.vram_mb}


class Catalog(NamedTuple):  # see ModelSpec
    models: dict[str, ModelSpec]
    default_simple: str
    default_complex: str

    def get(self, model_id: str) -> ModelSpec:
        try:
            return self.models[model_id]
        except KeyError:
            raise KeyError(f"unknown model {model_id!r}; known: {sorted(self.models)}") from None

    def chain(self, model_id: str) -> list[ModelSpec]:
        """The model, then its fallbacks in order (qwen-30b -> gemma-270m)."""
        chain, seen = [], set()
        spec: ModelSpec | None = self.get(model_id)
        while spec is not None and spec.id not in seen:
            chain.append(spec)
            seen.add(spec.id)
            spec = self.get(spec.fallback) if spec.fallback else None
        return chain

    def for_tier(self, tier: str) -> ModelSpec:
        return self.get(self.default_complex if tier == "complex" else self.default_simple)

    def smallest_meeting(self, *, min_tflops: float, min_vram_mb: int) -> ModelSpec | None:
        """The cheapest model to run that meets the requirements (least VRAM,
        then fewest TFLOPS, then lowest price); None if none does."""
        fits = [m for m in self.models.values() if m.meets(min_tflops=min_tflops, min_vram_mb=min_vram_mb)]
        return min(fits, key=lambda m: (m.vram_mb, m.min_tflops, m.price_per_gpu_second, m.id), default=None)

    @property
    def largest(self) -> ModelSpec:
        """The model every request would use without routing (for cost baselines)."""
        return self.get(self.default_complex)


def parse_catalog(data: dict) -> Catalog:
    models = {m["id"]: ModelSpec(**m) for m in data["models"]}
    catalog = Catalog(models, data["default_simple"], data["default_complex"])
    for spec in models.values():  # fail at load, not mid-request
        if spec.fallback is not None:
            catalog.get(spec.fallback)
    catalog.get(catalog.default_simple)
    catalog.get(catalog.default_complex)
    return catalog


@lru_cache(maxsize=1)
def load_catalog() -> Catalog:
    return parse_catalog(json.loads(CATALOG_PATH.read_text(encoding="utf-8")))
