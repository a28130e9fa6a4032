"""The transcription service's composition root."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from nemo_server.common.app import create_service_app
from nemo_server.common.db import Database, open_service_database
from nemo_server.common.gpu import LeaseClient, LocalLeaseClient
from nemo_server.common.gpu_http import HttpLeaseClient
from nemo_server.transcription.engines import (
    AsrEngine,
    DiarizationEngine,
    SpeakerEmbedder,
    build_asr,
    build_diarizer,
    build_embedder,
    model_paths,
)
from nemo_server.transcription.jobs import JobRunner
from nemo_server.transcription.live_routes import router as live_router
from nemo_server.transcription.routes import router
from nemo_server.transcription.service import Diarizers, ModelRegistry, TranscriptionService
from nemo_server.transcription.settings import TranscriptionSettings
from nemo_server.transcription.store import TranscriptStore

log = logging.getLogger("nemo.transcription")


def create_app(
    settings: TranscriptionSettings | None = None,
    *,
    asr_engine: AsrEngine | None = None,
    diarizer: DiarizationEngine | None = None,
    embedder: SpeakerEmbedder | None = None,
    lease_client: LeaseClient | None = None,
    database: Database | None = None,
) -> FastAPI:
    """Build the app; collaborators given here replace the real ones (unit tests).

    `asr_engine` becomes the default model (no model is then loaded from disk).
    """
    settings = settings or TranscriptionSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db = database or await run_in_threadpool(
            open_service_database,
            "transcription",
            settings.common,
            "nemo_server.transcription:migrations",
        )
        paths = model_paths(settings)
        models = ModelRegistry(
            settings,
            builder=None if asr_engine else (lambda name: build_asr(name, paths[name], settings)),
            preset={settings.default_model: asr_engine} if asr_engine else None,
        )
        leases = lease_client or _lease_client(settings, app)
        service = TranscriptionService(
            settings,
            models,
            Diarizers((lambda: diarizer) if diarizer else (lambda: build_diarizer(settings))),
            TranscriptStore(db),
            leases,
        )
        app.state.transcription = service
        app.state.embedders = Diarizers(
            (lambda: embedder) if embedder else build_embedder  # type: ignore[arg-type,return-value]
        )
        app.state.readiness_checks.append(db.ping)
        if settings.preload and asr_engine is None:
            await run_in_threadpool(models.get, settings.default_model)
        app.state.jobs = JobRunner(service)
        await app.state.jobs.start()
        try:
            yield
        finally:
            await app.state.jobs.stop()
            service.decoder.close()
            if lease_client is None:
                await leases.aclose()
            if database is None:
                db.dispose()

    return create_service_app(
        "transcription", settings, routers=[router, live_router], lifespan=lifespan
    )


def _lease_client(settings: TranscriptionSettings, app: FastAPI) -> LeaseClient:
    """The coordinator's client when ASR uses the GPU (or when asked); else a local stand-in."""
    mode = settings.gpu_leases
    if mode == "auto":
        from nemo_server.transcription.engines.whisper import resolve_device

        mode = "coordinator" if resolve_device(settings.device) == "cuda" else "local"
    if mode == "coordinator":
        return HttpLeaseClient.for_settings(settings.common, app.state.internal_codec)
    return LocalLeaseClient()
