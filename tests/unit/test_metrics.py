"""The metrics catalog refuses what CloudWatch should never see, and emit()
never lets a metric fail the work it reports."""

from __future__ import annotations

import json
import logging

import pytest

from harpoon.metrics import CATALOG, check, emit


@pytest.mark.parametrize(("name", "value", "dimensions", "problem"), [
    ("Nope", 1, {}, "not in the catalog"),
    ("Allocations", 1, {"model": "gemma-270m", "pool": "p"}, "takes dimensions"),
    ("Allocations", 1, {"model": "gemma-270m", "pool": "p", "outcome": "cold", "tenant": "acme"}, "takes dimensions"),
    ("Allocations", 1, {"model": "gemma-270m", "pool": "p", "outcome": "weird"}, "outcome 'weird'"),
    ("TokensGenerated", 3, {"model": "google/gemma-3-270m-it", "pool": "p"}, "not a catalog model"),
    ("GpuSeconds", float("nan"), {"model": "qwen-30b", "pool": "p"}, "not finite"),
])
def test_the_catalog_refuses_unbounded_or_unknown_metrics(name, value, dimensions, problem):
    with pytest.raises(ValueError, match=problem):
        check(name, value, dimensions)


def test_a_refused_metric_is_logged_never_raised(capsys, caplog):
    with caplog.at_level(logging.ERROR, logger="harpoon.metrics"):
        emit("Allocations", 1, model="gemma-270m", pool="p", outcome="weird")
    assert capsys.readouterr().out == ""  # nothing reached CloudWatch
    assert "metric Allocations not emitted" in caplog.text


def test_an_emitted_metric_is_one_emf_line_with_its_unit_dimensions_and_metadata(capsys, monkeypatch):
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "harpoon")  # as the template sets it
    emit("AllocationLatency", 12.5, model="qwen-30b", pool="p", outcome="warm",
         metadata={"tenant_id": "acme", "request_id": "req-acme-1", "model": "not a dimension override"})
    line = json.loads(capsys.readouterr().out)
    directive = line["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == "Harpoon"
    assert directive["Metrics"] == [{"Name": "AllocationLatency", "Unit": "Milliseconds"}]
    assert sorted(directive["Dimensions"][0]) == ["model", "outcome", "pool", "service"]
    assert (line["model"], line["tenant_id"], line["AllocationLatency"]) == ("qwen-30b", "acme", [12.5])


def test_every_catalog_unit_is_a_cloudwatch_unit():
    from aws_lambda_powertools.metrics import MetricUnit

    assert all(MetricUnit(spec.unit) for spec in CATALOG.values())
