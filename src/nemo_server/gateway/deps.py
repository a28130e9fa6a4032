"""Per-request authentication and rate limiting for the gateway's routes and the proxy."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection

from nemo_server.common.auth import Principal, bearer_token
from nemo_server.common.errors import Forbidden, RateLimited, Unauthorized
from nemo_server.gateway.ratelimit import Decision, Limit, RateLimiter
from nemo_server.gateway.service import AuthService
from nemo_server.gateway.settings import GatewaySettings


@dataclass
class Gate:
    """What authentication and rate limiting need, built once in the app's lifespan."""

    auth: AuthService
    limiter: RateLimiter
    settings: GatewaySettings

    def limit_for(self, own: int | None) -> Limit:
        rate = own or self.settings.rate_limit_per_minute
        return Limit(rate=rate, period_s=60.0, burst=min(self.settings.rate_limit_burst, rate))

    async def admit(self, conn: HTTPConnection) -> tuple[Principal, Decision]:
        """Authenticate the bearer (header, or `access_token` query for browser WebSockets)
        and charge the rate limit of the user or API key."""
        token = bearer_token(conn.headers.get("authorization"))
        if token is None and conn.scope["type"] == "websocket":
            token = conn.query_params.get("access_token")
        if token is None:
            raise Unauthorized("missing bearer token")
        if self.settings.common.database_url is None:
            # SQLite on local disk answers in tens of microseconds: cheaper inline than a
            # thread hop. A networked database goes to the thread pool.
            principal, own_limit = self.auth.authenticate(token)
        else:
            principal, own_limit = await run_in_threadpool(self.auth.authenticate, token)
        key = f"ak:{principal.api_key_id}" if principal.api_key_id else f"u:{principal.user_id}"
        decision = await self.limiter.hit(key, self.limit_for(own_limit))
        if not decision.allowed:
            raise RateLimited(
                f"rate limit exceeded; retry in {decision.headers()['Retry-After']} s",
                headers=decision.headers(),
            )
        return principal, decision

    async def login_attempt(self, username: str, client: str) -> None:
        """Brute-force guard for password logins; fails closed when the limiter is down."""
        per_minute = self.settings.login_attempts_per_minute
        limit = Limit(rate=per_minute, period_s=60.0, burst=per_minute)
        for key in (f"login:u:{username.lower()}", f"login:ip:{client}"):
            decision = await self.limiter.hit(key, limit, strict=True)
            if not decision.allowed:
                raise RateLimited("too many login attempts", headers=decision.headers())


def gate(conn: HTTPConnection) -> Gate:
    return conn.app.state.gate  # type: ignore[no-any-return]


async def authenticated(request: Request) -> Principal:
    """Dependency: the caller's principal; sets rate-limit headers for the response."""
    principal, decision = await gate(request).admit(request)
    request.state.rate_limit = decision
    return principal


async def admin(request: Request) -> Principal:
    """Dependency: the caller, who must be an admin."""
    principal = await authenticated(request)
    if not principal.is_admin:
        raise Forbidden("admin role required")
    return principal


def client_address(request: HTTPConnection, trust_forwarded_for: bool) -> str:
    if trust_forwarded_for:
        forwarded = request.headers.get("x-forwarded-for")
        if forwarded:
            return forwarded.split(",")[0].strip()
    return request.client.host if request.client else "unknown"
