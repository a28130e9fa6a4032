"""HTTP routes: the internal lease API and the admin status."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import Depends, Query, Request
from sse_starlette import EventSourceResponse

from nemo_server.common.app import service_router
from nemo_server.common.auth import Principal, current_principal, require_admin
from nemo_server.coordinator.schemas import (
    AcquireRequest,
    GpuStatus,
    HeartbeatRequest,
    LeaseView,
    TokenRequest,
)
from nemo_server.coordinator.service import CoordinatorService

leases = service_router(prefix="/internal/v1/leases", tags=["leases"])
admin = service_router(prefix="/v1/gpu", tags=["gpu"])


def _service(request: Request) -> CoordinatorService:
    return request.app.state.coordinator


@leases.post("", status_code=201, response_model=LeaseView)
async def acquire(
    body: AcquireRequest,
    service: CoordinatorService = Depends(_service),
    _: Principal = Depends(current_principal),
) -> dict[str, Any]:
    """Request a lease; `state` is `granted` (with its fencing token) or `waiting`.

    409 when `vram_mb` exceeds the whole budget. Poll `GET /internal/v1/leases/{id}?wait_s=`
    or follow `GET /internal/v1/leases/{id}/events` while waiting.
    """
    return await service.acquire(
        body.holder, body.priority.value, body.vram_mb, body.ttl_s, body.wait_s
    )


@leases.get("/{lease_id}", response_model=LeaseView)
async def get_lease(
    lease_id: str,
    wait_s: float = Query(default=0.0, ge=0, le=120, description="Long-poll for the grant."),
    service: CoordinatorService = Depends(_service),
    _: Principal = Depends(current_principal),
) -> dict[str, Any]:
    """A lease request's state; with `wait_s`, answered when it stops waiting (404 if unknown)."""
    return await service.get(lease_id, wait_s)


@leases.get("/{lease_id}/events")
async def lease_events(
    lease_id: str,
    service: CoordinatorService = Depends(_service),
    _: Principal = Depends(current_principal),
) -> EventSourceResponse:
    """Server-sent events of one lease: waiting, granted, preempt_requested, then its end."""
    await service.get(lease_id)  # 404 before the stream starts

    async def stream() -> AsyncIterator[dict[str, str]]:
        async for kind, view in service.events(lease_id):
            yield {"event": kind, "data": json.dumps(LeaseView(**view).model_dump())}

    return EventSourceResponse(stream(), ping=15)


@leases.post("/{lease_id}/heartbeat", response_model=LeaseView)
async def heartbeat(
    lease_id: str,
    body: HeartbeatRequest,
    service: CoordinatorService = Depends(_service),
    _: Principal = Depends(current_principal),
) -> dict[str, Any]:
    """Extend the lease by its TTL; 409 under a stale token. With `wait_s`, the answer comes
    when pre-emption is requested or after `wait_s` (a push channel for `preempt_requested`)."""
    return await service.heartbeat(lease_id, body.token, body.wait_s)


@leases.post("/{lease_id}/validate", response_model=LeaseView)
async def validate(
    lease_id: str,
    body: TokenRequest,
    service: CoordinatorService = Depends(_service),
    _: Principal = Depends(current_principal),
) -> dict[str, Any]:
    """200 if `token` is the live fencing token of this lease, else 409 (404 if unknown)."""
    return await service.validate(lease_id, body.token)


@leases.post("/{lease_id}/release", response_model=LeaseView)
async def release(
    lease_id: str,
    body: TokenRequest,
    service: CoordinatorService = Depends(_service),
    _: Principal = Depends(current_principal),
) -> dict[str, Any]:
    """Give the lease back; 409 under a stale token; repeating a release is harmless."""
    return await service.release(lease_id, body.token)


@leases.delete("/{lease_id}", response_model=LeaseView)
async def cancel(
    lease_id: str,
    service: CoordinatorService = Depends(_service),
    _: Principal = Depends(current_principal),
) -> dict[str, Any]:
    """Withdraw a request (waiting or granted), e.g. after its requester gave up waiting."""
    return await service.cancel(lease_id)


@admin.get("/status", response_model=GpuStatus)
async def gpu_status(
    service: CoordinatorService = Depends(_service),
    _: Principal = Depends(require_admin),
) -> dict[str, Any]:
    """Admins: leases, queue, budget, per-holder figures (grants, pre-emptions, revocations)."""
    return await service.status()
