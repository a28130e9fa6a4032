"""The embedded backend: the state machine in this process, plus a restart marker.

State in memory is lost when the coordinator restarts, but holders granted before may still be
working. So the backend keeps a small file saying until when granted leases may live; a restarted
coordinator makes no grant before that instant (the holders stop on their own by then: the
client stops work once its TTL passes without an acknowledged heartbeat).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nemo_server.common.gpu_backend import EventSink, MemoryLeaseBackend
from nemo_server.common.gpu_state import StateConfig

log = logging.getLogger("nemo.coordinator.memory")

MARKER = "leases-live-until.json"


class MarkedMemoryBackend(MemoryLeaseBackend):
    """`MemoryLeaseBackend` that survives its own restart without double grants."""

    def __init__(
        self,
        config: StateConfig,
        state_dir: Path,
        *,
        clock: Callable[[], float] = time.time,
        on_event: EventSink | None = None,
        margin_s: float = 2.0,
    ) -> None:
        self.marker = Path(state_dir) / MARKER
        self.margin_s = margin_s
        blocked = _read_marker(self.marker)
        now = clock()
        if blocked > now:
            log.warning("restarted with leases possibly live: no grants for %.1f s", blocked - now)
        self._user_sink = on_event
        self._written = 0.0
        super().__init__(config, clock=clock, blocked_until=blocked, on_event=self._sink)

    def _sink(self, kind: str, view: dict[str, Any]) -> None:
        if kind == "granted":
            self.write_marker()
        if self._user_sink is not None:
            self._user_sink(kind, view)

    def write_marker(self) -> None:
        """Record the latest instant a granted lease may live (called on grants and ticks)."""
        with self._lock:
            live = [e.expires_at for e in self.state.held()]
        until = max(live) + self.margin_s if live else 0.0
        if until == self._written:
            return
        self._written = until
        if until == 0.0:
            with contextlib.suppress(FileNotFoundError):
                self.marker.unlink()
            return
        self.marker.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.marker.with_suffix(".tmp")
        tmp.write_text(json.dumps({"until": until}))
        os.replace(tmp, self.marker)

    async def tick(self) -> None:
        await super().tick()
        self.write_marker()


def _read_marker(path: Path) -> float:
    try:
        return float(json.loads(path.read_text())["until"])
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return 0.0
