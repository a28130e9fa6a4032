"""The Redis backend: one shared state, committed with an atomic compare-and-set Lua script.

Each operation reads the state and Redis's clock in one round trip, applies the same state
machine as the memory backend (`common/gpu_state.py`), and commits with a Lua script that writes
only if nobody committed since the read (else it retries). Every replica's operations are thus
serialised through Redis: two coordinators on one Redis behave as one. Times come from Redis's
`TIME`, so replicas with different clocks agree on expiry.

Long polls wake on any replica's commit through Redis pub/sub, and re-read every `poll_s`
anyway (pub/sub messages can be lost across a reconnect).

Lost state (Redis restarted without persistence): a replica that had seen state before
re-creates it with grants blocked for `max_ttl_s` + 2 s, since holders granted before may still work.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from nemo_server.common.errors import NemoError, ServiceUnavailable
from nemo_server.common.gpu_backend import EventSink
from nemo_server.common.gpu_state import LeaseState, StateConfig, with_now

log = logging.getLogger("nemo.coordinator.redis")

# KEYS[1]: the state hash, KEYS[2]: the change channel;
# ARGV: expected version ('' = absent), new version, new state JSON.
CAS_SCRIPT = """
local cur = redis.call('HGET', KEYS[1], 'ver')
if (cur or '') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'ver', ARGV[2], 'blob', ARGV[3])
redis.call('PUBLISH', KEYS[2], ARGV[2])
return 1
"""

MAX_RETRIES = 200


class RedisLeaseBackend:
    """Lease state in one Redis hash shared by every coordinator replica."""

    def __init__(
        self,
        url: str,
        config: StateConfig,
        *,
        key: str = "nemo:gpu:state",
        poll_s: float = 0.25,
        on_event: EventSink | None = None,
        quarantine_s: float | None = None,
    ) -> None:
        self.config = config
        self.key = key
        self.poll_s = poll_s
        self.on_event = on_event
        # max TTL, plus a margin for a unit of work a holder started just before its TTL ended
        self.quarantine_s = config.max_ttl_s + 2.0 if quarantine_s is None else quarantine_s
        self.redis = aioredis.Redis.from_url(
            url, socket_timeout=5, socket_connect_timeout=2, health_check_interval=10
        )
        self._cas = self.redis.register_script(CAS_SCRIPT)
        self._seen_state = False
        self.channel = f"{key}:changed"
        self._change: asyncio.Future[None] | None = None
        self._changes = 0
        self._listener: asyncio.Task[None] | None = None

    @property
    def budget_mb(self) -> int:
        return self.config.budget_mb

    async def _read(self) -> tuple[float, str, str | None]:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.time()
            pipe.hmget(self.key, "ver", "blob")
            (secs, micros), (ver, blob) = await pipe.execute()
        now = secs + micros / 1_000_000
        return now, (ver or b"").decode(), blob.decode() if blob else None

    async def _apply(self, op: Callable[[LeaseState, float], Any]) -> Any:
        for attempt in range(MAX_RETRIES):
            try:
                now, ver, blob = await self._read()
                if blob is None:
                    blocked = now + self.quarantine_s if self._seen_state else 0.0
                    if self._seen_state:
                        log.warning(
                            "lease state lost in Redis: no grants for %.0f s", self.quarantine_s
                        )
                    state = LeaseState.fresh(self.config, now, blocked)
                else:
                    state = LeaseState.from_dict(self.config, json.loads(blob))
                self._seen_state = True
                error: NemoError | None = None
                try:
                    result = op(state, now)
                except NemoError as exc:  # the answer stands; time-driven changes still commit
                    error, result = exc, None
                new_blob = json.dumps(state.to_dict(), sort_keys=True, separators=(",", ":"))
                if new_blob != blob:
                    committed = await self._cas(
                        keys=[self.key, self.channel], args=[ver, uuid.uuid4().hex, new_blob]
                    )
                    if not committed:
                        await asyncio.sleep(0.001 * min(attempt, 20))
                        continue
                    self._emit(state.events)
                    self._wake()
            except RedisError as exc:
                raise ServiceUnavailable(f"GPU lease store (Redis) unavailable: {exc}") from None
            if error is not None:
                raise error
            if isinstance(result, dict) and "id" in result:
                return with_now(result, now)
            return result
        raise ServiceUnavailable("GPU lease store too contended; try again")

    def _emit(self, events: list[tuple[str, dict[str, Any]]]) -> None:
        if self.on_event is not None:
            for kind, view in events:
                self.on_event(kind, view)

    async def acquire(
        self, holder: str, priority: str, vram_mb: int, ttl_s: float
    ) -> dict[str, Any]:
        lease_id = uuid.uuid4().hex  # fixed across CAS retries
        return await self._apply(
            lambda s, now: s.acquire(now, holder, priority, vram_mb, ttl_s, lease_id)
        )

    async def get(self, lease_id: str) -> dict[str, Any]:
        return await self._apply(lambda s, now: s.get(now, lease_id))

    async def heartbeat(self, lease_id: str, token: int) -> dict[str, Any]:
        return await self._apply(lambda s, now: s.heartbeat(now, lease_id, token))

    async def validate(self, lease_id: str, token: int) -> dict[str, Any]:
        return await self._apply(lambda s, now: s.validate(now, lease_id, token))

    async def release(self, lease_id: str, token: int) -> dict[str, Any]:
        return await self._apply(lambda s, now: s.release(now, lease_id, token))

    async def cancel(self, lease_id: str) -> dict[str, Any]:
        return await self._apply(lambda s, now: s.cancel(now, lease_id))

    async def tick(self) -> None:
        await self._apply(lambda s, now: s.tick(now))

    async def status(self) -> dict[str, Any]:
        return await self._apply(lambda s, now: s.status(now))

    @property
    def changes(self) -> int:
        return self._changes

    def _wake(self) -> None:
        self._changes += 1
        fut, self._change = self._change, None
        if fut is not None and not fut.done():
            fut.set_result(None)

    async def _listen(self) -> None:
        """Wake long polls when any replica commits (Redis pub/sub); polling stays the backstop."""
        while True:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                async for _ in pubsub.listen():
                    self._wake()
            except RedisError:
                await asyncio.sleep(0.5)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    async def wait_change(self, wait_s: float, since: int | None = None) -> None:
        if self._listener is None:
            self._listener = asyncio.create_task(self._listen(), name="gpu-redis-changes")
        if since is not None and since != self._changes:
            return  # a change came while the caller was reading (a round trip): read again
        if self._change is None:
            self._change = asyncio.get_running_loop().create_future()
        # asyncio.wait never swallows a cancellation (wait_for and timeout() can, on 3.11)
        await asyncio.wait({self._change}, timeout=max(0.0, min(wait_s, self.poll_s)))

    async def aclose(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            # bounded: redis-py can swallow a cancellation mid-read
            await asyncio.wait({self._listener}, timeout=1.0)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.redis.aclose(), timeout=2.0)
