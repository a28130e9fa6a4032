"""The Redis backend: one shared state for several coordinator replicas."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis

from nemo_server.common.gpu import Lease, LocalLeaseClient, Priority, run_preemptible
from nemo_server.common.gpu_state import LeaseLost, StateConfig, UnknownLease
from nemo_server.common.settings import CommonSettings
from nemo_server.coordinator.backends import build_backend
from nemo_server.coordinator.backends.redis import RedisLeaseBackend
from nemo_server.coordinator.settings import CoordinatorSettings

pytestmark = pytest.mark.integration

CONFIG = StateConfig(budget_mb=1000, grace_s=2.0, max_ttl_s=5.0)


@pytest.fixture
async def replicas(redis_url: str) -> AsyncIterator[tuple[RedisLeaseBackend, RedisLeaseBackend]]:
    a = RedisLeaseBackend(redis_url, CONFIG, key="test:gpu", poll_s=0.25)
    b = RedisLeaseBackend(redis_url, CONFIG, key="test:gpu", poll_s=0.25)
    yield a, b
    await a.aclose()
    await b.aclose()


async def test_two_replicas_share_one_budget_and_one_queue(replicas) -> None:  # type: ignore[no-untyped-def]
    a, b = replicas
    bg = await a.acquire("bg", "background", 800, 30)
    fg = await b.acquire("fg", "foreground", 500, 30)
    assert bg["state"] == "granted" and fg["state"] == "waiting"
    assert (await a.heartbeat(bg["id"], bg["token"]))["preempt_requested"] is True
    await a.release(bg["id"], bg["token"])
    granted = await b.get(fg["id"])
    assert granted["state"] == "granted" and granted["token"] > bg["token"]
    with pytest.raises(LeaseLost):
        await b.validate(bg["id"], bg["token"])
    status = await a.status()
    assert status["used_mb"] == 500 and status["totals"]["preemptions"] == 1


async def test_concurrent_requests_through_two_replicas_never_exceed_the_budget(
    replicas,  # type: ignore[no-untyped-def]
) -> None:
    a, b = replicas
    views = await asyncio.gather(
        *(r.acquire(f"h{i}", "interactive", 300, 30) for i, r in enumerate([a, b] * 10))
    )
    assert sum(v["state"] == "granted" for v in views) == 3  # 3 x 300 fit in 1000
    tokens = [v["token"] for v in views if v["state"] == "granted"]
    assert len(set(tokens)) == 3


async def test_preemptible_job_and_foreground_on_different_replicas(replicas) -> None:  # type: ignore[no-untyped-def]
    a, b = replicas
    job_client, chat_client = LocalLeaseClient(backend=a), LocalLeaseClient(backend=b)
    done: list[int] = []

    async def unit(lease: Lease) -> bool:
        await asyncio.sleep(0.02)
        await lease.validate()
        done.append(len(done))
        return len(done) < 15

    job = asyncio.create_task(run_preemptible(job_client, "bg", unit, vram_mb=800, ttl_s=3))
    await asyncio.sleep(0.1)
    async with chat_client.lease("fg", priority=Priority.FOREGROUND, vram_mb=500):
        assert [le["holder"] for le in (await b.status())["leases"]] == ["fg"]
    result = await asyncio.wait_for(job, timeout=20)
    assert done == list(range(15)) and result.preemptions == 1


async def test_lost_state_blocks_grants_until_old_leases_must_have_expired(
    replicas,
    redis_url: str,  # type: ignore[no-untyped-def]
) -> None:
    a, _ = replicas
    old = await a.acquire("old", "foreground", 1000, 5)
    redis.Redis.from_url(redis_url).flushdb()  # Redis restarted without persistence
    new = await a.acquire("new", "foreground", 1000, 30)
    assert new["state"] == "waiting"
    assert new["token"] == 0
    status = await a.status()
    assert status["grants_blocked_until"] >= new["now"] + CONFIG.max_ttl_s
    with pytest.raises(UnknownLease):
        await a.validate(old["id"], old["token"])


def test_backend_is_selected_by_the_redis_url(
    redis_url: str, common_settings: CommonSettings
) -> None:
    with_redis = CoordinatorSettings(
        common=common_settings.model_copy(update={"redis_url": redis_url})
    )
    assert isinstance(build_backend(with_redis, CONFIG), RedisLeaseBackend)
    assert not isinstance(
        build_backend(CoordinatorSettings(common=common_settings), CONFIG), RedisLeaseBackend
    )


async def test_a_change_committed_while_a_long_poll_reads_is_not_slept_through(
    redis_url: str,
) -> None:
    """A long poll reads (a round trip), then waits for the next change. A change another
    replica committed during that read once went unnoticed until the next poll (`poll_s`)."""
    a = RedisLeaseBackend(redis_url, CONFIG, key="test:gpu", poll_s=0.25)
    b = RedisLeaseBackend(redis_url, CONFIG, key="test:gpu", poll_s=60.0)
    try:
        await b.wait_change(0.0)  # starts b's pub/sub listener
        await asyncio.sleep(0.3)  # (subscribed)
        seen = b.changes  # b "reads" now...
        await a.acquire("fg", "foreground", 100, 10.0)  # ...while a commits
        for _ in range(100):
            if b.changes != seen:
                break
            await asyncio.sleep(0.05)
        # b now waits for a change after its read: it already came, so no 60 s sleep
        await asyncio.wait_for(b.wait_change(60.0, since=seen), timeout=5)
    finally:
        await a.aclose()
        await b.aclose()
