"""What every LLM engine offers: a loaded model that generates for many requests at once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import Any, Protocol


class RequestPriority(IntEnum):
    """Lower value is served first: a user's chat goes before other services' background work."""

    INTERACTIVE = 0
    BACKGROUND = 1


@dataclass(frozen=True)
class ModelSpec:
    """A model the service can load: its public name and its GGUF file."""

    name: str
    path: Path
    source: str = "file"  # "bundled", "models_dir" or "file"
    description: str = ""
    # On the CPU, may be served from a re-quantized copy (settings.cpu_repack): only bundled
    # models whose copy was measured (docs/llm.md), never a user's own file.
    cpu_repack: bool = False


@dataclass(frozen=True)
class EngineOptions:
    """How to load a model (from the service settings)."""

    n_slots: int = 4
    ctx_per_slot: int = 2048
    n_batch: int = 512
    n_threads: int | None = None
    gpu: bool = False
    background_slots: int = 3
    prefill_chunk: int = 128
    cpu_repack: str = "none"  # on the CPU, load a bundled model's copy of this type ("q4_0")
    repack_dir: Path | None = None  # where such copies are written (the data dir's models/)


@dataclass(frozen=True)
class SamplingParams:
    """How the next token is chosen."""

    temperature: float = 0.7
    top_p: float = 1.0
    seed: int | None = None
    grammar: str | None = None  # GBNF text; the output is forced to match it


@dataclass
class GenerationRequest:
    """One generation: already-tokenized prompt and its limits."""

    prompt_tokens: list[int]
    max_tokens: int
    stop: list[str] = field(default_factory=list)
    sampling: SamplingParams = field(default_factory=SamplingParams)
    priority: RequestPriority = RequestPriority.INTERACTIVE


@dataclass(frozen=True)
class GenerationChunk:
    """A piece of generated text; the last chunk of a generation carries `finish_reason`."""

    text: str
    completion_tokens: int
    finish_reason: str | None = None  # "stop" or "length" on the last chunk


class GrammarError(ValueError):
    """A JSON schema (or grammar) that cannot be enforced."""


class LoadedModel(Protocol):
    """A model in memory, decoding any number of requests concurrently.

    `generate()` is an async iterator; closing it early (client gone) frees its slot at once.
    """

    name: str
    n_ctx: int  # tokens one request may use (prompt + completion)
    n_slots: int  # requests decoded together; more wait in a priority queue
    device: str  # "gpu" or "cpu"
    vram_mb: int  # what the model needs on the GPU (0 on the CPU)

    def tokenize(self, text: str, *, add_special: bool = True) -> list[int]:
        """Tokens of a prompt (special tokens in the text are parsed as such)."""
        ...

    def render_chat(self, messages: list[dict[str, Any]]) -> str:
        """The prompt for a chat, from the model's own chat template."""
        ...

    def compile_json_schema(self, schema: dict[str, Any]) -> str:
        """A GBNF grammar forcing output valid for `schema`; GrammarError if it cannot."""
        ...

    def generate(self, request: GenerationRequest) -> AsyncIterator[GenerationChunk]:
        """Stream the completion of `request`."""
        ...

    def stats(self) -> dict[str, int]:
        """Requests decoding (`active`) and waiting (`queued`)."""
        ...

    def close(self) -> None:
        """Free the model and its context."""
        ...
