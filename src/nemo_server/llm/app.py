"""Composition root of the LLM service: `uvicorn --factory nemo_server.llm.app:create_app`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from nemo_server.common.app import create_service_app
from nemo_server.common.db import Database, open_service_database
from nemo_server.llm.catalog import ModelCatalog
from nemo_server.llm.conversations import ConversationStore
from nemo_server.llm.engines import ENGINES, EngineBackend
from nemo_server.llm.engines.base import LoadedModel
from nemo_server.llm.lifecycle import ModelManager
from nemo_server.llm.metrics import LlmMetrics
from nemo_server.llm.routes import router
from nemo_server.llm.service import LlmService
from nemo_server.llm.settings import LlmSettings

log = logging.getLogger("nemo.llm")


def _backend(settings: LlmSettings, engine: EngineBackend | LoadedModel | None) -> EngineBackend:
    if engine is None:
        if settings.engine not in ENGINES:
            raise ValueError(f"unknown NEMO_LLM_ENGINE {settings.engine!r}; one of {list(ENGINES)}")
        return ENGINES[settings.engine]
    if isinstance(engine, EngineBackend):
        return engine
    model = engine  # one ready model instance (tests): served under every model name
    return EngineBackend(lambda spec, options: model, lambda: False, lambda spec, options: 0)


def create_app(
    settings: LlmSettings | None = None,
    *,
    engine: EngineBackend | LoadedModel | None = None,
    lease_client: Any = None,
    database: Database | None = None,
) -> FastAPI:
    """Build the LLM service app.

    Collaborators (tests inject fakes): `engine` (a backend from the registry, or one loaded
    model served under every name), `lease_client` (a `nemo_server.common.gpu.LeaseClient`;
    by default the coordinator's, used only when models go on a GPU), `database`.
    """
    settings = settings or LlmSettings()
    backend = _backend(settings, engine)
    catalog = ModelCatalog(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db = database or await run_in_threadpool(
            open_service_database, "llm", settings.common, "nemo_server.llm:migrations"
        )
        app.state.database = db
        manager = ModelManager(settings, catalog, backend, lease_client=lease_client)
        own_client = None
        if lease_client is None and await run_in_threadpool(manager.use_gpu):
            from nemo_server.common.gpu_http import HttpLeaseClient

            own_client = HttpLeaseClient.for_settings(settings.common, app.state.internal_codec)
            manager.lease_client = own_client
        app.state.llm_service = LlmService(
            settings,
            catalog,
            manager,
            ConversationStore(db),
            app.state.llm_metrics,
        )
        reaper = asyncio.create_task(manager.reaper(), name="llm-keep-alive")
        try:
            yield
        finally:
            reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reaper
            await manager.close()
            if own_client is not None:
                await own_client.aclose()
            if database is None:
                db.dispose()

    async def database_ready() -> None:
        await app.state.database.ping()

    app = create_service_app(
        "llm", settings, routers=[router], lifespan=lifespan, readiness_checks=[database_ready]
    )
    # Once per app: a lifespan may run more than once (tests), a registry takes a name once.
    app.state.llm_metrics = LlmMetrics(app.state.metrics_registry)
    return app
