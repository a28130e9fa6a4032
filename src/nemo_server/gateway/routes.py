"""`/v1/auth`, `/v1/users/me` and `/v1/api-keys`."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Form, Request
from starlette.concurrency import run_in_threadpool

from nemo_server.common.app import service_router
from nemo_server.common.auth import Principal
from nemo_server.common.errors import NotFound, Unprocessable
from nemo_server.gateway.deps import authenticated, client_address, gate
from nemo_server.gateway.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyOut,
    RefreshRequest,
    RegisterRequest,
    TokenResponse,
    UserOut,
)
from nemo_server.gateway.service import TokenPair

router = service_router(tags=["auth"])


def _tokens(pair: TokenPair) -> TokenResponse:
    return TokenResponse(
        access_token=pair.access_token, refresh_token=pair.refresh_token, expires_in=pair.expires_in
    )


@router.post("/v1/auth/register", response_model=UserOut, status_code=201)
async def register(body: RegisterRequest, request: Request) -> UserOut:
    """Create an account (only while an admin allows open registration)."""
    user = await run_in_threadpool(gate(request).auth.register, body.username, body.password)
    return UserOut.model_validate(user)


@router.post("/v1/auth/token", response_model=TokenResponse)
async def token(
    request: Request,
    username: Annotated[str, Form(min_length=1, max_length=64)],
    password: Annotated[str, Form(min_length=1, max_length=256)],
    grant_type: Annotated[str | None, Form()] = None,
) -> TokenResponse:
    """OAuth2 password grant: `username` + `password` (form) -> access and refresh tokens."""
    if grant_type not in (None, "", "password"):
        raise Unprocessable("grant_type must be 'password'", param="grant_type")
    g = gate(request)
    await g.login_attempt(username, client_address(request, g.settings.trust_forwarded_for))
    return _tokens(await run_in_threadpool(g.auth.login, username, password))


@router.post("/v1/auth/refresh", response_model=TokenResponse)
async def refresh(body: RefreshRequest, request: Request) -> TokenResponse:
    """Trade a refresh token for a new pair. Each refresh token works once; reusing a spent one
    ends the whole login session."""
    return _tokens(await run_in_threadpool(gate(request).auth.refresh, body.refresh_token))


@router.post("/v1/auth/logout", status_code=204)
async def logout(request: Request, principal: Principal = Depends(authenticated)) -> None:
    """End this login session: its access and refresh tokens stop working at once."""
    await run_in_threadpool(gate(request).auth.logout, principal)


@router.get("/v1/users/me", response_model=UserOut)
async def me(request: Request, principal: Principal = Depends(authenticated)) -> UserOut:
    """The calling user."""
    user = await run_in_threadpool(gate(request).auth.store.user_by_id, principal.user_id)
    if user is None:
        raise NotFound("user not found")
    return UserOut.model_validate(user)


@router.post("/v1/api-keys", response_model=ApiKeyCreated, status_code=201)
async def create_api_key(
    body: ApiKeyCreate, request: Request, principal: Principal = Depends(authenticated)
) -> ApiKeyCreated:
    """Create an API key for the caller. The key is in this response only."""
    key, secret = await run_in_threadpool(
        gate(request).auth.create_api_key, principal, body.name, body.rate_limit_per_minute
    )
    return ApiKeyCreated(**ApiKeyOut.model_validate(key).model_dump(), key=secret)


@router.get("/v1/api-keys", response_model=dict[str, list[ApiKeyOut]])
async def list_api_keys(
    request: Request, principal: Principal = Depends(authenticated)
) -> dict[str, list[ApiKeyOut]]:
    """The caller's API keys (never the secrets)."""
    keys = await run_in_threadpool(gate(request).auth.store.list_api_keys, principal.user_id)
    return {"data": [ApiKeyOut.model_validate(k) for k in keys]}


@router.delete("/v1/api-keys/{key_id}", status_code=204)
async def delete_api_key(
    key_id: str, request: Request, principal: Principal = Depends(authenticated)
) -> None:
    """Revoke one of the caller's API keys."""
    await run_in_threadpool(gate(request).auth.delete_api_key, principal, key_id)
