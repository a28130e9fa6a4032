"""The VRAM budget: NVML (nvidia-ml-py, imported lazily) when a GPU is present, else configured."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from nemo_server.common.errors import ServiceUnavailable
from nemo_server.coordinator.settings import CoordinatorSettings

log = logging.getLogger("nemo.coordinator.budget")


@dataclass(frozen=True)
class Budget:
    """The budget in MB and where it came from."""

    mb: int
    source: str
    device: dict[str, Any] = field(default_factory=dict)


def probe_nvml(index: int) -> dict[str, Any]:
    """Name and memory (MB) of one NVIDIA GPU; raises if NVML or the GPU is missing."""
    import pynvml  # nvidia-ml-py; lazily, it is an optional extra

    pynvml.nvmlInit()
    try:
        handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
        name = pynvml.nvmlDeviceGetName(handle)
        return {
            "index": index,
            "name": name.decode() if isinstance(name, bytes) else str(name),
            "total_mb": int(memory.total) // (1 << 20),
            "used_mb": int(memory.used) // (1 << 20),
        }
    finally:
        pynvml.nvmlShutdown()


def resolve_budget(settings: CoordinatorSettings) -> Budget:
    """The budget the coordinator enforces, per `settings.budget_source`."""
    if settings.budget_source == "config":
        return Budget(settings.vram_budget_mb, "config")
    try:
        device = probe_nvml(settings.gpu_index)
    except Exception as exc:  # ImportError, NVMLError_LibraryNotFound, no such device...
        if settings.budget_source == "nvml":
            raise ServiceUnavailable(f"NVML budget requested but unavailable: {exc}") from None
        log.info("no NVIDIA GPU found (%s); configured budget %d MB", exc, settings.vram_budget_mb)
        return Budget(settings.vram_budget_mb, "config")
    mb = max(1, device["total_mb"] - settings.reserve_mb)
    log.info("GPU %s: %d MB total, budget %d MB", device["name"], device["total_mb"], mb)
    return Budget(mb, "nvml", device)
