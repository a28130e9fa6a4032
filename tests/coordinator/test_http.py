"""HttpLeaseClient against a real coordinator over HTTP (uvicorn in a thread)."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from nemo_server.common.errors import Conflict, ServiceUnavailable
from nemo_server.common.gpu import Lease, LeaseLost, Priority, run_preemptible
from nemo_server.common.gpu_http import HttpLeaseClient
from nemo_server.common.testing import ServerThread, free_port, internal_headers
from nemo_server.coordinator.settings import CoordinatorSettings


async def test_http_client_leases_preempts_and_resumes(
    thread_server: ServerThread, coordinator_settings: CoordinatorSettings
) -> None:
    client = HttpLeaseClient(thread_server.url, _codec(coordinator_settings))
    done: list[int] = []

    async def unit(lease: Lease) -> bool:
        await asyncio.sleep(0.02)
        await lease.validate()
        done.append(len(done))
        return len(done) < 20

    job = asyncio.create_task(run_preemptible(client, "bg", unit, vram_mb=800, ttl_s=3))
    await asyncio.sleep(0.1)
    async with client.lease("fg", priority=Priority.FOREGROUND, vram_mb=500) as fg:
        assert fg.token > 0
        with pytest.raises(Conflict, match="exceeds the whole GPU budget"):
            await client.acquire("big", vram_mb=5000)
    result = await asyncio.wait_for(job, timeout=20)
    assert done == list(range(20)) and result.preemptions == 1
    await client.aclose()


async def test_event_stream_pushes_preemption_to_the_holder(
    thread_server: ServerThread, coordinator_settings: CoordinatorSettings
) -> None:
    headers = internal_headers(coordinator_settings.common)
    async with httpx.AsyncClient(base_url=thread_server.url, headers=headers) as http:
        body = {"holder": "bg", "priority": "background", "vram_mb": 800}
        bg = (await http.post("/internal/v1/leases", json=body)).json()
        events: list[str] = []
        async with http.stream("GET", f"/internal/v1/leases/{bg['id']}/events") as stream:
            async for line in stream.aiter_lines():
                if line.startswith("event:"):
                    events.append(line.split(":", 1)[1].strip())
                    if events == ["granted"]:
                        fg = {"holder": "fg", "priority": "foreground", "vram_mb": 500}
                        await http.post("/internal/v1/leases", json=fg)
                    elif events[-1] == "preempt_requested":
                        token = {"token": bg["token"]}
                        await http.post(f"/internal/v1/leases/{bg['id']}/release", json=token)
                elif line.startswith("data:") and events[-1] == "released":
                    assert json.loads(line[5:])["state"] == "released"
    assert events == ["granted", "preempt_requested", "released"]


async def test_revoked_holder_learns_it_lost_the_lease(
    thread_server: ServerThread, coordinator_settings: CoordinatorSettings
) -> None:
    client = HttpLeaseClient(thread_server.url, _codec(coordinator_settings))
    lease = await client.acquire("bg", priority="background", vram_mb=800, ttl_s=3)
    async with client.lease("fg", vram_mb=500, wait_timeout_s=10):  # bg ignores it: revoked
        await asyncio.wait_for(lease.wait_preempted(), timeout=5)
        with pytest.raises(LeaseLost):
            await lease.validate()
    await lease.release()
    await client.aclose()


async def test_unreachable_coordinator_is_service_unavailable(
    coordinator_settings: CoordinatorSettings,
) -> None:
    client = HttpLeaseClient(f"http://127.0.0.1:{free_port()}", _codec(coordinator_settings))
    with pytest.raises(ServiceUnavailable, match="unavailable"):
        await client.acquire("a", vram_mb=10)
    await client.aclose()


def _codec(settings: CoordinatorSettings):  # type: ignore[no-untyped-def]
    from nemo_server.common.auth import InternalTokenCodec

    return InternalTokenCodec(settings.common.secrets().get("internal_key"))


async def test_waiting_request_can_follow_its_grant_on_the_event_stream(
    thread_server: ServerThread, coordinator_settings: CoordinatorSettings
) -> None:
    headers = internal_headers(coordinator_settings.common)
    async with httpx.AsyncClient(base_url=thread_server.url, headers=headers) as http:
        holder = {"holder": "a", "priority": "foreground", "vram_mb": 1000}
        first = (await http.post("/internal/v1/leases", json=holder)).json()
        waiter = (await http.post("/internal/v1/leases", json={**holder, "holder": "b"})).json()
        assert waiter["state"] == "waiting"
        events: list[str] = []
        async with http.stream("GET", f"/internal/v1/leases/{waiter['id']}/events") as stream:
            async for line in stream.aiter_lines():
                if not line.startswith("event:"):
                    continue
                events.append(line.split(":", 1)[1].strip())
                if events == ["waiting"]:
                    release = {"token": first["token"]}
                    await http.post(f"/internal/v1/leases/{first['id']}/release", json=release)
                elif events[-1] == "granted":
                    break
    assert events == ["waiting", "granted"]
