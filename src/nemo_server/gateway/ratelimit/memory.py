"""In-process GCRA: the embedded default (one gateway process)."""

from __future__ import annotations

import time

from nemo_server.gateway.ratelimit.base import Decision, Limit, gcra

_MAX_KEYS = 100_000


class MemoryRateLimiter:
    def __init__(self) -> None:
        self._tat: dict[str, float] = {}

    async def hit(self, key: str, limit: Limit, *, strict: bool = False) -> Decision:
        now = time.monotonic()
        decision, new_tat = gcra(self._tat.get(key, now), now, limit)
        if new_tat is not None:
            self._tat[key] = new_tat
            if len(self._tat) > _MAX_KEYS:
                self._evict(now)
        return decision

    def _evict(self, now: float) -> None:
        # A TAT in the past means the key is back to its full burst: forgetting it changes nothing.
        for key in [k for k, tat in self._tat.items() if tat <= now]:
            del self._tat[key]

    async def aclose(self) -> None:
        self._tat.clear()
