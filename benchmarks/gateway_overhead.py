"""Gateway overhead: the same trivial endpoint called directly and through the gateway.

The service and the gateway run as their own processes; this script is the load generator (a
separate process). Through the gateway, every request is authenticated (API key) and rate
limited. Prints one JSON line: added latency p50/p99 (sequential calls on a keep-alive
connection) and the throughput ratio (concurrent clients for a fixed time).

    .venv/bin/python benchmarks/gateway_overhead.py [--requests 3000] [--seconds 10] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from _servers import ADMIN_PASSWORD, free_port, gateway_env, python, start

UPSTREAM = """
from nemo_server.common.app import create_service_app, service_router
from nemo_server.common.settings import ServiceSettings

def create_app():
    router = service_router()

    @router.get("/v1/llm/ping")
    async def ping() -> dict:
        return {"ok": True}

    return create_service_app("llm", ServiceSettings(), routers=[router])
"""


def _latencies(url: str, headers: dict[str, str], n: int) -> list[float]:
    out = []
    with httpx.Client(headers=headers) as client:
        for _ in range(50):
            client.get(url).raise_for_status()
        for _ in range(n):
            start = time.perf_counter()
            client.get(url).raise_for_status()
            out.append((time.perf_counter() - start) * 1000)
    return out


async def _throughput(url: str, headers: dict[str, str], seconds: float, concurrency: int) -> float:
    done = 0
    stop = time.monotonic() + seconds

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal done
        while time.monotonic() < stop:
            (await client.get(url)).raise_for_status()
            done += 1

    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(headers=headers, limits=limits) as client:
        start = time.monotonic()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        return done / (time.monotonic() - start)


def _cpu_seconds(pid: int) -> float:
    """CPU time a process has used: unlike wall time, not inflated by other load on the machine."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="nemo-bench-"))
    (work / "upstream_app.py").write_text(UPSTREAM)
    up_port, gw_port = free_port(), free_port()
    env = {
        **gateway_env(work, {"llm": f"http://127.0.0.1:{up_port}"}),
        "PYTHONPATH": str(work),
    }
    uvicorn_args = ["--host", "127.0.0.1", "--log-level", "warning", "--no-access-log"]
    upstream = start(
        [
            python(),
            "-m",
            "uvicorn",
            "--factory",
            "upstream_app:create_app",
            "--port",
            str(up_port),
            *uvicorn_args,
        ],
        env,
        f"http://127.0.0.1:{up_port}",
        work / "upstream.log",
    )
    gateway = start(
        [
            python(),
            *os.environ.get("BENCH_GATEWAY_PREFIX", "").split(),
            "-m",
            "nemo_server",
            "serve",
            "gateway",
            "--port",
            str(gw_port),
        ],
        env,
        f"http://127.0.0.1:{gw_port}",
        work / "gateway.log",
    )
    try:
        gw = f"http://127.0.0.1:{gw_port}"
        token = httpx.post(
            f"{gw}/v1/auth/token", data={"username": "admin", "password": ADMIN_PASSWORD}
        )
        token.raise_for_status()
        key = httpx.post(
            f"{gw}/v1/api-keys",
            json={"name": "bench"},
            headers={"Authorization": f"Bearer {token.json()['access_token']}"},
        ).json()["key"]
        from nemo_server.common.auth import InternalTokenCodec, Principal

        internal = InternalTokenCodec(
            (work / "data" / "secrets" / "internal_key").read_text().strip(), ttl_s=600
        )
        direct_headers = {"Authorization": f"Bearer {internal.mint(Principal('bench', 'bench'))}"}
        gateway_headers = {"Authorization": f"Bearer {key}"}
        direct_url = f"http://127.0.0.1:{up_port}/v1/llm/ping"
        gateway_url = f"{gw}/v1/llm/ping"

        direct = _latencies(direct_url, direct_headers, args.requests)
        cpu_before = _cpu_seconds(gateway.pid)
        through = _latencies(gateway_url, gateway_headers, args.requests)
        gateway_cpu_us = (_cpu_seconds(gateway.pid) - cpu_before) / (args.requests + 50) * 1e6
        direct_rps = asyncio.run(
            _throughput(direct_url, direct_headers, args.seconds, args.concurrency)
        )
        gateway_rps = asyncio.run(
            _throughput(gateway_url, gateway_headers, args.seconds, args.concurrency)
        )
    finally:
        for process in (gateway, upstream):
            process.terminate()
            process.wait(timeout=15)

    result = {
        "benchmark": "gateway_overhead",
        "requests": args.requests,
        "direct_p50_ms": round(_pct(direct, 50), 3),
        "direct_p99_ms": round(_pct(direct, 99), 3),
        "gateway_p50_ms": round(_pct(through, 50), 3),
        "gateway_p99_ms": round(_pct(through, 99), 3),
        "added_p50_ms": round(_pct(through, 50) - _pct(direct, 50), 3),
        "added_p99_ms": round(_pct(through, 99) - _pct(direct, 99), 3),
        "direct_rps": round(direct_rps, 1),
        "gateway_rps": round(gateway_rps, 1),
        "throughput_ratio": round(gateway_rps / direct_rps, 3),
        "gateway_cpu_us_per_request": round(gateway_cpu_us, 1),
        "load_average_1m": os.getloadavg()[0],
        "concurrency": args.concurrency,
        "goal": "added p50 <= 1 ms, p99 <= 5 ms, ratio >= 0.5",
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
