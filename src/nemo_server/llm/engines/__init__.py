"""LLM engines: a registry of builders; heavy libraries load only inside the builders."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from nemo_server.llm.engines.base import EngineOptions, LoadedModel, ModelSpec

EngineBuilder = Callable[[ModelSpec, EngineOptions], LoadedModel]


def _llama_cpp(spec: ModelSpec, options: EngineOptions) -> LoadedModel:
    from nemo_server.llm.engines import llama_cpp

    return llama_cpp.build(spec, options)


def _fake(spec: ModelSpec, options: EngineOptions) -> LoadedModel:
    from nemo_server.llm.engines import fake

    return fake.build(spec, options)


def _gpu_available() -> bool:
    try:
        from nemo_server.llm.engines.llama_cpp import gpu_available

        return gpu_available()
    except ImportError:  # llama-cpp-python is not installed: nothing can go on a GPU
        return False


def _vram_estimate(spec: ModelSpec, options: EngineOptions) -> int:
    from nemo_server.llm.engines.llama_cpp import estimate_vram_for

    return estimate_vram_for(spec, options)


@dataclass(frozen=True)
class EngineBackend:
    """One backend: how to load a model, whether it can use a GPU, what VRAM a model needs."""

    build: EngineBuilder
    gpu_available: Callable[[], bool]
    vram_mb: Callable[[ModelSpec, EngineOptions], int]


ENGINES: dict[str, EngineBackend] = {
    "llama_cpp": EngineBackend(_llama_cpp, _gpu_available, _vram_estimate),
    "fake": EngineBackend(_fake, lambda: False, lambda spec, options: 0),
}
