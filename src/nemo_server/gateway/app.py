"""The gateway's composition root."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from nemo_server.common.app import create_service_app
from nemo_server.common.auth import InternalTokenCodec
from nemo_server.common.db import Database, open_service_database
from nemo_server.gateway import admin_routes, proxy_routes, routes
from nemo_server.gateway.deps import Gate
from nemo_server.gateway.proxy import Proxy
from nemo_server.gateway.ratelimit import RateLimiter, build_limiter
from nemo_server.gateway.service import AuthService
from nemo_server.gateway.settings import GatewaySettings
from nemo_server.gateway.tokens import TokenCodec

log = logging.getLogger("nemo.gateway")

MIGRATIONS = "nemo_server.gateway:migrations"


def open_database(settings: GatewaySettings) -> Database:
    return open_service_database("gateway", settings.common, MIGRATIONS)


def build_auth_service(settings: GatewaySettings, db: Database) -> AuthService:
    from nemo_server.gateway.store import GatewayStore

    secrets = settings.common.secrets()
    tokens = TokenCodec(
        secrets.get("jwt_key"),
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        access_ttl_s=settings.access_token_ttl_s,
        refresh_ttl_s=settings.refresh_token_ttl_s,
        leeway_s=settings.jwt_leeway_s,
    )
    return AuthService(GatewayStore(db), tokens, open_registration=settings.open_registration)


def create_app(
    settings: GatewaySettings | None = None,
    *,
    limiter: RateLimiter | None = None,
) -> FastAPI:
    """Build the gateway. `limiter` replaces the real rate limiter in tests."""
    settings = settings or GatewaySettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db = open_database(settings)
        auth_service = build_auth_service(settings, db)
        admin_secret = settings.common.secrets_dir / "admin_password"
        password = auth_service.bootstrap_admin(
            settings.admin_username,
            admin_secret.read_text().strip() if admin_secret.is_file() else None,
        )
        if password and not admin_secret.is_file():
            log.warning(
                "first start: created admin %r with password %s (shown once; change it)",
                settings.admin_username,
                password,
            )
        rate_limiter = limiter or build_limiter(
            settings.common.redis_url, settings.redis_failure_mode
        )
        codec = InternalTokenCodec(
            settings.common.secrets().get("internal_key"),
            ttl_s=settings.common.internal_token_ttl_s,
        )
        app.state.gate = Gate(auth=auth_service, limiter=rate_limiter, settings=settings)
        app.state.proxy = Proxy(
            settings.common,
            codec,
            connect_timeout_s=settings.upstream_connect_timeout_s,
            read_timeout_s=settings.upstream_read_timeout_s,
        )
        app.state.readiness_checks.append(db.ping)
        try:
            yield
        finally:
            await app.state.proxy.aclose()
            await rate_limiter.aclose()
            db.dispose()

    app = create_service_app(
        "gateway",
        settings,
        routers=[routes.router, admin_routes.router],
        lifespan=lifespan,
        internal_auth=False,
        title="Nemo Server",
    )
    app.router.routes.extend(proxy_routes.routes)
    return app
