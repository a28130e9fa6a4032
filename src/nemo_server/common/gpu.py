"""The GPU lease client every GPU user calls (the protocol is in ARCHITECTURE.md).

Foreground work holds a lease for the span of an `async with`:

    async with client.lease("llm:smollm2", priority=Priority.FOREGROUND, vram_mb=300) as lease:
        ...

Background jobs run in units with `run_preemptible`, which yields the GPU between units when a
higher-priority request needs the VRAM and resumes when the lease is granted again.

`HttpLeaseClient` (in `gpu_http`) talks to the coordinator service; `LocalLeaseClient` runs the
same state machine in this process (for unit tests, and as a stand-in when no coordinator is
configured).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from nemo_server.common.errors import NemoError, ServiceUnavailable
from nemo_server.common.gpu_backend import LeaseBackend, MemoryLeaseBackend, wait_view
from nemo_server.common.gpu_state import LeaseLost, OverBudget, Priority, StateConfig, UnknownLease

__all__ = [
    "Lease",
    "LeaseClient",
    "LeaseLost",
    "LocalLeaseClient",
    "OverBudget",
    "PreemptibleResult",
    "Priority",
    "run_preemptible",
]

log = logging.getLogger("nemo.gpu")

# Longest single long-poll; a request waiting longer simply polls again.
LONG_POLL_S = 20.0


class LeaseTransport(Protocol):
    """The six lease operations, over HTTP or in process. Views as in `gpu_state`."""

    async def acquire(
        self, holder: str, priority: str, vram_mb: int, ttl_s: float, wait_s: float
    ) -> dict[str, Any]: ...

    async def poll(self, lease_id: str, wait_s: float) -> dict[str, Any]: ...

    async def heartbeat(self, lease_id: str, token: int, wait_s: float) -> dict[str, Any]: ...

    async def validate(self, lease_id: str, token: int) -> dict[str, Any]: ...

    async def release(self, lease_id: str, token: int) -> None: ...

    async def cancel(self, lease_id: str) -> None: ...


class Lease:
    """A granted lease. `preempt_requested` is kept fresh by a background heartbeat task."""

    def __init__(
        self, transport: LeaseTransport, view: dict[str, Any], ttl_s: float, valid_until: float
    ) -> None:
        self.id: str = view["id"]
        self.token: int = int(view["token"])
        self.holder: str = view["holder"]
        self.vram_mb: int = int(view["vram_mb"])
        self.priority = Priority(view.get("priority", Priority.FOREGROUND))
        self.ttl_s = ttl_s
        self._transport = transport
        self._preempt = asyncio.Event()
        self._lost: LeaseLost | None = None
        self._released = False
        # Local validity (monotonic clock): the coordinator cannot expire the lease before it,
        # so a holder cut off from the coordinator stops on its own by then (self-fencing).
        self._valid_until = valid_until
        if view.get("preempt_requested"):
            self._preempt.set()
        self._task: asyncio.Task[None] | None = None

    @property
    def preempt_requested(self) -> bool:
        """True once the coordinator asked this holder to yield (or the lease was lost)."""
        return self._preempt.is_set()

    @property
    def lost(self) -> bool:
        """True when the lease is known lost, or could have expired without a heartbeat."""
        return self._lost is not None or time.monotonic() >= self._valid_until

    async def wait_preempted(self) -> None:
        """Return when pre-emption is requested (or the lease is lost)."""
        await self._preempt.wait()

    def check(self, need_s: float = 0.0) -> None:
        """Raise `LeaseLost` if the lease is lost, or may expire within `need_s` seconds
        (pass the length of the unit about to start); no coordinator call."""
        if self._lost is not None:
            raise self._lost
        if time.monotonic() + need_s >= self._valid_until:
            self._lose(LeaseLost(f"lease {self.id}: no heartbeat acknowledged within its TTL"))
            raise self._lost  # type: ignore[misc]

    async def validate(self) -> None:
        """Ask the coordinator whether this token is still live; raise `LeaseLost` if not."""
        self.check()
        try:
            await self._transport.validate(self.id, self.token)
        except (LeaseLost, UnknownLease) as exc:
            self._lose(exc if isinstance(exc, LeaseLost) else LeaseLost(exc.message))
            raise self._lost from None  # type: ignore[misc]

    def _lose(self, exc: LeaseLost) -> None:
        if self._lost is None:
            self._lost = exc
            log.warning("lease %s of %s lost: %s", self.id, self.holder, exc.message)
        self._preempt.set()

    def _start(self) -> None:
        self._task = asyncio.create_task(self._heartbeats(), name=f"lease-heartbeat-{self.id}")

    async def _heartbeats(self) -> None:
        interval = max(0.2, self.ttl_s / 3)
        while not self._released and self._lost is None:
            sent = time.monotonic()
            # Long-poll until pre-emption is requested; once it is, plain heartbeats.
            wait_s = 0.0 if self._preempt.is_set() else interval
            try:
                view = await self._transport.heartbeat(self.id, self.token, wait_s)
            except (LeaseLost, UnknownLease) as exc:
                # (a cancellation swallowed by a library must not turn a release into a loss)
                if not self._released:
                    self._lose(exc if isinstance(exc, LeaseLost) else LeaseLost(exc.message))
                return
            except NemoError as exc:
                if self._released:
                    return
                if time.monotonic() >= self._valid_until:
                    self._lose(LeaseLost(f"lease {self.id}: coordinator unreachable: {exc}"))
                    return
                await asyncio.sleep(min(0.5, interval))
                continue
            self._valid_until = sent + self.ttl_s
            if view.get("preempt_requested"):
                self._preempt.set()
                await asyncio.sleep(interval)

    async def release(self) -> None:
        """Give the lease back (idempotent); errors are logged, never raised."""
        if self._released:
            return
        self._released = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait({self._task}, timeout=0.5)
        try:
            # even a lost lease is released: a revoked holder saying it stopped frees its VRAM
            await self._transport.release(self.id, self.token)
        except NemoError as exc:
            if self._lost is None:
                log.warning("release of lease %s failed: %s", self.id, exc.message)


class LeaseClient:
    """Acquires leases over a transport; see the module docstring."""

    def __init__(self, transport: LeaseTransport) -> None:
        self.transport = transport

    async def acquire(
        self,
        holder: str,
        *,
        priority: Priority | str = Priority.FOREGROUND,
        vram_mb: int,
        ttl_s: float = 30.0,
        wait_timeout_s: float | None = 60.0,
    ) -> Lease:
        """Wait for a lease (forever when `wait_timeout_s` is None); start its heartbeats.

        Raises `ServiceUnavailable` ("GPU busy") on timeout, `OverBudget` (409) when `vram_mb`
        exceeds the whole budget, `ServiceUnavailable` when the coordinator is unreachable.
        """
        started = time.monotonic()
        deadline = None if wait_timeout_s is None else started + wait_timeout_s

        def wait_s() -> float:
            if deadline is None:
                return LONG_POLL_S
            return max(0.0, min(LONG_POLL_S, deadline - time.monotonic()))

        while True:
            sent = time.monotonic()
            view = await _withdrawn_if_cancelled(
                self.transport, self.transport.acquire(holder, str(priority), vram_mb, ttl_s, 0.0)
            )
            try:
                while view["state"] == "waiting":
                    if deadline is not None and time.monotonic() >= deadline:
                        raise ServiceUnavailable(
                            f"GPU busy: no lease for {holder!r} ({vram_mb} MB) within "
                            f"{wait_timeout_s:g} s",
                            code="gpu_busy",
                        )
                    sent = time.monotonic()
                    view = await self.transport.poll(view["id"], wait_s())
                if view["state"] != "granted":
                    raise ServiceUnavailable(f"lease request for {holder!r} ended: {view['state']}")
                lease_ttl = float(view.get("ttl_s") or ttl_s)
                # The coordinator began answering at `since` (its clock), after we sent at
                # `sent` (ours): the lease surely lives `expires_at - since` past `sent`.
                remaining = float(view["expires_at"]) - float(view.get("since") or view["now"])
                if remaining < lease_ttl / 2:  # granted long before this answer: heartbeat
                    sent = time.monotonic()
                    view = await self.transport.heartbeat(view["id"], int(view["token"]), 0.0)
                    remaining = lease_ttl
            except (LeaseLost, UnknownLease):
                continue  # lost between grant and first heartbeat: ask again
            except BaseException:
                with contextlib.suppress(Exception):
                    await asyncio.shield(self.transport.cancel(view["id"]))
                raise
            lease = Lease(self.transport, view, lease_ttl, sent + remaining)
            lease._start()
            return lease

    @asynccontextmanager
    async def lease(
        self,
        holder: str,
        *,
        priority: Priority | str = Priority.FOREGROUND,
        vram_mb: int,
        ttl_s: float = 30.0,
        wait_timeout_s: float | None = 60.0,
    ) -> AsyncIterator[Lease]:
        """Hold a lease for the body of an `async with`; released on exit."""
        lease = await self.acquire(
            holder, priority=priority, vram_mb=vram_mb, ttl_s=ttl_s, wait_timeout_s=wait_timeout_s
        )
        try:
            yield lease
        finally:
            await lease.release()

    async def aclose(self) -> None:
        close = getattr(self.transport, "aclose", None)
        if close is not None:
            await close()


async def _withdrawn_if_cancelled(
    transport: LeaseTransport, request: Awaitable[dict[str, Any]]
) -> dict[str, Any]:
    """Send a lease request that a cancellation cannot orphan.

    Until its answer comes, the caller does not know the request's id, so it could not withdraw
    it: a task cancelled then (a job cancelled while it waited for the GPU) left a request that
    was granted later and held the VRAM, unused, until its TTL ran out. So the request asks not
    to be held (`wait_s` 0: one round trip; the long poll comes after, with the id known), a
    cancellation waits for its answer, withdraws it and is then re-raised.
    """
    sent = asyncio.ensure_future(request)
    try:
        return await asyncio.shield(sent)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            view = await sent
            await transport.cancel(view["id"])
        raise


class _BackendTransport:
    """Lease operations straight on a `LeaseBackend` (no HTTP)."""

    def __init__(self, backend: LeaseBackend) -> None:
        self.backend = backend

    async def acquire(
        self, holder: str, priority: str, vram_mb: int, ttl_s: float, wait_s: float
    ) -> dict[str, Any]:
        view = await self.backend.acquire(holder, priority, vram_mb, ttl_s)
        if view["state"] != "waiting" or wait_s <= 0:
            return {**view, "since": view["now"]}
        return {**await self.poll(view["id"], wait_s), "since": view["now"]}

    async def poll(self, lease_id: str, wait_s: float) -> dict[str, Any]:
        return await wait_view(
            self.backend,
            lambda: self.backend.get(lease_id),
            lambda v: v["state"] != "waiting",
            wait_s,
        )

    async def heartbeat(self, lease_id: str, token: int, wait_s: float) -> dict[str, Any]:
        await self.backend.heartbeat(lease_id, token)
        return await wait_view(
            self.backend,
            lambda: self.backend.validate(lease_id, token),
            lambda v: bool(v["preempt_requested"]),
            wait_s,
        )

    async def validate(self, lease_id: str, token: int) -> dict[str, Any]:
        return await self.backend.validate(lease_id, token)

    async def release(self, lease_id: str, token: int) -> None:
        await self.backend.release(lease_id, token)

    async def cancel(self, lease_id: str) -> None:
        await self.backend.cancel(lease_id)


class LocalLeaseClient(LeaseClient):
    """The lease protocol in this process, over the in-memory state machine.

    With the default (very large) budget it is a no-op stand-in: every lease is granted at once.
    """

    def __init__(
        self,
        budget_mb: int = 1 << 30,
        *,
        grace_s: float = 10.0,
        ageing_s: float = 60.0,
        linger_s: float = 0.5,
        backend: LeaseBackend | None = None,
    ) -> None:
        self.backend: LeaseBackend = backend or MemoryLeaseBackend(
            StateConfig(budget_mb=budget_mb, grace_s=grace_s, ageing_s=ageing_s, linger_s=linger_s)
        )
        super().__init__(_BackendTransport(self.backend))


@dataclass
class PreemptibleResult:
    """What a `run_preemptible` loop did."""

    units: int = 0
    preemptions: int = 0
    leases_lost: int = 0


async def run_preemptible(
    client: LeaseClient,
    holder: str,
    unit: Callable[[Lease], Awaitable[bool]],
    *,
    priority: Priority | str = Priority.BACKGROUND,
    vram_mb: int,
    ttl_s: float = 30.0,
    wait_timeout_s: float | None = None,
    unavailable_retry_s: float = 30.0,
) -> PreemptibleResult:
    """Run `unit(lease)` until it returns False, yielding the GPU whenever asked to.

    Between units, if pre-emption was requested, the lease is released and a new one requested
    (queued by priority); work resumes when it is granted. No unit starts unless the lease is
    live and surely outlives it (judged by the longest unit so far).
    A unit that raises `LeaseLost` (its checkpoint was refused) is run again under a new lease,
    so units must be idempotent from their last checkpoint. A coordinator that cannot be reached
    (e.g. while it restarts) is retried for `unavailable_retry_s` before `ServiceUnavailable`
    is raised; "GPU busy" (`wait_timeout_s` passed) is raised at once.
    """
    result = PreemptibleResult()
    longest = 0.0  # longest unit so far: a unit starts only if the lease surely outlives it
    unreachable_since: float | None = None
    while True:
        try:
            lease = await client.acquire(
                holder,
                priority=priority,
                vram_mb=vram_mb,
                ttl_s=ttl_s,
                wait_timeout_s=wait_timeout_s,
            )
        except ServiceUnavailable as exc:
            now = time.monotonic()
            unreachable_since = unreachable_since or now
            if exc.code == "gpu_busy" or now - unreachable_since >= unavailable_retry_s:
                raise
            await asyncio.sleep(0.5)
            continue
        unreachable_since = None
        try:
            while True:
                lease.check(min(longest, lease.ttl_s / 2))  # ttl_s should be >= 2 units
                started = time.monotonic()
                more = await unit(lease)
                longest = max(longest, time.monotonic() - started)
                result.units += 1
                if not more:
                    return result
                if lease.preempt_requested:
                    lease.check()  # lost rather than asked to yield: counted below
                    result.preemptions += 1
                    break
        except LeaseLost:
            result.leases_lost += 1
        finally:
            await lease.release()
