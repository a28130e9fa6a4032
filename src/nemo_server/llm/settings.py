"""Settings of the LLM service (env prefix `NEMO_LLM_`)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from nemo_server.common.settings import ServiceSettings


class LlmSettings(ServiceSettings):
    """Everything the LLM service reads from its environment."""

    model_config = SettingsConfigDict(env_prefix="NEMO_LLM_", extra="ignore")

    engine: str = Field(
        default="llama_cpp",
        description="Engine backend from the registry (`llama_cpp`; `fake` for tests).",
    )
    default_model: str = Field(
        default="smollm2",
        description="Model used when a request names none or names `default`.",
    )
    models_dir: Path | None = Field(
        default=None,
        description="A directory of `.gguf` files; each is offered under its file name without `.gguf`.",
    )
    model_paths: dict[str, Path] = Field(
        default_factory=dict,
        description='Extra models by name, JSON (`{"gemma3-4b": "/models/gemma-3-4b-it-Q4_K_M.gguf"}`).',
    )
    device: Literal["auto", "gpu", "cpu"] = Field(
        default="auto",
        description="`auto`: every layer on the GPU when llama.cpp has a GPU backend, else the CPU.",
    )
    cpu_repack: Literal["q4_0", "none"] = Field(
        default="q4_0",
        description="On the CPU, serve the bundled SmolLM2 from a copy re-quantized to this "
        "4-bit type, written once into `<data dir>/models/cpu-repack/` (Q4_0 decodes concurrent "
        "requests in one batch far cheaper than the bundled Q4_1, at a measured quality cost; "
        "see docs/llm.md). `none` serves the bundled file. Never used on a GPU.",
    )
    parallel_slots: int = Field(
        default=4,
        ge=1,
        le=64,
        description="Requests decoded together (continuous batching); more wait in a priority queue.",
    )
    background_slots: int = Field(
        default=3,
        ge=1,
        le=64,
        description="At most this many slots serve background requests; the rest stay free for users.",
    )
    context_per_slot: int = Field(
        default=2048,
        ge=128,
        le=131072,
        description="Context (prompt + completion tokens) of one request; capped at the model's own.",
    )
    batch_tokens: int = Field(
        default=512,
        ge=32,
        le=8192,
        description="Tokens per llama_decode call; long prompts are fed in chunks of this size.",
    )
    prefill_chunk_tokens: int = Field(
        default=128,
        ge=1,
        le=8192,
        description="Prompt tokens a new request may add to a step while others stream (the "
        "rest follows in later steps), so a long prompt does not stall their next token.",
    )
    threads: int | None = Field(
        default=None,
        ge=1,
        description="CPU threads for llama.cpp; unset means half the cores (spin-waiting threads "
        "on a busy shared CPU are far slower than fewer threads).",
    )
    keep_alive_s: float = Field(
        default=300.0,
        ge=0,
        description="A model idle this long is unloaded (and its GPU lease released); 0 keeps it.",
    )
    max_loaded_models: int = Field(
        default=2,
        ge=1,
        description="Loading one more unloads the least recently used idle model first.",
    )
    default_temperature: float = Field(
        default=0.7, ge=0, le=2, description="Temperature when a request gives none."
    )
    default_max_tokens: int = Field(
        default=512,
        ge=1,
        description="Completion tokens when a request gives no max_tokens (bounded by the context).",
    )
    lease_wait_s: float = Field(
        default=60.0, gt=0, description="How long to wait for the coordinator's GPU lease."
    )
    lease_ttl_s: float = Field(
        default=30.0, gt=0, description="TTL of the GPU lease (heartbeats keep it alive)."
    )
