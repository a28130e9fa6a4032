"""Composition root of the ML service (port 8006)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from nemo_server.common.app import create_service_app
from nemo_server.common.db import open_service_database
from nemo_server.ml.datasets import DatasetStore
from nemo_server.ml.jobs import JobRunner, JobStore
from nemo_server.ml.routes import router
from nemo_server.ml.service import MLService
from nemo_server.ml.settings import MLSettings

DEFAULT_TARGET = "nemo_server.ml.worker:run_task"


def create_app(settings: MLSettings | None = None, *, job_target: str | None = None) -> FastAPI:
    """The ML app. `job_target` ("module:function") replaces what worker processes run (tests)."""
    settings = settings or MLSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db = await run_in_threadpool(
            open_service_database, "ml", settings.common, "nemo_server.ml:migrations"
        )
        store = JobStore(db)
        if not settings.common.database_url:
            await run_in_threadpool(store.fail_unfinished)
        runner = JobRunner(
            store,
            workers=settings.workers,
            nice=settings.worker_nice,
            target=job_target or DEFAULT_TARGET,
        )
        runner.start()
        app.state.ml = MLService(settings, db, runner, DatasetStore(db, settings))
        app.state.readiness_checks.append(db.ping)
        try:
            yield
        finally:
            await run_in_threadpool(runner.stop)
            db.dispose()

    return create_service_app("ml", settings, routers=[router], lifespan=lifespan)
