"""Embedding engines: a Protocol, a registry of builders, one module per backend."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np

from nemo_server.rag.settings import RagSettings


class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors (cosine = inner product)."""

    name: str
    dim: int
    device: str
    query_backend: str  # what embeds queries: "onnx", "torch" (or a fake's name)

    def encode(self, texts: list[str]) -> np.ndarray:
        """Vectors of shape (len(texts), dim), float32, unit length."""
        ...

    def count_tokens(self, texts: list[str]) -> int:
        """Tokens the model reads for these texts (for usage reporting)."""
        ...


def _minilm(settings: RagSettings) -> Embedder:
    from nemo_server.rag.engines.minilm import MiniLMEmbedder

    return MiniLMEmbedder(
        settings.embedding_model_path,
        device=settings.device,
        batch_size=settings.embedding_batch_size,
        name=settings.embedding_model_name,
        query_threads=settings.query_threads,
        batch_threads=settings.batch_threads,
        onnx_cache_dir=(
            settings.common.data_dir / "rag" / "onnx" if settings.query_engine == "onnx" else None
        ),
    )


def _hash(settings: RagSettings) -> Embedder:
    from nemo_server.rag.engines.fake import HashEmbedder

    return HashEmbedder()


EMBEDDERS: dict[str, Callable[[RagSettings], Embedder]] = {"minilm": _minilm, "hash": _hash}


def build_embedder(settings: RagSettings) -> Embedder:
    """The embedder named by `settings.embedding_engine`."""
    try:
        builder = EMBEDDERS[settings.embedding_engine]
    except KeyError:
        raise ValueError(
            f"unknown embedding engine {settings.embedding_engine!r}; one of {', '.join(EMBEDDERS)}"
        ) from None
    return builder(settings)
