"""How stored documents and chunks are shown: API models and citations."""

from __future__ import annotations

import json
from typing import Any

from nemo_server.rag import answering
from nemo_server.rag.models import Chunk, Document
from nemo_server.rag.schemas import DocumentOut


def citation(chunk: Chunk, doc: Document | DocumentOut) -> dict[str, Any]:
    """Where a chunk comes from: title, heading, pages, or time range and speakers."""
    c: dict[str, Any] = {
        "document_id": doc.id,
        "chunk_id": chunk.id,
        "title": doc.title,
        "heading": chunk.heading,
        "page_start": chunk.page_start,
        "page_end": chunk.page_end,
        "start": chunk.start_s,
        "end": chunk.end_s,
        "speakers": json.loads(chunk.speakers) if chunk.speakers else None,
    }
    c = {k: v for k, v in c.items() if v is not None}
    c["label"] = answering.citation_label(c)
    return c


def document_out(doc: Document, deduplicated: bool = False) -> DocumentOut:
    return DocumentOut(
        id=doc.id,
        title=doc.title,
        collection=doc.collection,
        source=doc.source,
        kind=doc.kind,
        filename=doc.filename,
        metadata=json.loads(doc.metadata_json),
        date=doc.doc_date,
        created_at=doc.created_at,
        chunk_count=doc.chunk_count,
        char_count=doc.char_count,
        deduplicated=deduplicated,
    )
