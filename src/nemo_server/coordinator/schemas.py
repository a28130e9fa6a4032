"""Request and response models of the lease API and the admin status."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from nemo_server.common.gpu_state import Priority


class AcquireRequest(BaseModel):
    """Ask for a lease; waits up to `wait_s` for the grant (long poll)."""

    holder: str = Field(
        min_length=1, max_length=200, description="Who holds it, e.g. `llm:smollm2`."
    )
    priority: Priority = Field(description="foreground > interactive > background.")
    vram_mb: int = Field(ge=1, description="VRAM the work needs, in MB.")
    ttl_s: float = Field(default=30.0, ge=1, le=3600, description="Heartbeat deadline, seconds.")
    wait_s: float = Field(default=0.0, ge=0, le=120, description="Long-poll for the grant.")


class TokenRequest(BaseModel):
    """A fencing token, presented by the holder."""

    token: int = Field(description="The fencing token of the grant.")


class HeartbeatRequest(TokenRequest):
    """Extend the lease; with `wait_s`, hold the answer until pre-emption is requested."""

    wait_s: float = Field(default=0.0, ge=0, le=120, description="Long-poll for pre-emption.")


class LeaseView(BaseModel):
    """A lease request as the coordinator sees it."""

    id: str
    state: str = Field(
        description="waiting, granted, or how it ended: released, cancelled, expired, "
        "preempt_timeout, abandoned."
    )
    token: int = Field(description="Fencing token (0 while waiting).")
    holder: str
    vram_mb: int
    priority: str | None = None
    ttl_s: float | None = None
    preempt_requested: bool = False
    preempt_deadline: float | None = None
    requested_at: float | None = None
    granted_at: float | None = None
    expires_at: float | None = None
    now: float | None = Field(default=None, description="The coordinator's clock.")
    since: float | None = Field(
        default=None,
        description="The coordinator's clock when it began answering this request: a lease "
        "granted in the answer surely lives `expires_at - since` past the request's sending.",
    )


class GpuStatus(BaseModel):
    """Leases, queue, budget and per-holder figures."""

    backend: str
    budget_source: str
    budget_mb: int
    used_mb: int
    free_mb: int
    grants_blocked_until: float | None = None
    leases: list[LeaseView]
    queue: list[LeaseView]
    holders: dict[str, dict[str, Any]]
    totals: dict[str, int]
    device: dict[str, Any] | None = None
