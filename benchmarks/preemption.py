"""Pre-emption benchmark: a background job in units vs a foreground requester, one run.

Measures, for each unit duration U of the background job (800 MB of a 1000 MB budget, so every
foreground request of 500 MB needs it to yield):
- foreground grant latency p50/p99 (goal: p99 <= U + 20 ms), requests arriving at random
  phases of the background's unit;
- foreground throughput (closed loop, fixed work per request) with the background running,
  divided by the same loop without it (goal >= 0.9), with the coordinator's linger window
  (`--linger-s`, its default) and without it (0: every request pre-empts the job anew);
- that no background unit was lost or done twice: every unit's result is checkpointed under a
  validated fencing token, and the checkpoints must be exactly 0..K-1, once each.

Transports: `local` (the state machine in process, LocalLeaseClient), `http` (a real
coordinator process served by uvicorn, HttpLeaseClient: what services use) and `redis` (two
coordinator processes on one Redis; the job talks to one, the foreground requester to the other). Work is
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
import subprocess
import sys
import tempfile
import time
from typing import Any

import httpx

from nemo_server.common.auth import InternalTokenCodec
from nemo_server.common.gpu import (
    Lease,
    LeaseClient,
    LocalLeaseClient,
    Priority,
    run_preemptible,
)
from nemo_server.common.gpu_http import HttpLeaseClient

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
        self.durations: list[float] = []
        self.stop = asyncio.Event()

    async def unit(self, lease: Lease) -> bool:
        index = self.next
        self.attempts += 1
        started = time.perf_counter()
        await asyncio.sleep(self.unit_s)  # the work of unit `index`
        await lease.validate()  # commit only under a live token
        self.durations.append(time.perf_counter() - started)
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


async def latency(
    clients: tuple[LeaseClient, LeaseClient],
    unit_s: float,
    requests: int,
    gap_s: float,
    rng: random.Random,
) -> dict:
    bg_client, client = clients
    job = Job(unit_s)
    task = asyncio.create_task(
        run_preemptible(bg_client, "bench:bg", job.unit, vram_mb=BG_MB, ttl_s=10)
    )
    waits = []
    await asyncio.sleep(2 * unit_s)
    for _ in range(requests):
        await asyncio.sleep(rng.uniform(0, unit_s))  # a random phase of the running unit
        waits.append(await foreground(client, 0.02))
        await asyncio.sleep(gap_s + 2 * unit_s)  # past the linger window: the job resumes
    job.stop.set()
    result = await task
    return {
        "unit_ms": unit_s * 1000,
        # a unit's real length: the work, its sleep's timer slack and the fenced checkpoint
        "unit_measured_p50_ms": round(statistics.median(job.durations) * 1000, 1),
        "grant_p50_ms": round(statistics.median(waits) * 1000, 1),
        "grant_p99_ms": round(pct(waits, 0.99) * 1000, 1),
        "goal_p99_ms": unit_s * 1000 + 20,
        "p99_within_goal": pct(waits, 0.99) <= unit_s + 0.020,
        "preemptions": result.preemptions,
        "units_committed": len(job.committed),
        "units_redone": job.attempts - len(job.committed),
        "no_unit_lost_or_doubled": job.intact() and result.units == len(job.committed),
    }


async def closed_loop(client: LeaseClient, work_s: float, seconds: float) -> float:
    """Foreground requests per second, back to back."""
    done, start = 0, time.perf_counter()
    while time.perf_counter() < start + seconds:
        await foreground(client, work_s)
        done += 1
    return done / (time.perf_counter() - start)


async def throughput(
    clients: tuple[LeaseClient, LeaseClient],
    alone: float,
    unit_s: float,
    work_s: float,
    seconds: float,
) -> dict:
    bg_client, client = clients
    job = Job(unit_s)
    task = asyncio.create_task(
        run_preemptible(bg_client, "bench:bg", job.unit, vram_mb=BG_MB, ttl_s=10)
    )
    await asyncio.sleep(2 * unit_s)
    shared = await closed_loop(client, work_s, seconds)
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


def start_coordinator(
    linger_s: float, data: str, redis_url: str | None = None
) -> tuple[str, InternalTokenCodec, subprocess.Popen]:
    """A coordinator in its own process (as `nemo up` runs it), on a free port."""
    from nemo_server.common.settings import CommonSettings

    env = {k: v for k, v in os.environ.items() if not k.startswith("NEMO_")}
    if redis_url:
        env.update(NEMO_REDIS_URL=redis_url, NEMO_COORDINATOR_REDIS_KEY=f"bench:gpu:{data}")
    env.update(
        NEMO_DATA_DIR=data,
        NEMO_SECRETS_DIR=os.path.join(data, "none"),
        NEMO_COORDINATOR_BUDGET_SOURCE="config",
        NEMO_COORDINATOR_VRAM_BUDGET_MB=str(BUDGET),
        NEMO_COORDINATOR_TICK_S="0.05",
        NEMO_COORDINATOR_LINGER_S=str(linger_s),
        NEMO_LOG_LEVEL="WARNING",
    )
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "nemo_server.coordinator.app:create_app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            raise RuntimeError("the coordinator did not start")
        time.sleep(0.1)
    settings = CommonSettings(data_dir=data, secrets_dir=os.path.join(data, "none"))
    codec = InternalTokenCodec(settings.secrets().get("internal_key"))
    return url, codec, proc


async def main(args: argparse.Namespace) -> dict:
    units = [int(u) / 1000 for u in args.units_ms.split(",")]
    transports = {"both": ["local", "http"], "all": ["local", "http", "redis"]}.get(
        args.transport, [args.transport]
    )
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
    out["linger_s"] = args.linger_s
    servers = []

    def make(name: str, linger_s: float) -> tuple[LeaseClient, LeaseClient]:
        """(background client, foreground client)."""
        if name == "local":
            local = LocalLeaseClient(budget_mb=BUDGET, linger_s=linger_s)
            return local, local
        data = tempfile.mkdtemp(prefix="nemo-bench-")
        if name == "http":
            url, codec, server = start_coordinator(linger_s, data)
            servers.append(server)
            http = HttpLeaseClient(url, codec)
            return http, http
        # two replicas on one Redis: the job talks to one, the foreground to the other
        pair = []
        for _ in range(2):
            url, codec, server = start_coordinator(linger_s, data, args.redis_url)
            servers.append(server)
            pair.append(HttpLeaseClient(url, codec))
        return pair[0], pair[1]

    work_s = args.fg_work_ms / 1000
    for name in transports:
        rng = random.Random(args.seed)
        figures: dict[str, Any] = {}
        for linger_s in (args.linger_s, 0.0):
            clients = make(name, linger_s)
            if linger_s == args.linger_s:
                figures["latency"] = [
                    await latency(clients, u, args.requests, linger_s, rng) for u in units
                ]
            alone = await closed_loop(clients[1], work_s, args.seconds)
            figures[f"throughput_linger_{linger_s:g}s"] = [
                await throughput(clients, alone, u, work_s, args.seconds) for u in units
            ]
            for client in set(clients):
                await client.aclose()
        out[name] = figures
    for server in servers:
        server.terminate()
        server.wait(timeout=10)
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--units-ms", default="20,50,100,200")
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--linger-s", type=float, default=0.5)
    parser.add_argument("--fg-work-ms", type=float, default=500.0)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument(
        "--transport",
        choices=["local", "http", "redis", "both", "all"],
        default="both",
        help="both: local and http; redis: two coordinator replicas on Redis; all: the three",
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--seed", type=int, default=1)
    print(json.dumps(asyncio.run(main(parser.parse_args()))))
    sys.exit(0)
