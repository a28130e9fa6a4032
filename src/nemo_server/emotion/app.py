"""Composition root of the emotion service (port 8005)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from nemo_server.common.app import create_service_app
from nemo_server.common.clients import ServiceClient
from nemo_server.common.db import open_service_database
from nemo_server.emotion.engines.base import (
    SentimentEngine,
    TextEmotionEngine,
    build_sentiment_engine,
    build_text_engine,
)
from nemo_server.emotion.routes import router
from nemo_server.emotion.service import EmotionService
from nemo_server.emotion.settings import EmotionSettings
from nemo_server.emotion.store import EmotionStore
from nemo_server.emotion.transcriber import Transcriber, TranscriptionServiceClient

log = logging.getLogger("nemo.emotion")

_UNSET: Any = object()


def create_app(
    settings: EmotionSettings | None = None,
    *,
    text_engine: TextEmotionEngine | None = None,
    sentiment_engine: SentimentEngine | None = _UNSET,
    transcriber: Transcriber | None = None,
    store: EmotionStore | None = None,
) -> FastAPI:
    """The emotion app; collaborators not given are built from the settings at start-up."""
    settings = settings or EmotionSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        closers = []
        engine = text_engine
        if engine is None:
            log.info("loading text emotion engine %s", settings.text_engine)
            engine = await run_in_threadpool(build_text_engine, settings)
        sentiment = sentiment_engine
        if sentiment is _UNSET:
            sentiment = await run_in_threadpool(build_sentiment_engine, settings)
        results = store
        if results is None:
            db = await run_in_threadpool(
                open_service_database, "emotion", settings.common, "nemo_server.emotion:migrations"
            )
            results = EmotionStore(db)
            app.state.readiness_checks.append(db.ping)
            closers.append(db.dispose)
        speech_to_text = transcriber
        if speech_to_text is None:
            import httpx

            client = ServiceClient.for_service(
                "transcription",
                settings.common,
                app.state.internal_codec,
                timeout=httpx.Timeout(settings.transcription_timeout_s, connect=5.0),
            )
            speech_to_text = TranscriptionServiceClient(client)
            closers.append(client.aclose)
        app.state.emotion = EmotionService(settings, engine, sentiment, results, speech_to_text)
        try:
            yield
        finally:
            app.state.emotion = None
            for close in reversed(closers):
                outcome = close()
                if hasattr(outcome, "__await__"):
                    await outcome

    return create_service_app("emotion", settings, routers=[router], lifespan=lifespan)
