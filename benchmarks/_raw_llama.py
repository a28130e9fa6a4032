"""The raw llama-cpp-python baseline, loaded the way the service loads its models."""

from __future__ import annotations

from typing import Any


def raw_llama(**kwargs: Any) -> Any:
    """`llama_cpp.Llama(**kwargs)`, with llama.cpp's extra weight buffers off where the service
    turns them off (a CPU with AMX: see `extra_buffers_safe`), so both run the same kernels.

    `Llama` has no argument for it, so its default model parameters are swapped for the load.
    """
    import llama_cpp
    import llama_cpp.llama_cpp as lib

    from nemo_server.llm.engines.llama_cpp import extra_buffers_safe

    if extra_buffers_safe():
        return llama_cpp.Llama(**kwargs)
    default = lib.llama_model_default_params

    def plain() -> Any:
        params = default()
        params.use_extra_bufts = False
        return params

    lib.llama_model_default_params = plain
    try:
        return llama_cpp.Llama(**kwargs)
    finally:
        lib.llama_model_default_params = default
