"""The RAG service's composition root."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from anyio import to_thread
from fastapi import FastAPI

from nemo_server.common.app import create_service_app
from nemo_server.common.clients import ServiceClient
from nemo_server.common.db import Database, open_service_database
from nemo_server.rag.engines import Embedder, build_embedder
from nemo_server.rag.llm_client import HttpLlmClient, LlmClient
from nemo_server.rag.memory import MemoryIndexes
from nemo_server.rag.routes import router
from nemo_server.rag.service import RagService
from nemo_server.rag.settings import RagSettings
from nemo_server.rag.store import RagStore

log = logging.getLogger("nemo.rag")

MIGRATIONS = "nemo_server.rag:migrations"


def create_app(
    settings: RagSettings | None = None,
    *,
    embedder: Embedder | None = None,
    llm_client: LlmClient | None = None,
    database: Database | None = None,
) -> FastAPI:
    """Build the RAG service; `embedder`, `llm_client` and `database` replace the real ones."""
    settings = settings or RagSettings()
    state: dict[str, Database] = {}

    async def database_ready() -> None:
        db = state.get("db")
        if db is None:
            raise RuntimeError("database not open")
        await db.ping()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db = database or await to_thread.run_sync(
            open_service_database, "rag", settings.common, MIGRATIONS
        )
        state["db"] = db
        engine = embedder or await to_thread.run_sync(build_embedder, settings)
        llm = llm_client or HttpLlmClient(
            ServiceClient.for_service("llm", settings.common, app.state.internal_codec)
        )
        store = RagStore(db)
        indexes = MemoryIndexes(settings, store, engine.dim)
        app.state.rag = RagService(settings, store, engine, indexes, llm)
        saver = asyncio.create_task(_persist_periodically(indexes, settings.persist_interval_s))
        log.info("rag ready: %s on %s", engine.name, engine.device)
        try:
            yield
        finally:
            saver.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await saver
            await to_thread.run_sync(indexes.save)
            await llm.aclose()
            if database is None:
                db.dispose()

    return create_service_app(
        "rag", settings, routers=[router], lifespan=lifespan, readiness_checks=[database_ready]
    )


async def _persist_periodically(indexes: MemoryIndexes, interval_s: float) -> None:
    """Write changed indexes now and then, so a restart rarely rebuilds an HNSW graph."""
    while True:
        await asyncio.sleep(interval_s)
        try:
            await to_thread.run_sync(indexes.save)
        except Exception:
            log.exception("saving the indexes failed (they are rebuilt from the database)")
