"""`/v1/admin`: user management and runtime settings, for admins."""

from __future__ import annotations

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from nemo_server.common.app import service_router
from nemo_server.common.auth import Principal
from nemo_server.common.errors import Conflict, NotFound
from nemo_server.gateway.deps import admin, gate
from nemo_server.gateway.schemas import AdminSettings, UserCreate, UserOut, UserUpdate

router = service_router(prefix="/v1/admin", tags=["admin"], dependencies=[Depends(admin)])


@router.get("/users", response_model=dict[str, list[UserOut]])
async def list_users(request: Request) -> dict[str, list[UserOut]]:
    """Every user."""
    users = await run_in_threadpool(gate(request).auth.store.list_users)
    return {"data": [UserOut.model_validate(u) for u in users]}


@router.post("/users", response_model=UserOut, status_code=201)
async def create_user(body: UserCreate, request: Request) -> UserOut:
    """Create a user (any role)."""
    auth = gate(request).auth
    user = await run_in_threadpool(auth.create_user, body.username, body.password, body.role)
    if body.rate_limit_per_minute is not None:
        user = await run_in_threadpool(
            auth.update_user, user.id, rate_limit_per_minute=body.rate_limit_per_minute
        )
    return UserOut.model_validate(user)


@router.get("/users/{user_id}", response_model=UserOut)
async def get_user(user_id: str, request: Request) -> UserOut:
    """One user."""
    user = await run_in_threadpool(gate(request).auth.store.user_by_id, user_id)
    if user is None:
        raise NotFound(f"no user {user_id}", param="user_id")
    return UserOut.model_validate(user)


@router.patch("/users/{user_id}", response_model=UserOut)
async def update_user(
    user_id: str, body: UserUpdate, request: Request, caller: Principal = Depends(admin)
) -> UserOut:
    """Disable or enable, change role, password or rate limit. Disabling ends the user's
    sessions at once."""
    values = body.model_dump(exclude_unset=True)
    if user_id == caller.user_id and (values.get("disabled") or values.get("role") == "user"):
        raise Conflict("an admin cannot disable or demote themselves", param="user_id")
    user = await run_in_threadpool(gate(request).auth.update_user, user_id, **values)
    return UserOut.model_validate(user)


@router.delete("/users/{user_id}", status_code=204)
async def delete_user(user_id: str, request: Request, caller: Principal = Depends(admin)) -> None:
    """Delete a user, their sessions and API keys (data in other services stays theirs)."""
    if user_id == caller.user_id:
        raise Conflict("an admin cannot delete themselves", param="user_id")
    if not await run_in_threadpool(gate(request).auth.store.delete_user, user_id):
        raise NotFound(f"no user {user_id}", param="user_id")


@router.get("/settings", response_model=AdminSettings)
async def get_settings(request: Request) -> AdminSettings:
    """Runtime settings."""
    return AdminSettings(
        open_registration=await run_in_threadpool(gate(request).auth.registration_open)
    )


@router.put("/settings", response_model=AdminSettings)
async def put_settings(body: AdminSettings, request: Request) -> AdminSettings:
    """Change runtime settings (open registration)."""
    await run_in_threadpool(gate(request).auth.set_registration_open, body.open_registration)
    return body
