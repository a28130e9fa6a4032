"""Fault tests with real processes and a real (private) Redis.

Holders run as their own processes (holder_proc.py) against coordinators run by uvicorn; we
SIGKILL and SIGSTOP holders, kill and restart Redis and coordinators, and check from the holders'
logs that no two units of work accepted under leases ever exceeded the VRAM budget together.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from nemo_server.common.testing import free_port, internal_headers

from .conftest import Cluster, read_events

pytestmark = pytest.mark.integration

BUDGET = 1000


def wait_for(path: Path, event: str, timeout: float = 30, count: int = 1) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [e for e in read_events(path) if e["event"] == event]
        if len(found) >= count:
            return found
        time.sleep(0.05)
    raise AssertionError(f"no {event!r} event in {path.name}: {read_events(path)[-5:]}")


def acquire(cluster: Cluster, port: int, vram: int, wait_s: float) -> tuple[dict[str, Any], float]:
    from nemo_server.common.settings import CommonSettings

    headers = internal_headers(CommonSettings(data_dir=cluster.data_dir))
    started = time.monotonic()
    response = httpx.post(
        f"http://127.0.0.1:{port}/internal/v1/leases",
        json={
            "holder": "probe",
            "priority": "foreground",
            "vram_mb": vram,
            "ttl_s": 30,
            "wait_s": wait_s,
        },
        headers=headers,
        timeout=wait_s + 10,
    )
    assert response.status_code == 201, response.text
    return response.json(), time.monotonic() - started


def lease_view(cluster: Cluster, port: int, lease_id: str) -> dict[str, Any]:
    from nemo_server.common.settings import CommonSettings

    headers = internal_headers(CommonSettings(data_dir=cluster.data_dir))
    url = f"http://127.0.0.1:{port}/internal/v1/leases/{lease_id}"
    return httpx.get(url, headers=headers, timeout=10).json()


def assert_never_over_budget(paths: list[Path], kind: str) -> int:
    """Sweep the units of work of every holder (`work`: done believing the lease live;
    `unit`: also accepted after); return how many there were."""
    edges: list[tuple[float, int]] = []
    for path in paths:
        for e in read_events(path):
            if e["event"] == kind:
                edges += [(e["t0"], e["vram"]), (e["t1"], -e["vram"])]
    edges.sort(key=lambda edge: (edge[0], edge[1]))  # ends before starts at equal times
    load = 0
    for _, delta in edges:
        load += delta
        assert load <= BUDGET, f"two {kind} units together exceeded the VRAM budget"
    return len(edges) // 2


def test_sigkilled_holder_frees_its_lease_within_its_ttl(cluster: Cluster) -> None:
    port = free_port()
    cluster.coordinator(port)
    holder, out = cluster.holder("killed", port, "--ttl", "2", "--vram", "1000")
    granted = wait_for(out, "granted")[0]
    holder.signal(signal.SIGKILL)
    holder.popen.wait()  # type: ignore[union-attr]
    last = lease_view(cluster, port, granted["id"])  # its last heartbeat set this expiry
    assert last["state"] == "granted"
    view, _ = acquire(cluster, port, 1000, wait_s=15)
    assert view["state"] == "granted"
    # freed when its TTL ran out (coordinator clock; the reaper runs every 50 ms)
    assert view["granted_at"] <= last["expires_at"] + 1.0
    assert lease_view(cluster, port, granted["id"])["state"] == "expired"


def test_sigstopped_holder_finds_its_token_refused_after_resuming(cluster: Cluster) -> None:
    port = free_port()
    cluster.coordinator(port)
    holder, out = cluster.holder("stopped", port, "--ttl", "1.5", "--vram", "1000")
    granted = wait_for(out, "granted")[0]
    wait_for(out, "unit")
    holder.signal(signal.SIGSTOP)
    view, _ = acquire(cluster, port, 1000, wait_s=10)  # granted once the stopped one expires
    assert view["state"] == "granted" and view["token"] > granted["token"]
    holder.signal(signal.SIGCONT)
    refused = wait_for(out, "refused")[0]
    assert refused["status"] == 409 and refused["code"] == "lease_lost"
    units = [e for e in read_events(out) if e["event"] == "unit"]
    assert all(u["t1"] < view["granted_at"] for u in units)  # nothing accepted after


def test_redis_restart_mid_run_never_grants_over_budget(cluster: Cluster) -> None:
    redis_port, a, b = free_port(), free_port(), free_port()
    redis = cluster.redis(redis_port)
    env = {"NEMO_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0", "NEMO_COORDINATOR_MAX_TTL_S": "2"}
    cluster.coordinator(a, **env)
    cluster.coordinator(b, **env)  # two replicas on one Redis
    holders = [
        cluster.holder(
            f"h{i}",
            port,
            "--mode",
            "loop",
            "--vram",
            "700",
            "--ttl",
            "1.5",
            "--units",
            "30",
            "--unit-s",
            "0.05",
            "--validate-every",
            "30",
        )
        for i, port in enumerate((a, b, a))
    ]
    outs = [out for _, out in holders]
    for out in outs:
        wait_for(out, "granted")
    redis.signal(signal.SIGKILL)
    redis.popen.wait()  # type: ignore[union-attr]
    time.sleep(0.3)
    restarted_at = time.time()
    cluster.redis(redis_port)
    for out in outs:  # every holder works again after the restart
        deadline = time.monotonic() + 30
        while not [e for e in read_events(out) if e["event"] == "unit" and e["t0"] > restarted_at]:
            assert time.monotonic() < deadline, f"{out.name} never resumed"
            time.sleep(0.1)
    for proc, _ in holders:
        proc.stop()
    assert assert_never_over_budget(outs, "unit") > 10
    assert assert_never_over_budget(outs, "work") > 10


@pytest.mark.parametrize("backend", ["memory", "redis"])
def test_coordinator_restart_mid_run_never_grants_over_budget(
    cluster: Cluster, backend: str
) -> None:
    port = free_port()
    env = {"NEMO_COORDINATOR_MAX_TTL_S": "2"}
    if backend == "redis":
        redis_port = free_port()
        cluster.redis(redis_port)
        env["NEMO_REDIS_URL"] = f"redis://127.0.0.1:{redis_port}/0"
    coordinator = cluster.coordinator(port, **env)
    holders = [
        cluster.holder(
            f"h{i}",
            port,
            "--mode",
            "loop",
            "--vram",
            "600",
            "--ttl",
            "1.5",
            "--units",
            "30",
            "--unit-s",
            "0.05",
            "--validate-every",
            "30",
        )
        for i in range(2)
    ]
    outs = [out for _, out in holders]
    for out in outs:
        wait_for(out, "granted")
    coordinator.signal(signal.SIGKILL)
    coordinator.popen.wait()  # type: ignore[union-attr]
    restarted_at = time.time()
    cluster.coordinator(port, **env)
    for out in outs:
        deadline = time.monotonic() + 30
        while not [e for e in read_events(out) if e["event"] == "unit" and e["t0"] > restarted_at]:
            assert time.monotonic() < deadline, f"{out.name} never resumed"
            time.sleep(0.1)
    for proc, _ in holders:
        proc.stop()
    assert assert_never_over_budget(outs, "unit") > 5
    assert assert_never_over_budget(outs, "work") > 5
