"""The metrics the local stack's functions emitted, read back from their logs.

Lambda sends a function's stdout to CloudWatch Logs, where EMF lines become
metrics; locally the same lines land in .local/logs/<Function>.log. This reads
them and aggregates per (metric, dimensions): what CloudWatch would graph.

    python -m local.metrics [--api-url http://127.0.0.1:3000]    (make metrics)
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from pathlib import Path


def emf_records(lines: Iterable[str]) -> Iterable[dict]:
    """Each metric of each EMF line: {name, unit, namespace, dimensions, values, metadata}."""
    for line in lines:
        if '"_aws"' not in line:
            continue
        try:
            blob = json.loads(line)
        except ValueError:
            continue  # a partial or foreign line
        if not isinstance(blob, dict) or not isinstance(blob.get("_aws"), dict):
            continue
        for directive in blob.get("_aws", {}).get("CloudWatchMetrics", []):
            names = {key for dims in directive.get("Dimensions", []) for key in dims}
            dimensions = {key: blob.get(key) for key in sorted(names)}
            for metric in directive.get("Metrics", []):
                values = blob.get(metric["Name"])
                values = [v for v in (values if isinstance(values, list) else [values]) if isinstance(v, (int, float))]
                known = names | {m["Name"] for m in directive["Metrics"]} | {"_aws"}
                yield {"name": metric["Name"], "unit": metric.get("Unit", "None"),
                       "namespace": directive.get("Namespace"), "dimensions": dimensions, "values": values,
                       "metadata": {k: v for k, v in blob.items() if k not in known}}


def from_log_dir(log_dir: Path, since: dict[str, int] | None = None) -> list[dict]:
    """Every function log's EMF records, each file read from `since[name]`
    (its size when this stack started: logs are appended across runs)."""
    records = []
    for path in sorted(log_dir.glob("*.log")):
        with open(path, encoding="utf-8", errors="replace") as lines:
            lines.seek((since or {}).get(path.name, 0))
            records += [{**record, "function": path.stem} for record in emf_records(lines)]
    return records


def log_sizes(log_dir: Path) -> dict[str, int]:
    return {path.name: path.stat().st_size for path in log_dir.glob("*.log")}


def aggregate(records: list[dict]) -> list[dict]:
    rows: dict[tuple, dict] = {}
    for record in records:
        key = (record["name"], tuple(sorted((k, v) for k, v in record["dimensions"].items() if k != "service")))
        row = rows.setdefault(key, {"metric": record["name"], "unit": record["unit"],
                                    "dimensions": dict(key[1]), "samples": 0, "sum": 0.0, "min": None, "max": None})
        for value in record["values"]:
            row["samples"] += 1
            row["sum"] += value
            row["min"] = value if row["min"] is None else min(row["min"], value)
            row["max"] = value if row["max"] is None else max(row["max"], value)
    return [rows[key] for key in sorted(rows)]


def render(rows: list[dict]) -> str:
    from bench.table import render as table

    body = [[row["metric"], " ".join(f"{k}={v}" for k, v in row["dimensions"].items()), row["unit"], row["samples"],
             _number(row["sum"]), _number(row["min"]), _number(row["max"])] for row in rows]
    return table(["metric", "dimensions", "unit", "samples", "sum", "min", "max"], body)


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.4g}"


def main(argv: list[str] | None = None) -> int:
    import httpx

    parser = argparse.ArgumentParser(description="The metrics of the running local stack (make local), as a table.")
    parser.add_argument("--api-url", default="http://127.0.0.1:3000")
    args = parser.parse_args(argv)
    try:
        rows = httpx.get(f"{args.api_url.rstrip('/')}/_local/metrics", timeout=30).json()["metrics"]
    except httpx.HTTPError as exc:
        print(f"metrics: no local stack at {args.api_url} ({exc}); start one with `make local`", file=sys.stderr)
        return 1
    print(render(rows) if rows else "no metrics yet: send a request first")
    return 0


if __name__ == "__main__":
    sys.exit(main())
