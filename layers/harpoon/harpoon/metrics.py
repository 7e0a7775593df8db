"""Harpoon's CloudWatch metrics, as EMF lines on stdout (Powertools Metrics).

Every metric is declared here once: its unit and its dimensions. Dimensions
are bounded: `model` and `pool` (catalog and configuration), `outcome` (a
fixed set per metric), plus Powertools' `service`. The tenant and the request
go in metadata: searchable in the log line, never a dimension (a dimension per
tenant would be a metric per tenant).
"""

from __future__ import annotations

from typing import NamedTuple

NAMESPACE = "Harpoon"


# Immutable like a frozen dataclass, and several times cheaper to build at import (cold starts).
class Metric(NamedTuple):
    unit: str  # a CloudWatch unit name
    dimensions: tuple[str, ...]
    outcomes: tuple[str, ...] = ()  # the values `outcome` may take, if it is a dimension


ALLOCATE_OUTCOMES = ("cold", "warm", "no_capacity", "circuit_open", "upstream_error", "rejected", "error")

CATALOG: dict[str, Metric] = {
    "Classifications": Metric("Count", ("outcome",), ("simple", "complex")),
    "AllocationLatency": Metric("Milliseconds", ("model", "pool", "outcome"), ALLOCATE_OUTCOMES),
    "Allocations": Metric("Count", ("model", "pool", "outcome"), ALLOCATE_OUTCOMES),
    "Fallbacks": Metric("Count", ("model", "pool")),  # model: the one that served instead
    "InferenceLatency": Metric("Milliseconds", ("model", "pool", "outcome"), ("ok", "upstream_error", "rejected", "error")),
    "TokensGenerated": Metric("Count", ("model", "pool")),
    "GpuSeconds": Metric("Seconds", ("model", "pool")),
    "GpuCost": Metric("None", ("model", "pool")),  # USD; CloudWatch has no currency unit
    "BreakerTransitions": Metric("Count", ("model", "pool", "outcome"), ("closed", "open", "half_open")),
    "ActiveAllocations": Metric("Count", ("pool",)),  # sampled by the cleanup
    "WarmLeases": Metric("Count", ("pool",)),  # sampled by the cleanup
    # outcome: the state the lease was in; idle for warm GPUs (never a leak).
    "LeasesReclaimed": Metric("Count", ("pool", "outcome"), ("active", "releasing", "pending", "idle")),
    "LeakedGpuSeconds": Metric("Seconds", ("pool",)),
}


def outcome_of(exc: BaseException) -> str:
    """A failure as a bounded outcome."""
    from harpoon.errors import CircuitOpenError, NoCapacityError, PermanentUpstreamError, TransientUpstreamError

    if isinstance(exc, NoCapacityError):
        return "no_capacity"
    if isinstance(exc, CircuitOpenError):
        return "circuit_open"
    if isinstance(exc, TransientUpstreamError):
        return "upstream_error"
    if isinstance(exc, PermanentUpstreamError):
        return "rejected"
    return "error"


def check(name: str, value: float, dimensions: dict) -> Metric:
    """The metric's spec, or ValueError if the catalog does not allow this
    name, these dimensions, outcome or model, or the value is not finite."""
    import math

    spec = CATALOG.get(name)
    if spec is None:
        raise ValueError(f"metric {name!r} is not in the catalog")
    if set(dimensions) != set(spec.dimensions):
        raise ValueError(f"metric {name} takes dimensions {spec.dimensions}, got {sorted(dimensions)}")
    if spec.outcomes and dimensions["outcome"] not in spec.outcomes:
        raise ValueError(f"metric {name}: outcome {dimensions['outcome']!r} is not one of {spec.outcomes}")
    if "model" in dimensions:
        from harpoon.catalog import load_catalog

        if dimensions["model"] not in load_catalog().models:
            raise ValueError(f"metric {name}: model {dimensions['model']!r} is not a catalog model")
    if not math.isfinite(value):
        raise ValueError(f"metric {name}: value {value!r} is not finite")
    return spec


def emit(name: str, value: float, *, metadata: dict | None = None, **dimensions: str) -> None:
    """One metric, flushed now as its own EMF line. Never raises: a metric
    must not fail, or change the error of, the work it reports (a metric the
    catalog refuses is logged as an error instead; tests/unit checks them)."""
    try:
        spec = check(name, value, dimensions)
        from aws_lambda_powertools.metrics import MetricUnit, single_metric  # lazy: classify's cold start

        with single_metric(name=name, unit=MetricUnit(spec.unit), value=value, namespace=NAMESPACE) as metric:
            for key in spec.dimensions:
                metric.add_dimension(key, str(dimensions[key]))
            for key, item in (metadata or {}).items():
                if item is not None and key not in spec.dimensions and key != "service":
                    metric.add_metadata(key, item)
    except Exception as exc:  # noqa: BLE001
        import logging

        logging.getLogger("harpoon.metrics").error("metric %s not emitted: %s", name, exc)
