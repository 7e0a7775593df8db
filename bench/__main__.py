"""`make bench`: every benchmark, as tables of medians and ratios.

    python -m bench [--quick]      (--quick: 1k and 10k leases only, fewer runs)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1"}.items():
        os.environ.setdefault(key, value)
    for key in [k for k in os.environ if k.startswith("AWS_ENDPOINT_URL")]:
        del os.environ[key]  # the benchmarks bring their own emulations
    sys.path[:0] = [str(ROOT / "layers" / "harpoon"), str(ROOT)]

    from bench import body_parse, classify_time, cold_init, overhead, request_cost, sweep_cost, throughput, warm_latency
    from bench.table import render

    def section(title: str, module, arg) -> dict:
        """Print one measurement's title and table; its raw results for the JSON."""
        print(title)
        result = module.results(arg)
        print(render(module.HEADERS, module.rows(result)))
        print()
        return result

    started = time.perf_counter()
    runs = 5 if args.quick else cold_init.RUNS
    cold = section(f"Cold init: a fresh process importing each handler and building its first request's clients, "
                   f"against a bare interpreter, {runs} interleaved rounds", cold_init, runs)
    cost = request_cost.results(5 if args.quick else request_cost.REQUESTS)
    print(request_cost.report(cost))
    print()
    rounds = 5 if args.quick else overhead.RUNS
    over = section(f"Orchestration overhead: one request against a direct inference call and against its floor, "
                   f"{rounds} interleaved rounds", overhead, rounds)
    load = section("Local stack throughput (2 cores: moto, every function worker and the emulator share them)",
                   throughput, ((1, 10), (8, 16), (32, 32)) if args.quick else throughput.LEVELS)
    repeats = 20 if args.quick else classify_time.REPEATS
    print(f"Classifier: time per prompt on the routing evaluation set, {repeats} runs each")
    print(render(classify_time.HEADERS, classify_time.measure(repeats)))
    print()
    print("Classifier: adversarial inputs")
    print(render(classify_time.ADVERSARIAL_HEADERS, classify_time.measure_adversarial()))
    print()
    print("API: parsing the worst request bodies under the size limit")
    print(render(body_parse.HEADERS, body_parse.measure()))
    print()
    print("Reclaim sweep: items read and read capacity of one sweep, 1% of the leases expired")
    print(render(sweep_cost.HEADERS, sweep_cost.measure((1_000, 10_000) if args.quick else (1_000, 10_000, 100_000))))
    print()
    runs = 10 if args.quick else warm_latency.RUNS
    print(f"Warm reuse: Allocate -> Infer -> Release, medians of {runs} cold and {runs} warm runs, alternating")
    print(render(warm_latency.HEADERS, warm_latency.measure(runs)))
    print(f"\n(bench took {time.perf_counter() - started:.0f} s)")
    out = ROOT / "bench" / "results" / time.strftime("bench-%Y%m%dT%H%M%SZ.json", time.gmtime())
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"cold_init": cold, "request_cost": cost, "overhead": over, "throughput": load},
                              indent=1, default=str))
    print(f"(cold init, request cost, overhead and throughput written to {out.relative_to(ROOT)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
