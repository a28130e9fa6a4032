"""The coordinator's composition root: `create_app()`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from nemo_server.common.app import create_service_app
from nemo_server.common.gpu_backend import LeaseBackend
from nemo_server.common.gpu_state import StateConfig
from nemo_server.coordinator.backends import backend_name, build_backend
from nemo_server.coordinator.budget import Budget, resolve_budget
from nemo_server.coordinator.metrics import CoordinatorMetrics
from nemo_server.coordinator.routes import admin, leases
from nemo_server.coordinator.service import CoordinatorService
from nemo_server.coordinator.settings import CoordinatorSettings


def create_app(
    settings: CoordinatorSettings | None = None,
    *,
    backend: LeaseBackend | None = None,
    budget: Budget | None = None,
) -> FastAPI:
    """Build the coordinator; `backend` and `budget` may be injected (tests)."""
    settings = settings or CoordinatorSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        metrics = CoordinatorMetrics(app.state.metrics_registry)
        resolved = budget or resolve_budget(settings)
        config = StateConfig(
            budget_mb=resolved.mb,
            grace_s=settings.grace_s,
            ageing_s=settings.ageing_s,
            max_ttl_s=settings.max_ttl_s,
            linger_s=settings.linger_s,
        )
        store = backend or build_backend(settings, config, metrics.on_event)
        name = type(store).__name__ if backend is not None else backend_name(settings)
        if backend is not None and getattr(backend, "on_event", None) is None:
            backend.on_event = metrics.on_event  # type: ignore[attr-defined]
        service = CoordinatorService(
            store,
            resolved,
            metrics,
            backend_name=name,
            max_wait_s=settings.max_wait_s,
            tick_s=settings.tick_s,
        )
        app.state.coordinator = service

        async def backend_ready() -> None:
            await store.status()

        app.state.readiness_checks.append(backend_ready)
        reaper = asyncio.create_task(service.reap_forever(), name="gpu-reaper")
        try:
            yield
        finally:
            reaper.cancel()
            await asyncio.wait({reaper}, timeout=2.0)  # bounded: shutdown must not hang
            await store.aclose()

    return create_service_app(
        "coordinator",
        settings,
        routers=[leases, admin],
        lifespan=lifespan,
        title="Nemo GPU coordinator",
    )
