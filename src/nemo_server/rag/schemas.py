"""Request and response models of the RAG service (OpenAI-compatible for embeddings)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Collection = Field(
    default="default",
    min_length=1,
    max_length=100,
    pattern=r"^[\w.\- ]+$",
    description="Collection (namespace) inside the user's memory.",
)


class TranscriptSegment(BaseModel):
    """One transcript segment, as the transcription service returns it."""

    model_config = ConfigDict(extra="ignore")
    start: float | None = Field(default=None, ge=0)
    end: float | None = Field(default=None, ge=0)
    text: str = Field(max_length=100_000)
    speaker: str | None = Field(default=None, max_length=200)


class DocumentIn(BaseModel):
    """JSON ingest: `text` (plain/Markdown/HTML by `format`) or transcript `segments`."""

    model_config = ConfigDict(extra="forbid")
    text: str | None = Field(default=None, description="The document's text.")
    segments: list[TranscriptSegment] | None = Field(
        default=None, max_length=200_000, description="Transcript segments with speakers and times."
    )
    format: Literal["text", "markdown", "html"] = Field(
        default="text", description="How `text` is written."
    )
    title: str | None = Field(default=None, max_length=500)
    collection: str = Collection
    source: str | None = Field(
        default=None, max_length=200, description="Where it came from (free label)."
    )
    date: datetime | None = Field(
        default=None, description="When the content happened (filters by date)."
    )
    metadata: dict[str, Any] = Field(default_factory=dict, description="Returned exactly as given.")


class DocumentBatchIn(BaseModel):
    """Several JSON documents ingested with one encoder pass."""

    model_config = ConfigDict(extra="forbid")
    documents: list[DocumentIn] = Field(min_length=1, max_length=1000)


class DocumentOut(BaseModel):
    id: str
    object: Literal["rag.document"] = "rag.document"
    title: str
    collection: str
    source: str
    kind: str
    filename: str | None
    metadata: dict[str, Any]
    date: datetime | None
    created_at: datetime
    chunk_count: int
    char_count: int
    deduplicated: bool = False


class ChunkOut(BaseModel):
    id: int
    ordinal: int
    text: str
    citation: dict[str, Any]


class DocumentDetail(DocumentOut):
    chunks: list[ChunkOut] | None = None


class DocumentList(BaseModel):
    object: Literal["list"] = "list"
    data: list[DocumentOut]
    total: int
    limit: int
    offset: int


class SearchFilters(BaseModel):
    model_config = ConfigDict(extra="forbid")
    collection: str | None = Field(default=None, max_length=100)
    source: str | None = Field(default=None, max_length=200)
    speaker: str | None = Field(default=None, max_length=200)
    document_id: str | None = Field(default=None, max_length=32)
    date_from: datetime | None = None
    date_to: datetime | None = None


class SearchRequest(BaseModel):
    """`POST /v1/rag/search`."""

    model_config = ConfigDict(extra="forbid")
    query: str = Field(min_length=1, max_length=10_000)
    k: int = Field(default=10, ge=1, le=200)
    mode: Literal["hybrid", "dense", "lexical"] = Field(default="hybrid")
    filters: SearchFilters = Field(default_factory=SearchFilters)
    # Top-level shortcuts for the same filters.
    collection: str | None = Field(default=None, max_length=100)
    source: str | None = Field(default=None, max_length=200)
    speaker: str | None = Field(default=None, max_length=200)
    date_from: datetime | None = None
    date_to: datetime | None = None


class SearchHit(BaseModel):
    document_id: str
    chunk_id: int
    text: str
    score: float
    scores: dict[str, float]
    title: str
    collection: str
    source: str
    metadata: dict[str, Any]
    citation: dict[str, Any]


class SearchResponse(BaseModel):
    object: Literal["list"] = "list"
    results: list[SearchHit]
    mode: str


class AnswerRequest(SearchRequest):
    """`POST /v1/rag/answer`: search, then the LLM answers from the hits with citations."""

    k: int | None = Field(  # type: ignore[assignment]
        default=None,
        ge=1,
        le=20,
        description="Chunks given to the LLM (default NEMO_RAG_ANSWER_TOP_K).",
    )
    stream: bool = Field(default=True, description="Server-sent events (default) or one JSON body.")
    model: str | None = Field(default=None, max_length=200)
    max_tokens: int | None = Field(default=None, ge=16, le=4096)


class EmbeddingRequest(BaseModel):
    """OpenAI `POST /v1/embeddings`."""

    model_config = ConfigDict(extra="ignore")
    input: str | list[str] | list[int] | list[list[int]]
    model: str | None = None
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(default=None, ge=1)
    user: str | None = None


class CollectionOut(BaseModel):
    name: str
    documents: int
    chunks: int
