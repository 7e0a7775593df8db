"""A request's GPU path with a warm hit against a cold allocation, side by side.

Allocate -> Infer -> Release (the three steps' domain code, as the Lambdas run
it) against moto's DynamoDB over HTTP (ThreadedMotoServer) and the HostedAI
emulator at its modelled latencies (allocate 15 ms + 1.5 ms per GB of VRAM).
Cold and warm runs alternate in one loop, so the machine's noise hits both
alike: a cold run allocates at HostedAI and releases for real; a warm run
claims the GPU the previous warm run kept and keeps it again. Step Functions
and Lambda start-up are not in these figures (they are the same for both).
"""

from __future__ import annotations

import statistics
import time
import uuid

RUNS = 40


def measure(runs: int = RUNS) -> list[list[object]]:
    import boto3
    from moto.server import ThreadedMotoServer

    from harpoon.adapters.hostedai import HostedAIClient
    from harpoon.adapters.leases import LeasePolicy, LeaseRepository
    from harpoon.catalog import load_catalog
    from harpoon.domain.allocate import allocate
    from harpoon.domain.breaker import BreakerConfig, CircuitBreaker
    from harpoon.domain.infer import infer
    from harpoon.domain.release import release
    from harpoon.models import AllocateInput, InferInput, ReleaseInput
    from harpoon.settings import get_settings
    from local.chaos import free_port
    from local.emulator import run_in_thread
    from tests.fakes import FakeBreakerRepo, template_table

    import logging

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no access log line per DynamoDB call
    port = free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    moto.start()
    emulator = run_in_thread(api_key="bench-key", time_scale=1.0)
    try:
        ddb = boto3.client("dynamodb", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                           aws_access_key_id="testing", aws_secret_access_key="testing")
        template_table("LeasesTable", "bench-leases", ddb)
        leases = LeaseRepository("bench-leases", ddb, policy=LeasePolicy())
        hostedai = HostedAIClient(emulator.base_url, api_key=lambda refresh=False: "bench-key")
        breaker = CircuitBreaker(FakeBreakerRepo(), BreakerConfig(cache_seconds=0))
        catalog = load_catalog()

        def one(model: str, warm: bool) -> tuple[float, float, bool]:
            rid = f"req-{uuid.uuid4().hex}"
            started = time.perf_counter()
            out = allocate(AllocateInput(request_id=rid, model=model), leases=leases, hostedai=hostedai, breaker=breaker,
                           catalog=catalog, pool_id="gpu-pool-1", duration_seconds=900, warm_enabled=warm)
            allocated = time.perf_counter()
            infer(InferInput(request_id=rid, allocation_id=out.allocation_id, pool_id=out.pool_id, model=out.model,
                             prompt="Hello", max_tokens=16, lease_expires_at=out.lease_expires_at,
                             breaker_clean_at=out.breaker_clean_at),
                  leases=leases, hostedai=hostedai, breaker=breaker, catalog=catalog,
                  renew_below=get_settings().lease_renew_below_seconds)
            release(ReleaseInput(request_id=rid, allocation=out, keep_warm=warm), leases=leases, hostedai=hostedai,
                    warm_idle_seconds=300 if warm else 0)
            done = time.perf_counter()
            return (allocated - started) * 1000, (done - started) * 1000, out.warm

        rows = []
        for model in ("gemma-270m", "qwen-30b"):
            one(model, warm=True)  # seeds the warm pool (a cold allocation kept warm)
            one(model, warm=False)  # and warms up the clients
            cold_alloc, cold_total, warm_alloc, warm_total, hits = [], [], [], [], 0
            for _ in range(runs):
                a, t, _hit = one(model, warm=False)
                cold_alloc.append(a)
                cold_total.append(t)
                a, t, hit = one(model, warm=True)
                warm_alloc.append(a)
                warm_total.append(t)
                hits += hit
            calls_note = f"{hits}/{runs}"
            ca, wa = statistics.median(cold_alloc), statistics.median(warm_alloc)
            ct, wt = statistics.median(cold_total), statistics.median(warm_total)
            rows.append([model, f"{ca:.1f}", f"{wa:.1f}", f"{ca / wa:.2f}x", f"{ct:.1f}", f"{wt:.1f}",
                         f"{ct / wt:.2f}x", f"{ct - wt:.1f}", calls_note])
        return rows
    finally:
        emulator.stop()
        moto.stop()


HEADERS = ["model", "allocate cold ms", "allocate warm ms", "cold/warm", "request cold ms", "request warm ms",
           "cold/warm", "saved ms", "warm hits"]
