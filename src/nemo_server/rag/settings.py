"""Settings of the RAG memory service (env prefix `NEMO_RAG_`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from nemo_server.common.settings import ServiceSettings


class RagSettings(ServiceSettings):
    """Every setting of the RAG service; validated once when the app is built."""

    model_config = SettingsConfigDict(env_prefix="NEMO_RAG_", extra="ignore")

    max_body_bytes: int = Field(
        default=32 << 20, ge=1024, description="Largest upload or request body (413 beyond it)."
    )
    embedding_engine: str = Field(
        default="minilm",
        description="Embedding backend: `minilm` (bundled all-MiniLM-L6-v2) or `hash` (test fake).",
    )
    embedding_model_path: str | None = Field(
        default=None,
        description="A local sentence-transformers model directory instead of the bundled MiniLM.",
    )
    embedding_model_name: str = Field(
        default="all-MiniLM-L6-v2", description="Model name reported by `/v1/embeddings`."
    )
    device: str = Field(
        default="auto", description="`auto` (CUDA when present, else CPU), `cpu` or `cuda[:N]`."
    )
    query_threads: int = Field(
        default=1,
        ge=1,
        le=64,
        description="CPU threads encoding a query (up to 8 texts: its sentences).",
    )
    query_engine: Literal["onnx", "torch"] = Field(
        default="onnx",
        description="Runtime for query embeddings on the CPU: `onnx` (ONNX Runtime, exported once "
        "from the local model into the data dir; half the latency, same vectors) or `torch`.",
    )
    batch_threads: int | None = Field(
        default=None, ge=1, le=256, description="CPU threads encoding batches (None: every core)."
    )
    embedding_batch_size: int = Field(default=64, ge=1, le=1024, description="Encoder batch size.")
    max_embedding_inputs: int = Field(
        default=2048, ge=1, description="Most inputs one `/v1/embeddings` call may carry."
    )
    chunk_words: int = Field(
        default=180,
        ge=20,
        le=2000,
        description="Target chunk size in words (MiniLM reads ~256 tokens).",
    )
    chunk_overlap_words: int = Field(
        default=30, ge=0, le=500, description="Words repeated between consecutive split chunks."
    )
    transcript_chunk_seconds: float = Field(
        default=90.0, gt=0, description="Longest time span one transcript chunk covers."
    )
    exact_index_max: int = Field(
        default=20_000,
        ge=1,
        description="Up to this many vectors per user the dense index is exact (flat); beyond, HNSW.",
    )
    hnsw_m: int = Field(default=32, ge=4, le=128, description="HNSW graph degree.")
    hnsw_ef_construction: int = Field(default=80, ge=8, description="HNSW build breadth.")
    hnsw_ef_search: int = Field(
        default=64, ge=8, description="HNSW search breadth (raised until recall holds)."
    )
    min_recall: float = Field(
        default=0.95, gt=0, le=1, description="Recall@10 vs exact the approximate index must reach."
    )
    fusion: Literal["rrf", "zscore"] = Field(
        default="zscore",
        description="Hybrid fusion: z-score normalised sum (`zscore`, best on CISI) or reciprocal rank (`rrf`).",
    )
    rrf_k: int = Field(default=60, ge=1, description="RRF constant k.")
    candidates: int = Field(
        default=100, ge=10, le=2000, description="Hits taken from each retriever before fusion."
    )
    bm25_k1: float = Field(default=1.2, gt=0, description="BM25 term-frequency saturation.")
    bm25_b: float = Field(default=0.75, ge=0, le=1, description="BM25 length normalisation.")
    search_cache_size: int = Field(
        default=512,
        ge=0,
        description="Cached search results (per process; cleared per user on change).",
    )
    parse_timeout_s: float = Field(
        default=20.0, gt=0, description="Wall-clock limit of the PDF/DOCX parser process."
    )
    parse_memory_mb: int = Field(
        default=1024, ge=128, description="Address-space limit of the PDF/DOCX parser process."
    )
    max_extracted_chars: int = Field(
        default=5_000_000, ge=1000, description="Most text one document may yield (bomb guard)."
    )
    persist_interval_s: float = Field(
        default=30.0, gt=0, description="How often changed indexes are written to the data dir."
    )
    answer_top_k: int = Field(default=6, ge=1, le=50, description="Chunks given to the LLM.")
    answer_model: str | None = Field(
        default=None, description="Model asked for answers (None: the LLM service's default)."
    )
    answer_max_tokens: int = Field(default=512, ge=16, description="Longest answer in tokens.")
    answer_context_chars: int = Field(
        default=6000, ge=500, description="Most source text put into one answer prompt."
    )
