"""Rate limiting with GCRA: in memory by default, atomic in Redis when configured."""

from nemo_server.gateway.ratelimit.base import Decision, Limit, RateLimiter, RateLimiterDown
from nemo_server.gateway.ratelimit.memory import MemoryRateLimiter

__all__ = [
    "Decision",
    "Limit",
    "MemoryRateLimiter",
    "RateLimiter",
    "RateLimiterDown",
    "build_limiter",
]


def build_limiter(redis_url: str | None, failure_mode: str = "local") -> RateLimiter:
    """Memory limiter, or Redis with the documented behaviour when Redis is down."""
    if not redis_url:
        return MemoryRateLimiter()
    from nemo_server.gateway.ratelimit.redis import FallbackRateLimiter, RedisRateLimiter

    return FallbackRateLimiter(RedisRateLimiter(redis_url), MemoryRateLimiter(), mode=failure_mode)
