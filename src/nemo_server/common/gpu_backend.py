"""Where GPU lease state lives: the backend Protocol and its in-memory implementation.

The Redis backend (in the coordinator) implements the same Protocol over the same state machine
(`gpu_state.LeaseState`).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from nemo_server.common.gpu_state import LeaseState, StateConfig, with_now


class LeaseBackend(Protocol):
    """Where lease state lives (memory or Redis); every method applies one atomic operation.

    Views are dicts with at least `id`, `state` (waiting, granted, or how it ended: released,
    cancelled, expired, preempt_timeout, abandoned), `token`, `holder`, `vram_mb`,
    `preempt_requested`, `expires_at` and `now` (the state's clock).
    """

    budget_mb: int

    async def acquire(
        self, holder: str, priority: str, vram_mb: int, ttl_s: float
    ) -> dict[str, Any]: ...

    async def get(self, lease_id: str) -> dict[str, Any]: ...

    async def heartbeat(self, lease_id: str, token: int) -> dict[str, Any]: ...

    async def validate(self, lease_id: str, token: int) -> dict[str, Any]: ...

    async def release(self, lease_id: str, token: int) -> dict[str, Any]: ...

    async def cancel(self, lease_id: str) -> dict[str, Any]: ...

    async def tick(self) -> None: ...

    async def status(self) -> dict[str, Any]: ...

    @property
    def changes(self) -> int:
        """How many wake-ups so far: read it before a read, pass it to `wait_change`."""
        ...

    async def wait_change(self, wait_s: float, since: int | None = None) -> None:
        """Return when the state may have changed, or after `wait_s` seconds.

        With `since` (`changes` as it was before the caller's last read), return at once if a
        change came after that: on Redis a read takes a round trip, and a change committed
        meanwhile would otherwise be slept through until the next poll.
        """
        ...

    async def aclose(self) -> None: ...


EventSink = Callable[[str, dict[str, Any]], None]


class MemoryLeaseBackend:
    """The state machine in this process, safe to share between threads and event loops."""

    def __init__(
        self,
        config: StateConfig,
        *,
        clock: Callable[[], float] = time.time,
        blocked_until: float = 0.0,
        on_event: EventSink | None = None,
    ) -> None:
        self.clock = clock
        self.state = LeaseState.fresh(config, clock(), blocked_until)
        self.on_event = on_event
        self._lock = threading.Lock()
        self._waiters: set[asyncio.Future[None]] = set()
        self._changes = 0

    @property
    def budget_mb(self) -> int:
        return self.state.config.budget_mb

    @property
    def changes(self) -> int:
        return self._changes

    def _apply(self, op: Callable[..., Any], *args: Any, writes: bool = False) -> Any:
        """Apply one operation; wake long polls if it may have changed what they wait for.

        Reads (`get`, `validate`, `status`, `tick`) wake them only when time made something
        happen (a grant, a pre-emption request, an end). Waking them on every read made two
        long polls wake each other forever (each one's re-read woke the other): a busy loop
        that took a whole core while one lease was held and another request waited.
        """
        with self._lock:
            now = self.clock()
            before = len(self.state.events)
            try:
                result = op(now, *args)
            finally:
                events = self.state.events[before:]
                self.state.events.clear()
        if self.on_event is not None:
            for kind, view in events:
                self.on_event(kind, view)
        if writes or events:
            self._notify()
        return with_now(result, now) if isinstance(result, dict) and "id" in result else result

    def _notify(self) -> None:
        self._changes += 1
        waiters, self._waiters = self._waiters, set()
        for fut in waiters:
            loop = fut.get_loop()
            if loop.is_closed():
                continue
            loop.call_soon_threadsafe(_resolve, fut)

    async def acquire(
        self, holder: str, priority: str, vram_mb: int, ttl_s: float
    ) -> dict[str, Any]:
        return self._apply(self.state.acquire, holder, priority, vram_mb, ttl_s, writes=True)

    async def get(self, lease_id: str) -> dict[str, Any]:
        return self._apply(self.state.get, lease_id)

    async def heartbeat(self, lease_id: str, token: int) -> dict[str, Any]:
        return self._apply(self.state.heartbeat, lease_id, token, writes=True)

    async def validate(self, lease_id: str, token: int) -> dict[str, Any]:
        return self._apply(self.state.validate, lease_id, token)

    async def release(self, lease_id: str, token: int) -> dict[str, Any]:
        return self._apply(self.state.release, lease_id, token, writes=True)

    async def cancel(self, lease_id: str) -> dict[str, Any]:
        return self._apply(self.state.cancel, lease_id, writes=True)

    async def tick(self) -> None:
        self._apply(self.state.tick)

    async def status(self) -> dict[str, Any]:
        return self._apply(self.state.status)

    async def wait_change(self, wait_s: float, since: int | None = None) -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.add(fut)
        if since is not None and since != self._changes:
            fut.set_result(None)  # changed since the caller's read
        try:
            # asyncio.wait, not wait_for or timeout(): on 3.11 those can swallow a cancellation
            # that races with the wake-up or the timer, leaving a cancelled task running.
            await asyncio.wait({fut}, timeout=max(0.0, wait_s))
        finally:
            self._waiters.discard(fut)

    async def aclose(self) -> None:
        self._notify()


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


async def wait_view(
    backend: LeaseBackend,
    fetch: Callable[[], Awaitable[dict[str, Any]]],
    done: Callable[[dict[str, Any]], bool],
    wait_s: float,
    poll_s: float = 0.25,
) -> dict[str, Any]:
    """Fetch a view until `done(view)` or `wait_s` passed; wakes on state changes (long polling).

    `poll_s` bounds each sleep so that time-driven transitions (TTL expiry, grace periods) are
    seen even when nothing else changes the state.
    """
    deadline = time.monotonic() + max(0.0, wait_s)
    seen = backend.changes  # before the read: a change during the read is not slept through
    view = await fetch()
    since = view.get("now")  # the state's clock when this wait began (see `since` in views)
    while not done(view):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        await backend.wait_change(min(remaining, poll_s), since=seen)
        seen = backend.changes
        view = await fetch()
    return {**view, "since": since}
