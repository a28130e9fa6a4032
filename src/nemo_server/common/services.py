"""The table of services: name, seed port, and where its app factory lives.

Module paths are strings so `common` never imports a service; `nemo serve` and `nemo up`
resolve them lazily.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass


@dataclass(frozen=True)
class ServiceSpec:
    """One service of the platform."""

    name: str
    port: int
    description: str

    @property
    def package(self) -> str:
        return f"nemo_server.{self.name}"

    @property
    def factory(self) -> str:
        """`module:callable` for uvicorn's `--factory` mode."""
        return f"{self.package}.app:create_app"

    def exists(self) -> bool:
        """True when this checkout ships the service (its app module is importable)."""
        if importlib.util.find_spec(self.package) is None:
            return False
        return importlib.util.find_spec(f"{self.package}.app") is not None


SERVICES: dict[str, ServiceSpec] = {
    spec.name: spec
    for spec in (
        ServiceSpec("gateway", 8000, "the public door: auth, rate limits, routing"),
        ServiceSpec("llm", 8001, "GGUF models through llama.cpp, OpenAI-compatible"),
        ServiceSpec("coordinator", 8002, "GPU leases with priorities and pre-emption"),
        ServiceSpec("transcription", 8003, "ASR, diarization, durable jobs, live streams"),
        ServiceSpec("rag", 8004, "long-term memory: ingest, hybrid search, answers"),
        ServiceSpec("emotion", 8005, "emotion and sentiment of text and speech"),
        ServiceSpec("ml", 8006, "System 2: AutoML, symbolic regression, causal inference"),
        ServiceSpec("insights", 8010, "analytics over a user's memory"),
    )
}


def existing_services() -> list[ServiceSpec]:
    """Services present in this installation, in start order (gateway last)."""
    present = [s for s in SERVICES.values() if s.exists()]
    return sorted(present, key=lambda s: (s.name == "gateway", s.port))
