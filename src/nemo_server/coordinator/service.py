"""The coordinator's use cases: lease operations with long polling, event streams, status."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

from nemo_server.common.errors import NemoError
from nemo_server.common.gpu_backend import LeaseBackend, wait_view
from nemo_server.common.gpu_state import LeaseLost
from nemo_server.coordinator.budget import Budget
from nemo_server.coordinator.metrics import CoordinatorMetrics

log = logging.getLogger("nemo.coordinator")

ENDED = ("released", "cancelled", "expired", "preempt_timeout", "abandoned")  # not "revoked"


class CoordinatorService:
    """Lease operations over a backend; long polls wake on state changes."""

    def __init__(
        self,
        backend: LeaseBackend,
        budget: Budget,
        metrics: CoordinatorMetrics,
        *,
        backend_name: str,
        max_wait_s: float = 30.0,
        tick_s: float = 0.25,
    ) -> None:
        self.backend = backend
        self.budget = budget
        self.metrics = metrics
        self.backend_name = backend_name
        self.max_wait_s = max_wait_s
        self.tick_s = tick_s

    def _wait(self, wait_s: float) -> float:
        return max(0.0, min(wait_s, self.max_wait_s))

    async def acquire(
        self, holder: str, priority: str, vram_mb: int, ttl_s: float, wait_s: float
    ) -> dict[str, Any]:
        """Queue a request; wait up to `wait_s` for the grant."""
        view = await self.backend.acquire(holder, priority, vram_mb, ttl_s)
        if view["state"] != "waiting" or wait_s <= 0:
            return {**view, "since": view["now"]}
        return {**await self.get(view["id"], wait_s), "since": view["now"]}

    async def get(self, lease_id: str, wait_s: float = 0.0) -> dict[str, Any]:
        """A request's view; with `wait_s`, held until it is no longer waiting."""
        return await wait_view(
            self.backend,
            lambda: self.backend.get(lease_id),
            lambda v: v["state"] != "waiting",
            self._wait(wait_s),
        )

    async def heartbeat(self, lease_id: str, token: int, wait_s: float = 0.0) -> dict[str, Any]:
        """Extend a lease; with `wait_s`, answer early only when pre-emption is requested."""
        view = await self.backend.heartbeat(lease_id, token)
        if view["preempt_requested"] or wait_s <= 0:
            return view
        return await wait_view(
            self.backend,
            lambda: self.backend.validate(lease_id, token),
            lambda v: bool(v["preempt_requested"]),
            self._wait(wait_s),
        )

    async def validate(self, lease_id: str, token: int) -> dict[str, Any]:
        return await self.backend.validate(lease_id, token)

    async def release(self, lease_id: str, token: int) -> dict[str, Any]:
        return await self.backend.release(lease_id, token)

    async def cancel(self, lease_id: str) -> dict[str, Any]:
        return await self.backend.cancel(lease_id)

    async def events(self, lease_id: str) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        """`(event, view)` on every change of a lease until it ends.

        Events: waiting, granted, preempt_requested, and the end state (released, expired...).
        Holding the stream open keeps a waiting request alive.
        """
        last: tuple[Any, ...] | None = None
        while True:
            seen = self.backend.changes
            view = await self.backend.get(lease_id)
            key = (view["state"], view["token"], view["preempt_requested"])
            if key != last:
                last = key
                kind = view["state"]
                if kind == "granted" and view["preempt_requested"]:
                    kind = "preempt_requested"
                yield kind, view
            if view["state"] in ENDED:
                return
            await self.backend.wait_change(1.0, since=seen)

    async def status(self) -> dict[str, Any]:
        """Leases, queue, budget and per-holder figures."""
        status = await self.backend.status()
        self.metrics.observe_status(status)
        return {
            **status,
            "backend": self.backend_name,
            "budget_source": self.budget.source,
            "device": self.budget.device or None,
        }

    async def reap_forever(self) -> None:
        """Apply time (expiry, grace periods, grants) even when no request comes."""
        while True:
            try:
                await self.backend.tick()
                self.metrics.observe_status(await self.backend.status())
            except NemoError as exc:
                log.warning("reaper: %s", exc.message)
            except Exception:
                log.exception("reaper failed")
            await asyncio.sleep(self.tick_s)


__all__ = ["ENDED", "CoordinatorService", "LeaseLost"]
