"""`create_service_app()`: the frame every service is built in.

It gives a service `/healthz`, `/readyz`, Prometheus `/metrics`, request ids carried across
services and logs, the one JSON error shape, a body-size limit, strict JSON content types, and
(for every service behind the gateway) internal-token verification.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from nemo_server import __version__
from nemo_server.common.auth import InternalTokenCodec
from nemo_server.common.errors import UnsupportedMediaType, install_error_handlers
from nemo_server.common.middleware import HttpMetrics, ServiceMiddleware
from nemo_server.common.settings import ServiceSettings

log = logging.getLogger("nemo.app")

ReadinessCheck = Callable[[], Awaitable[None]]
Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]

_JSON_TYPES = ("application/json",)


class NemoRoute(APIRoute):
    """An APIRoute that answers 415 when a JSON-body endpoint gets another content type.

    FastAPI would otherwise try to parse any body as JSON and report a confusing 422.
    """

    def get_route_handler(self) -> Callable[[Request], Awaitable[Response]]:
        handler = super().get_route_handler()
        expects_json = self.body_field is not None and not any(
            type(p.field_info).__name__ in ("Form", "File") for p in self.dependant.body_params
        )
        if not expects_json:
            return handler

        async def checked(request: Request) -> Response:
            content_type = request.headers.get("content-type", "")
            media = content_type.split(";", 1)[0].strip().lower()
            has_body = request.headers.get("content-length", "0") != "0" or request.headers.get(
                "transfer-encoding"
            )
            if has_body and media and media not in _JSON_TYPES and not media.endswith("+json"):
                raise UnsupportedMediaType(
                    f"content type {media!r} is not supported here; send application/json",
                    param="content-type",
                )
            return await handler(request)

        return checked


def service_router(**kwargs: Any) -> APIRouter:
    """An APIRouter using NemoRoute; every service builds its routers with this."""
    return APIRouter(route_class=NemoRoute, **kwargs)


def create_service_app(
    name: str,
    settings: ServiceSettings,
    *,
    routers: Iterable[APIRouter] = (),
    lifespan: Lifespan | None = None,
    internal_auth: bool = True,
    readiness_checks: Iterable[ReadinessCheck] = (),
    title: str | None = None,
) -> FastAPI:
    """Build a service's FastAPI app with the platform's common behaviour.

    `internal_auth=False` only for the gateway, which authenticates clients itself.
    """
    registry = CollectorRegistry(auto_describe=True)
    codec: InternalTokenCodec | None = None
    if internal_auth:
        codec = InternalTokenCodec(
            settings.common.secrets().get("internal_key"),
            ttl_s=settings.common.internal_token_ttl_s,
        )

    @asynccontextmanager
    async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
        if lifespan is None:
            yield
            return
        async with lifespan(app):
            yield

    app = FastAPI(
        title=title or f"Nemo {name}",
        version=__version__,
        lifespan=_lifespan,
        default_response_class=JSONResponse,
    )
    app.router.route_class = NemoRoute
    app.state.service_name = name
    app.state.settings = settings
    app.state.metrics_registry = registry
    app.state.internal_codec = codec
    app.state.readiness_checks = list(readiness_checks)
    install_error_handlers(app)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str | int]:
        """Liveness: the process answers."""
        return {"status": "ok", "service": name, "version": __version__, "pid": os.getpid()}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        """Readiness: every registered check passes (database reachable, models loaded...)."""
        results: dict[str, str] = {}
        ok = True
        for check in app.state.readiness_checks:
            label = getattr(check, "__name__", "check")
            try:
                await asyncio.wait_for(check(), timeout=5)
                results[label] = "ok"
            except Exception as exc:
                ok = False
                results[label] = f"failed: {exc}"
        return JSONResponse(
            {"status": "ready" if ok else "not_ready", "service": name, "checks": results},
            status_code=200 if ok else 503,
        )

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        """Prometheus metrics of this service."""
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    for router in routers:
        app.include_router(router)

    app.add_middleware(
        ServiceMiddleware,
        metrics=HttpMetrics(name, registry),
        max_body_bytes=settings.max_body_bytes,
        codec=codec,
    )
    return app
