"""GCRA in Redis: one Lua script per request, so any number of gateways share one limit.

Time comes from the Redis server (`TIME`), so replicas with skewed clocks still agree.
"""

from __future__ import annotations

import logging

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from nemo_server.common.errors import ServiceUnavailable
from nemo_server.gateway.ratelimit.base import Decision, Limit, RateLimiter, RateLimiterDown

log = logging.getLogger("nemo.gateway.ratelimit")

# KEYS[1]: the key; ARGV: interval (s), tolerance (s). Returns {allowed, tat - now, allow_at - now}
# as strings (Lua numbers would be truncated to integers by Redis).
_GCRA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - tolerance
if now < allow_at then
  return {0, tostring(tat - now), tostring(allow_at - now)}
end
redis.call('SET', KEYS[1], tostring(new_tat), 'PX', math.ceil((new_tat - now) * 1000) + 1000)
return {1, tostring(new_tat - now), '0'}
"""


class RedisRateLimiter:
    def __init__(self, url: str, prefix: str = "nemo:rl:") -> None:
        self._redis = aioredis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self._script = self._redis.register_script(_GCRA)
        self._prefix = prefix

    async def hit(self, key: str, limit: Limit, *, strict: bool = False) -> Decision:
        interval = limit.interval_s
        tolerance = interval * limit.burst
        try:
            allowed, ahead, retry = await self._script(
                keys=[self._prefix + key], args=[repr(interval), repr(tolerance)]
            )
        except (RedisError, OSError) as exc:
            raise RateLimiterDown(str(exc)) from exc
        ahead_s = float(ahead)
        if int(allowed):
            remaining = int((tolerance - ahead_s) / interval + 1e-9)
            return Decision(True, limit.burst, max(0, remaining), ahead_s, 0.0)
        return Decision(False, limit.burst, 0, ahead_s, float(retry))

    async def aclose(self) -> None:
        await self._redis.aclose()


class FallbackRateLimiter:
    """Redis first. When Redis is down: `local` limits per replica in memory, `closed` refuses.

    `strict=True` on a hit (logins) always fails closed.
    """

    def __init__(self, primary: RedisRateLimiter, local: RateLimiter, *, mode: str) -> None:
        self.primary = primary
        self.local = local
        self.mode = mode
        self._degraded = False

    async def hit(self, key: str, limit: Limit, *, strict: bool = False) -> Decision:
        try:
            decision = await self.primary.hit(key, limit)
        except RateLimiterDown as exc:
            if not self._degraded:
                log.error("Redis rate limiter down (%s); mode=%s", exc, self.mode)
                self._degraded = True
            if strict or self.mode == "closed":
                raise ServiceUnavailable("rate limiter unavailable (Redis is down)") from None
            return await self.local.hit(key, limit)
        if self._degraded:
            log.warning("Redis rate limiter back")
            self._degraded = False
        return decision

    async def aclose(self) -> None:
        await self.primary.aclose()
        await self.local.aclose()
