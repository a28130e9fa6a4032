"""The rate limiter seam: GCRA (the generic cell rate algorithm) over any store.

GCRA keeps one number per key, the theoretical arrival time (TAT) of the next request. A limit of
`rate` requests per `period` with a `burst` admits a request when it arrives no earlier than
`TAT - burst * interval`; it then moves TAT on by one interval. One atomic read-modify-write per
request makes it easy to run in a Redis Lua script.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Limit:
    rate: int
    """Requests per period."""
    period_s: float
    burst: int
    """Requests admitted at once on an idle key."""

    @property
    def interval_s(self) -> float:
        return self.period_s / self.rate


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_s: float
    """Seconds until the key is back to its full burst."""
    retry_after_s: float
    """Seconds to wait before a retry can succeed (0 when allowed)."""

    def headers(self) -> dict[str, str]:
        headers = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(math.ceil(self.reset_s)),
        }
        if not self.allowed:
            headers["Retry-After"] = str(max(1, math.ceil(self.retry_after_s)))
        return headers


class RateLimiterDown(Exception):
    """The limiter's store cannot be reached."""


class RateLimiter(Protocol):
    """Admit or refuse one request for a key."""

    async def hit(self, key: str, limit: Limit, *, strict: bool = False) -> Decision:
        """Admit or refuse; `strict` (logins) fails closed when the store is down."""
        ...

    async def aclose(self) -> None: ...


def gcra(tat: float, now: float, limit: Limit) -> tuple[Decision, float | None]:
    """One GCRA step: the decision and the new TAT (None when refused: TAT stays)."""
    interval = limit.interval_s
    tolerance = interval * limit.burst
    tat = max(tat, now)
    new_tat = tat + interval
    allow_at = new_tat - tolerance
    if now < allow_at:
        return (
            Decision(False, limit.burst, 0, tat - now, allow_at - now),
            None,
        )
    remaining = int((tolerance - (new_tat - now)) / interval + 1e-9)
    return Decision(True, limit.burst, max(0, remaining), new_tat - now, 0.0), new_tat
