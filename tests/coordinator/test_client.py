"""The lease client of common/gpu.py over the in-process state machine (LocalLeaseClient)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from nemo_server.common.errors import Conflict, ServiceUnavailable
from nemo_server.common.gpu import (
    Lease,
    LeaseLost,
    LocalLeaseClient,
    Priority,
    run_preemptible,
)


async def test_lease_is_held_inside_and_released_on_exit() -> None:
    client = LocalLeaseClient(budget_mb=1000)
    async with client.lease("llm:a", priority=Priority.FOREGROUND, vram_mb=600) as lease:
        assert lease.token > 0 and not lease.preempt_requested
        await lease.validate()
        status = await client.backend.status()
        assert status["used_mb"] == 600
    assert (await client.backend.status())["used_mb"] == 0
    with pytest.raises(LeaseLost):
        await lease.validate()


async def test_wait_timeout_says_gpu_busy_and_withdraws_the_request() -> None:
    client = LocalLeaseClient(budget_mb=1000)
    async with client.lease("a", vram_mb=1000):
        with pytest.raises(ServiceUnavailable, match="GPU busy"):
            async with client.lease("b", vram_mb=500, wait_timeout_s=0.2):
                pass
        assert (await client.backend.status())["queue"] == []


async def test_over_budget_is_a_conflict() -> None:
    client = LocalLeaseClient(budget_mb=1000)
    with pytest.raises(Conflict, match="exceeds the whole GPU budget"):
        await client.acquire("a", vram_mb=2000)


async def test_holder_sees_preemption_pushed_and_yields() -> None:
    client = LocalLeaseClient(budget_mb=1000)
    bg = await client.acquire("bg", priority=Priority.BACKGROUND, vram_mb=800)
    waiter = asyncio.create_task(client.acquire("fg", priority="foreground", vram_mb=500))
    await asyncio.wait_for(bg.wait_preempted(), timeout=5)
    assert bg.preempt_requested and not waiter.done()
    await bg.release()
    fg = await asyncio.wait_for(waiter, timeout=5)
    assert fg.token > bg.token
    await fg.release()


async def test_run_preemptible_yields_between_units_and_loses_or_repeats_none() -> None:
    client = LocalLeaseClient(budget_mb=1000, linger_s=0)
    done: list[int] = []
    tokens: set[int] = set()

    async def unit(lease: Lease) -> bool:
        await asyncio.sleep(0.02)
        await lease.validate()  # the checkpoint is fenced by the token
        done.append(len(done))
        tokens.add(lease.token)
        return len(done) < 30

    job = asyncio.create_task(
        run_preemptible(client, "transcription:job", unit, vram_mb=800, ttl_s=5)
    )
    await asyncio.sleep(0.05)
    for _ in range(3):
        async with client.lease("chat", priority=Priority.FOREGROUND, vram_mb=500) as fg:
            status = await client.backend.status()
            assert [le["holder"] for le in status["leases"]] == ["chat"]
            assert fg.token > 0
        await asyncio.sleep(0.05)
    result = await asyncio.wait_for(job, timeout=10)
    assert done == list(range(30))
    assert result.units == 30 and result.preemptions == 3 and result.leases_lost == 0
    assert len(tokens) == 4  # resumed under a new lease after each pre-emption


async def test_back_to_back_foreground_requests_preempt_the_job_only_once() -> None:
    client = LocalLeaseClient(budget_mb=1000, linger_s=0.5)
    done: list[int] = []

    async def unit(lease: Lease) -> bool:
        await asyncio.sleep(0.02)
        done.append(len(done))
        return len(done) < 40

    job = asyncio.create_task(run_preemptible(client, "bg", unit, vram_mb=800, ttl_s=5))
    await asyncio.sleep(0.05)
    for _ in range(3):  # within the linger window of each other
        async with client.lease("chat", priority=Priority.FOREGROUND, vram_mb=500):
            await asyncio.sleep(0.02)
    result = await asyncio.wait_for(job, timeout=10)
    assert result.preemptions == 1 and done == list(range(40))


async def test_unit_refused_under_a_revoked_lease_is_redone_under_a_new_one() -> None:
    client = LocalLeaseClient(budget_mb=1000, grace_s=0.1)
    committed: list[tuple[int, int]] = []
    attempts = 0

    async def unit(lease: Lease) -> bool:
        nonlocal attempts
        attempts += 1
        if attempts == 2:  # this unit overruns the grace period after a pre-emption
            await asyncio.sleep(0.6)
        else:
            await asyncio.sleep(0.01)
        await lease.validate()
        committed.append((len(committed), lease.token))
        return len(committed) < 4

    job = asyncio.create_task(run_preemptible(client, "bg", unit, vram_mb=800, ttl_s=5))
    await asyncio.sleep(0.05)
    async with client.lease("fg", vram_mb=500, wait_timeout_s=5):
        pass
    result = await asyncio.wait_for(job, timeout=10)
    assert [i for i, _ in committed] == [0, 1, 2, 3]
    assert result.leases_lost == 1
    assert (await client.backend.status())["totals"]["revoked"] == 1


async def test_holder_cut_off_from_the_coordinator_stops_by_its_ttl() -> None:
    client = LocalLeaseClient(budget_mb=1000)
    lease = await client.acquire("a", vram_mb=100, ttl_s=1)
    lease._task.cancel()  # simulate heartbeats that never get through
    await asyncio.sleep(1.05)
    assert lease.lost
    with pytest.raises(LeaseLost):
        lease.check()
    await lease.release()


async def test_job_survives_a_coordinator_that_is_briefly_unreachable() -> None:
    client = LocalLeaseClient(budget_mb=1000)
    real_acquire, failures = client.transport.acquire, [2]

    async def flaky_acquire(*args, **kw):  # type: ignore[no-untyped-def]
        if failures[0] > 0:
            failures[0] -= 1
            raise ServiceUnavailable("GPU coordinator is unavailable: connection refused")
        return await real_acquire(*args, **kw)

    client.transport.acquire = flaky_acquire  # type: ignore[method-assign]
    done: list[int] = []

    async def unit(lease: Lease) -> bool:
        done.append(len(done))
        return len(done) < 3

    result = await run_preemptible(client, "bg", unit, vram_mb=100, unavailable_retry_s=5)
    assert result.units == 3 and failures == [0]
    failures[0] = 100
    with pytest.raises(ServiceUnavailable):
        await run_preemptible(client, "bg", unit, vram_mb=100, unavailable_retry_s=0.6)


async def test_a_waiting_request_and_a_held_lease_do_not_poll_each_other_busily() -> None:
    """Two long polls (a held lease's heartbeat, a queued request) once woke each other on
    every re-read: a busy loop that took a whole CPU core away from the work being waited for."""
    client = LocalLeaseClient(budget_mb=1000)
    backend = client.backend
    reads = 0
    for name in ("get", "validate"):
        original = getattr(backend, name)

        async def counted(*args: Any, _original: Any = original) -> Any:
            nonlocal reads
            reads += 1
            return await _original(*args)

        setattr(backend, name, counted)
    fg = await client.acquire("fg", priority=Priority.FOREGROUND, vram_mb=500)
    waiter = asyncio.create_task(client.acquire("bg", priority=Priority.BACKGROUND, vram_mb=800))
    await asyncio.sleep(1.0)
    assert not waiter.done()
    # each long poll re-reads only on a change or every poll_s (0.25 s): a handful, not thousands
    assert reads < 40, reads
    await fg.release()
    await (await asyncio.wait_for(waiter, timeout=5)).release()


async def test_a_request_cancelled_while_it_waits_is_withdrawn_not_granted_later() -> None:
    """A job cancelled while it waited for the GPU once left its request behind: granted later,
    it held the VRAM, unused, until its TTL ran out."""
    client = LocalLeaseClient(budget_mb=1000, linger_s=0)
    fg = await client.acquire("fg", priority=Priority.FOREGROUND, vram_mb=500)
    waiter = asyncio.create_task(client.acquire("bg", priority=Priority.BACKGROUND, vram_mb=800))
    await asyncio.sleep(0.1)
    assert [q["holder"] for q in (await client.backend.status())["queue"]] == ["bg"]
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    await fg.release()
    status = await client.backend.status()
    assert status["queue"] == [] and status["used_mb"] == 0
