"""Pre-emption benchmark: a background job in units vs a foreground requester, one run.

Measures, for each unit duration U of the background job (800 MB of a 1000 MB budget, so every
foreground request of 500 MB needs it to yield):
- foreground grant latency p50/p99 (goal: p99 <= U + 20 ms), requests arriving at random
  phases of the background's unit;
- foreground throughput (closed loop, fixed work per request) with the background running,
  divided by the same loop without it (goal >= 0.9);
- that no background unit was lost or done twice: every unit's result is checkpointed under a
  validated fencing token, and the checkpoints must be exactly 0..K-1, once each.

Transports: `local` (the state machine in process, LocalLeaseClient) and `http` (a real
coordinator served by uvicorn in a thread, HttpLeaseClient: what services use). Work is
simulated with sleeps, so figures are the protocol's overhead, not a GPU's.

    .venv/bin/python benchmarks/preemption.py [--units-ms 20,50,100,200] [--transport both]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import statistics
import sys
import tempfile
import threading
import time
from typing import Any

from nemo_server.common.auth import InternalTokenCodec
from nemo_server.common.gpu import (
    HttpLeaseClient,
    Lease,
    LeaseClient,
    LocalLeaseClient,
    Priority,
    run_preemptible,
)

BUDGET, BG_MB, FG_MB = 1000, 800, 500


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class Job:
    """A background job of numbered units with a fenced checkpoint."""

    def __init__(self, unit_s: float) -> None:
        self.unit_s = unit_s
        self.next = 0  # the checkpoint: index of the next unit to do
        self.committed: list[int] = []
        self.attempts = 0
        self.stop = asyncio.Event()

    async def unit(self, lease: Lease) -> bool:
        index = self.next
        self.attempts += 1
        await asyncio.sleep(self.unit_s)  # the work of unit `index`
        await lease.validate()  # commit only under a live token
        self.committed.append(index)
        self.next = index + 1
        return not self.stop.is_set()

    def intact(self) -> bool:
        return self.committed == list(range(len(self.committed)))


async def foreground(client: LeaseClient, work_s: float) -> float:
    started = time.perf_counter()
    async with client.lease("bench:fg", priority=Priority.FOREGROUND, vram_mb=FG_MB, ttl_s=10):
        granted = time.perf_counter() - started
        await asyncio.sleep(work_s)
    return granted


async def latency(client: LeaseClient, unit_s: float, requests: int, rng: random.Random) -> dict:
    job = Job(unit_s)
    task = asyncio.create_task(
        run_preemptible(client, "bench:bg", job.unit, vram_mb=BG_MB, ttl_s=10)
    )
    waits = []
    await asyncio.sleep(2 * unit_s)
    for _ in range(requests):
        await asyncio.sleep(rng.uniform(0, unit_s))  # a random phase of the running unit
        waits.append(await foreground(client, 0.02))
        await asyncio.sleep(2 * unit_s)  # let the background resume
    job.stop.set()
    result = await task
    return {
        "unit_ms": unit_s * 1000,
        "grant_p50_ms": round(statistics.median(waits) * 1000, 1),
        "grant_p99_ms": round(pct(waits, 0.99) * 1000, 1),
        "goal_p99_ms": unit_s * 1000 + 20,
        "p99_within_goal": pct(waits, 0.99) <= unit_s + 0.020,
        "preemptions": result.preemptions,
        "units_committed": len(job.committed),
        "units_redone": job.attempts - len(job.committed),
        "no_unit_lost_or_doubled": job.intact() and result.units == len(job.committed),
    }


async def throughput(client: LeaseClient, unit_s: float, work_s: float, seconds: float) -> dict:
    async def loop() -> float:
        """Foreground requests per second, closed loop."""
        done, start = 0, time.perf_counter()
        while time.perf_counter() < start + seconds:
            await foreground(client, work_s)
            done += 1
        return done / (time.perf_counter() - start)

    alone = await loop()
    job = Job(unit_s)
    task = asyncio.create_task(
        run_preemptible(client, "bench:bg", job.unit, vram_mb=BG_MB, ttl_s=10)
    )
    await asyncio.sleep(2 * unit_s)
    shared = await loop()
    job.stop.set()
    await task
    return {
        "unit_ms": unit_s * 1000,
        "fg_work_ms": work_s * 1000,
        "fg_per_s_alone": round(alone, 3),
        "fg_per_s_with_background": round(shared, 3),
        "ratio": round(shared / alone, 3),
        "bg_units_meanwhile": len(job.committed),
        "no_unit_lost_or_doubled": job.intact(),
    }


def gpu_info() -> dict[str, Any] | None:
    """The real VRAM budget where an NVIDIA GPU is present (NVML), else None."""
    try:
        from nemo_server.coordinator.budget import probe_nvml

        return probe_nvml(0)
    except Exception:
        return None


def start_coordinator() -> tuple[str, InternalTokenCodec, Any]:
    import uvicorn

    from nemo_server.coordinator.app import create_app
    from nemo_server.coordinator.settings import CoordinatorSettings

    data = tempfile.mkdtemp(prefix="nemo-bench-")
    os.environ.update(NEMO_DATA_DIR=data, NEMO_SECRETS_DIR=os.path.join(data, "none"))
    os.environ.pop("NEMO_REDIS_URL", None)
    settings = CoordinatorSettings(budget_source="config", vram_budget_mb=BUDGET, tick_s=0.05)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.02)
    codec = InternalTokenCodec(settings.common.secrets().get("internal_key"))
    return f"http://127.0.0.1:{port}", codec, server


async def main(args: argparse.Namespace) -> dict:
    units = [int(u) / 1000 for u in args.units_ms.split(",")]
    transports = ["local", "http"] if args.transport == "both" else [args.transport]
    out: dict[str, Any] = {
        "benchmark": "preemption",
        "budget_mb": BUDGET,
        "bg_mb": BG_MB,
        "fg_mb": FG_MB,
        "requests_per_unit": args.requests,
        "cpus": os.cpu_count(),
        "load_avg_1m": os.getloadavg()[0],
        "gpu": gpu_info(),
    }
    server = None
    for name in transports:
        if name == "local":
            client: LeaseClient = LocalLeaseClient(budget_mb=BUDGET)
        else:
            url, codec, server = start_coordinator()
            client = HttpLeaseClient(url, codec)
        rng = random.Random(args.seed)
        out[name] = {
            "latency": [await latency(client, u, args.requests, rng) for u in units],
            "throughput": [
                await throughput(client, u, args.fg_work_ms / 1000, args.seconds) for u in units
            ],
        }
        await client.aclose()
    if server is not None:
        server.should_exit = True
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--units-ms", default="20,50,100,200")
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--fg-work-ms", type=float, default=500.0)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--transport", choices=["local", "http", "both"], default="both")
    parser.add_argument("--seed", type=int, default=1)
    print(json.dumps(asyncio.run(main(parser.parse_args()))))
    sys.exit(0)
