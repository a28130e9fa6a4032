"""Model lifecycle: load on first use, unload after keep-alive, a GPU lease while on the GPU.

A model that goes on the GPU first gets a coordinator lease sized to its VRAM estimate and
holds it until it is unloaded. When the coordinator asks for the VRAM back (pre-emption), the
model is unloaded as soon as its running requests end; the next request loads it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.concurrency import run_in_threadpool

from nemo_server.common.errors import Conflict, ServiceUnavailable
from nemo_server.llm.catalog import ModelCatalog
from nemo_server.llm.engines import EngineBackend
from nemo_server.llm.engines.base import EngineOptions, LoadedModel, ModelSpec
from nemo_server.llm.settings import LlmSettings

log = logging.getLogger("nemo.llm.lifecycle")


@dataclass
class _Entry:
    spec: ModelSpec
    model: LoadedModel
    lease: Any = None  # nemo_server.common.gpu.Lease while the model is on the GPU
    in_use: int = 0
    last_used: float = field(default_factory=time.monotonic)
    watcher: asyncio.Task[None] | None = None


class ModelManager:
    """Loaded models by name; `use()` marks a model busy so it is not unloaded under a request."""

    def __init__(
        self,
        settings: LlmSettings,
        catalog: ModelCatalog,
        backend: EngineBackend,
        *,
        lease_client: Any = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.catalog = catalog
        self.backend = backend
        self.lease_client = lease_client
        self.clock = clock
        self._entries: dict[str, _Entry] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._gpu: bool | None = None

    def use_gpu(self) -> bool:
        if self._gpu is None:
            device = self.settings.device
            self._gpu = device == "gpu" or (device == "auto" and self.backend.gpu_available())
        return self._gpu

    def options(self) -> EngineOptions:
        s = self.settings
        return EngineOptions(
            n_slots=s.parallel_slots,
            ctx_per_slot=s.context_per_slot,
            n_batch=s.batch_tokens,
            n_threads=s.threads,
            gpu=self.use_gpu(),
            background_slots=s.background_slots,
            prefill_chunk=s.prefill_chunk_tokens,
            cpu_repack=s.cpu_repack,
            repack_dir=s.common.data_dir / "models" / "cpu-repack",
        )

    @contextlib.asynccontextmanager
    async def use(self, spec: ModelSpec) -> AsyncIterator[LoadedModel]:
        """The model of `spec`, loaded if needed, kept loaded while the block runs."""
        entry = await self._ensure(spec)
        entry.in_use += 1
        try:
            yield entry.model
        finally:
            entry.in_use -= 1
            entry.last_used = self.clock()
            if entry.lease is not None and entry.lease.preempt_requested and entry.in_use == 0:
                await self.unload(spec.name)

    async def load(self, spec: ModelSpec) -> LoadedModel:
        """Load now (admin); a no-op when already loaded."""
        entry = await self._ensure(spec)
        entry.last_used = self.clock()
        return entry.model

    async def _ensure(self, spec: ModelSpec) -> _Entry:
        entry = self._entries.get(spec.name)
        if entry is not None:
            return entry
        lock = self._locks.setdefault(spec.name, asyncio.Lock())
        async with lock:  # concurrent first requests load the model once
            entry = self._entries.get(spec.name)
            if entry is not None:
                return entry
            await self._make_room()
            entry = await self._load(spec)
            self._entries[spec.name] = entry
            return entry

    async def _load(self, spec: ModelSpec) -> _Entry:
        options = self.options()
        lease = None
        if options.gpu and self.lease_client is not None:
            vram = await run_in_threadpool(self.backend.vram_mb, spec, options)
            lease = await self.lease_client.acquire(
                f"llm:{spec.name}",
                priority="interactive",
                vram_mb=vram,
                ttl_s=self.settings.lease_ttl_s,
                wait_timeout_s=self.settings.lease_wait_s,
            )
        try:
            model = await run_in_threadpool(self.backend.build, spec, options)
        except Exception as exc:
            if lease is not None:
                await lease.release()
            log.exception("loading %s failed", spec.name)
            raise ServiceUnavailable(f"model '{spec.name}' could not be loaded: {exc}") from exc
        entry = _Entry(spec, model, lease, last_used=self.clock())
        if lease is not None:
            entry.watcher = asyncio.create_task(self._watch(entry))
        return entry

    async def _watch(self, entry: _Entry) -> None:
        """Give the GPU back when the coordinator asks: unload once no request runs."""
        await entry.lease.wait_preempted()
        log.info("coordinator asked for the GPU back: unloading %s when idle", entry.spec.name)
        if entry.in_use == 0:
            await self.unload(entry.spec.name)

    async def _make_room(self) -> None:
        while len(self._entries) >= self.settings.max_loaded_models:
            idle = [e for e in self._entries.values() if e.in_use == 0]
            if not idle:
                raise ServiceUnavailable("every loaded model is busy; try again shortly")
            oldest = min(idle, key=lambda e: e.last_used)
            await self.unload(oldest.spec.name)

    async def unload(self, name: str, *, force: bool = True) -> bool:
        """Unload `name` (running requests end with an error); False when it was not loaded."""
        entry = self._entries.get(name)
        if entry is None:
            return False
        if entry.in_use and not force:
            raise Conflict(f"model '{name}' is serving {entry.in_use} request(s)", param="model")
        del self._entries[name]
        await run_in_threadpool(entry.model.close)
        if entry.watcher is not None and entry.watcher is not asyncio.current_task():
            entry.watcher.cancel()
        if entry.lease is not None:
            await entry.lease.release()
        log.info("unloaded %s", name)
        return True

    async def reap(self) -> list[str]:
        """Unload models idle for longer than the keep-alive; returns their names."""
        keep = self.settings.keep_alive_s
        if keep <= 0:
            return []
        now = self.clock()
        stale = [n for n, e in self._entries.items() if e.in_use == 0 and now - e.last_used >= keep]
        for name in stale:
            await self.unload(name)
        return stale

    async def reaper(self) -> None:
        """Background task of the app: reap every few seconds."""
        interval = min(max(self.settings.keep_alive_s / 4, 0.5), 15.0)
        while True:
            await asyncio.sleep(interval)
            try:
                await self.reap()
            except Exception:  # never let one failure stop unloading for good
                log.exception("reaping idle models failed")

    def loaded(self) -> list[dict[str, Any]]:
        now = self.clock()
        return [
            {
                "id": name,
                "device": e.model.device,
                # The file actually served (a CPU-repacked copy of a bundled model, or its own).
                "file": str(getattr(e.model, "spec", e.spec).path),
                "n_ctx": e.model.n_ctx,
                "slots": e.model.n_slots,
                **e.model.stats(),
                "in_use": e.in_use,
                "idle_s": round(now - e.last_used, 3) if e.in_use == 0 else 0.0,
                "vram_mb": e.model.vram_mb,
                "lease_id": getattr(e.lease, "id", None),
            }
            for name, e in self._entries.items()
        ]

    def loaded_spec(self, name: str) -> ModelSpec | None:
        """The spec of a loaded model (None when not loaded, or named `default`)."""
        entry = self._entries.get(name)
        return entry.spec if entry is not None else None

    def is_loaded(self, name: str) -> bool:
        return name in self._entries

    async def close(self) -> None:
        for name in list(self._entries):
            await self.unload(name)
