"""Harpoon's CloudWatch metrics, as EMF lines on stdout (Powertools Metrics).

Every metric is declared here once: its unit and its dimensions. Dimensions
are bounded: `model` and `pool` (catalog and configuration), `outcome` (a
fixed set per metric), plus Powertools' `service`. The tenant and the request
go in metadata: searchable in the log line, never a dimension (a dimension per
tenant would be a metric per tenant).
"""

from __future__ import annotations

from dataclasses import dataclass

NAMESPACE = "Harpoon"


@dataclass(frozen=True)
class Metric:
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
    "LeasesReclaimed": Metric("Count", ("pool", "outcome"),
                              ("active", "releasing", "pending", "abandoned", "idle", "failed", "released")),
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


def emit(name: str, value: float, *, metadata: dict | None = None, **dimensions: str) -> None:
    """One metric, flushed now as its own EMF line. Raises ValueError on a
    name, dimension or outcome the catalog does not declare (a bug)."""
    spec = CATALOG.get(name)
    if spec is None:
        raise ValueError(f"metric {name!r} is not in the catalog")
    if set(dimensions) != set(spec.dimensions):
        raise ValueError(f"metric {name} takes dimensions {spec.dimensions}, got {sorted(dimensions)}")
    if spec.outcomes and dimensions["outcome"] not in spec.outcomes:
        raise ValueError(f"metric {name}: outcome {dimensions['outcome']!r} is not one of {spec.outcomes}")
    from aws_lambda_powertools.metrics import MetricUnit, single_metric  # lazy: classify's cold start

    with single_metric(name=name, unit=MetricUnit(spec.unit), value=value, namespace=NAMESPACE) as metric:
        for key in spec.dimensions:
            metric.add_dimension(key, str(dimensions[key]))
        for key, item in (metadata or {}).items():
            if item is not None:
                metric.add_metadata(key, item)
