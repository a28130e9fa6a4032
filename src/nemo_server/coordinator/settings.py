"""Settings of the GPU coordinator (env prefix `NEMO_COORDINATOR_`)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from nemo_server.common.settings import ServiceSettings


class CoordinatorSettings(ServiceSettings):
    """Everything the coordinator reads at start; `NEMO_REDIS_URL` selects the Redis backend."""

    model_config = SettingsConfigDict(env_prefix="NEMO_COORDINATOR_", extra="ignore")

    budget_source: Literal["auto", "nvml", "config"] = Field(
        default="auto",
        description="Where the VRAM budget comes from: `auto` (NVML when an NVIDIA GPU is "
        "present, else `vram_budget_mb`), `nvml` (fail without a GPU) or `config`.",
    )
    vram_budget_mb: int = Field(
        default=8192,
        ge=1,
        description="VRAM budget in MB when no GPU is found (or `budget_source=config`); "
        "priorities and pre-emption order work on a CPU-only machine too.",
    )
    gpu_index: int = Field(default=0, ge=0, description="NVML index of the GPU to budget.")
    reserve_mb: int = Field(
        default=512,
        ge=0,
        description="VRAM kept out of the budget on a real GPU (driver, display, fragmentation).",
    )
    grace_s: float = Field(
        default=10.0,
        gt=0,
        description="How long a holder asked to yield may take to release before it is revoked.",
    )
    ageing_s: float = Field(
        default=60.0,
        ge=0,
        description="A waiting request moves up one priority class per this many seconds "
        "waited (0 disables ageing).",
    )
    linger_s: float = Field(
        default=0.5,
        ge=0,
        description="After a foreground/interactive holder releases, its VRAM is held back from "
        "lower-priority requests this long, so back-to-back foreground work does not wait for a "
        "background holder to be pre-empted each time (0: off).",
    )
    max_ttl_s: float = Field(
        default=60.0,
        ge=1,
        description="Largest lease TTL granted; after Redis lost its state no grant is made "
        "for this long plus 2 s, since leases granted before may still be in use.",
    )
    max_wait_s: float = Field(
        default=30.0, ge=0, le=120, description="Longest single long-poll a request may ask for."
    )
    tick_s: float = Field(
        default=0.25,
        gt=0,
        description="Period of the reaper that revokes expired leases and grants waiting ones.",
    )
    redis_key: str = Field(
        default="nemo:gpu:state", description="Redis key of the shared lease state (a hash)."
    )
    redis_poll_s: float = Field(
        default=0.25,
        gt=0,
        description="How often a long poll re-reads state on Redis besides pub/sub wake-ups.",
    )
    state_dir: Path | None = Field(
        default=None,
        description="Memory backend: where the 'leases may live until' marker is kept across "
        "restarts (default `<data dir>/coordinator`).",
    )
