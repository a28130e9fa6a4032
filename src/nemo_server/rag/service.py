"""The RAG use cases: ingest, documents, search, embeddings and answers. No FastAPI here."""

from __future__ import annotations

import base64
import json
import logging
import threading
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from anyio import to_thread

from nemo_server.common.auth import Principal
from nemo_server.common.errors import (
    BadRequest,
    NemoError,
    NotFound,
    ServiceUnavailable,
    Unprocessable,
)
from nemo_server.rag import answering
from nemo_server.rag.cache import SearchCache
from nemo_server.rag.chunking import ChunkDraft, chunk_document, chunk_transcript
from nemo_server.rag.engines import Embedder
from nemo_server.rag.ingest import Parsed
from nemo_server.rag.llm_client import LlmClient
from nemo_server.rag.memory import Filters, MemoryIndexes
from nemo_server.rag.models import Chunk, Document
from nemo_server.rag.presenters import citation, document_out
from nemo_server.rag.query_embedding import embed_query
from nemo_server.rag.schemas import DocumentOut, SearchHit, SearchRequest
from nemo_server.rag.settings import RagSettings
from nemo_server.rag.store import IndexRow, NewDocument, RagStore, date_ts, embed_text

log = logging.getLogger("nemo.rag")


@dataclass
class IngestOptions:
    """What the caller says about a document besides its content."""

    title: str | None
    collection: str
    source: str | None
    date: datetime | None
    metadata: dict[str, Any]
    filename: str | None = None


@dataclass
class _Prepared:
    new: NewDocument
    drafts: list[ChunkDraft]


class RagService:
    """Memory of every user; each call acts for one principal and touches only their data."""

    def __init__(
        self,
        settings: RagSettings,
        store: RagStore,
        embedder: Embedder,
        indexes: MemoryIndexes,
        llm: LlmClient | None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.embedder = embedder
        self.indexes = indexes
        self.llm = llm
        self.cache = SearchCache(settings.search_cache_size)
        self._query_vectors: OrderedDict[str, Any] = OrderedDict()
        self._query_lock = threading.Lock()

    # ---- ingest -------------------------------------------------------------------------
    async def ingest(
        self, principal: Principal, parsed: Parsed, opts: IngestOptions
    ) -> DocumentOut:
        """Chunk, embed and store a parsed document; an identical one is returned instead."""
        return await to_thread.run_sync(self._ingest, principal.user_id, parsed, opts)

    async def ingest_many(
        self, principal: Principal, items: list[tuple[Parsed, IngestOptions]]
    ) -> list[DocumentOut]:
        """Ingest several documents with one encoder pass (as fast as raw batch encoding)."""
        return await to_thread.run_sync(self._ingest_many, principal.user_id, items)

    def _ingest(self, user_id: str, parsed: Parsed, opts: IngestOptions) -> DocumentOut:
        return self._ingest_many(user_id, [(parsed, opts)])[0]

    def _ingest_many(
        self, user_id: str, items: list[tuple[Parsed, IngestOptions]]
    ) -> list[DocumentOut]:
        prepared = [self._prepare(user_id, parsed, opts) for parsed, opts in items]
        texts = [d.embed_text for p in prepared if isinstance(p, _Prepared) for d in p.drafts]
        vectors = self.embedder.encode(texts)
        fresh: list[tuple[_Prepared, Any]] = []
        offset = 0
        for p in prepared:
            if isinstance(p, _Prepared):
                fresh.append((p, vectors[offset : offset + len(p.drafts)]))
                offset += len(p.drafts)
        stored = self._store_many(user_id, fresh) if len(fresh) > 1 else None
        if stored is None:  # one document, or a batch that raced a duplicate: one at a time
            stored = [self._store(user_id, p, v) for p, v in fresh]
        done = iter(stored)
        return [p if isinstance(p, DocumentOut) else next(done) for p in prepared]

    def _prepare(
        self, user_id: str, parsed: Parsed, opts: IngestOptions
    ) -> _Prepared | DocumentOut:
        s = self.settings
        param = "segments" if parsed.is_transcript else ("file" if opts.filename else "text")
        if not any(b.text.strip() for b in parsed.blocks):
            raise Unprocessable("the document is empty: no text could be extracted", param=param)
        content_hash = parsed.content_hash()
        existing = self.store.find_duplicate(user_id, opts.collection, content_hash)
        if existing is not None:
            return document_out(existing, deduplicated=True)
        if parsed.is_transcript:
            drafts = chunk_transcript(parsed.blocks, s.chunk_words, s.transcript_chunk_seconds)
        else:
            drafts = chunk_document(parsed.blocks, s.chunk_words, s.chunk_overlap_words)
        if not drafts:
            raise Unprocessable("the document is empty: no text could be extracted", param=param)
        title = opts.title or parsed.title or opts.filename or _first_words(parsed.blocks[0].text)
        default_source = (
            "transcript" if parsed.is_transcript else "upload" if opts.filename else "text"
        )
        new = NewDocument(
            user_id=user_id,
            collection=opts.collection,
            title=title[:500],
            source=opts.source or default_source,
            kind=parsed.kind,
            filename=opts.filename,
            content_hash=content_hash,
            metadata=opts.metadata,
            doc_date=opts.date,
            char_count=sum(len(b.text) for b in parsed.blocks),
        )
        return _Prepared(new, drafts)

    def _store(self, user_id: str, p: _Prepared, vectors: Any) -> DocumentOut:
        doc, chunks, generation = self.store.insert(p.new, p.drafts, vectors)
        if generation is None:
            return document_out(doc, deduplicated=True)
        self.indexes.apply(user_id, generation, add=_index_rows(doc, chunks, p.drafts, vectors))
        self.cache.drop_user(user_id)
        return document_out(doc)

    def _store_many(
        self, user_id: str, items: list[tuple[_Prepared, Any]]
    ) -> list[DocumentOut] | None:
        """One transaction and one index update for a batch (None: it raced a duplicate)."""
        result = self.store.insert_many(user_id, [(p.new, p.drafts, v) for p, v in items])
        if result is None:
            return None
        rows, generation = result
        index_rows = [
            row
            for (doc, chunks), (p, vectors) in zip(rows, items, strict=True)
            for row in _index_rows(doc, chunks, p.drafts, vectors)
        ]
        self.indexes.apply(user_id, generation, add=index_rows)
        self.cache.drop_user(user_id)
        return [document_out(doc) for doc, _ in rows]

    # ---- documents ----------------------------------------------------------------------
    async def list_documents(
        self, principal: Principal, collection: str | None, limit: int, offset: int
    ) -> tuple[list[DocumentOut], int]:
        docs, total = await to_thread.run_sync(
            self.store.list_documents, principal.user_id, collection, limit, offset
        )
        return [document_out(d) for d in docs], total

    async def get_document(
        self, principal: Principal, document_id: str
    ) -> tuple[DocumentOut, list[Chunk]]:
        doc = await to_thread.run_sync(self.store.get_document, principal.user_id, document_id)
        if doc is None:
            raise NotFound(f"no document {document_id!r}", param="document_id")
        chunks = await to_thread.run_sync(
            self.store.document_chunks, principal.user_id, document_id
        )
        return document_out(doc), chunks

    async def delete_document(self, principal: Principal, document_id: str) -> None:
        removed = await to_thread.run_sync(
            self.store.delete_document, principal.user_id, document_id
        )
        if removed is None:
            raise NotFound(f"no document {document_id!r}", param="document_id")
        ids, generation = removed
        await to_thread.run_sync(
            lambda: self.indexes.apply(principal.user_id, generation, remove=ids)
        )
        self.cache.drop_user(principal.user_id)

    async def collections(self, principal: Principal) -> list[tuple[str, int, int]]:
        return await to_thread.run_sync(self.store.collections, principal.user_id)

    async def stats(self, principal: Principal) -> dict[str, Any]:
        memory = await to_thread.run_sync(self.indexes.get, principal.user_id)
        return {
            **memory.stats(),
            "embedding_model": self.embedder.name,
            "device": self.embedder.device,
            "query_engine": self.embedder.query_backend,
            "fusion": self.settings.fusion,
        }

    async def rebuild_index(self, principal: Principal) -> dict[str, Any]:
        """Rebuild the caller's index from the database (vectors are stored, nothing re-encoded)."""
        memory = await to_thread.run_sync(self.indexes.rebuild, principal.user_id)
        self.cache.drop_user(principal.user_id)
        return memory.stats()

    # ---- search -------------------------------------------------------------------------
    async def search(self, principal: Principal, req: SearchRequest) -> list[SearchHit]:
        """Hits for the request; any failure of retrieval itself is a 503."""
        try:
            return await to_thread.run_sync(self._search, principal.user_id, req)
        except NemoError:
            raise
        except Exception as exc:
            log.exception("retrieval failed")
            raise ServiceUnavailable(f"retrieval failed: {type(exc).__name__}: {exc}") from None

    def _search(self, user_id: str, req: SearchRequest) -> list[SearchHit]:
        f = req.filters
        filters = Filters(
            collection=req.collection or f.collection,
            source=req.source or f.source,
            speaker=req.speaker or f.speaker,
            document_id=f.document_id,
            date_from=_ts(req.date_from or f.date_from),
            date_to=_ts(req.date_to or f.date_to),
        )
        memory = self.indexes.get(user_id)
        key = (
            user_id,
            memory.generation,
            req.model_dump_json(
                include={
                    "query",
                    "k",
                    "mode",
                    "filters",
                    "collection",
                    "source",
                    "speaker",
                    "date_from",
                    "date_to",
                }
            ),
        )
        cached = self.cache.get(key)
        if cached is not None:
            return cached
        vector = self._query_vector(req.query) if req.mode != "lexical" else None
        hits = memory.search(vector, req.query, req.k, req.mode, filters)
        rows = self.store.chunks_with_documents(user_id, [h.chunk_id for h in hits])
        results = []
        for h in hits:
            if h.chunk_id not in rows:
                continue  # deleted meanwhile
            chunk, doc = rows[h.chunk_id]
            results.append(
                SearchHit(
                    document_id=doc.id,
                    chunk_id=chunk.id,
                    text=chunk.text,
                    score=h.score,
                    scores={"dense": h.dense, "lexical": h.lexical},
                    title=doc.title,
                    collection=doc.collection,
                    source=doc.source,
                    metadata=json.loads(doc.metadata_json),
                    citation=citation(chunk, doc),
                )
            )
        self.cache.put(key, results)
        return results

    def _query_vector(self, query: str) -> Any:
        """The query's embedding; recent ones are reused (encoding dominates search time)."""
        vector = self._query_vectors.get(query)
        if vector is None:
            vector = embed_query(self.embedder, query)
            with self._query_lock:
                self._query_vectors[query] = vector
                while len(self._query_vectors) > 1024:
                    self._query_vectors.popitem(last=False)
        return vector

    # ---- embeddings ---------------------------------------------------------------------
    async def embeddings(
        self, inputs: Any, model: str | None, encoding_format: str, dimensions: int | None
    ) -> dict[str, Any]:
        """OpenAI-compatible embeddings of one text or a list of texts."""
        texts = _embedding_inputs(inputs, self.settings.max_embedding_inputs)
        known = {
            self.settings.embedding_model_name,
            self.embedder.name,
            "all-MiniLM-L6-v2",
            "sentence-transformers/all-MiniLM-L6-v2",
        }
        if model is not None and model not in known:
            raise NotFound(
                f"model {model!r} does not exist; use {self.settings.embedding_model_name!r}",
                param="model",
                code="model_not_found",
            )
        if dimensions is not None and dimensions != self.embedder.dim:
            raise BadRequest(
                f"this model has {self.embedder.dim} dimensions; `dimensions` cannot change it",
                param="dimensions",
            )
        vectors, tokens = await to_thread.run_sync(
            lambda: (self.embedder.encode(texts), self.embedder.count_tokens(texts))
        )
        data = []
        for i, vec in enumerate(vectors):
            value: Any = (
                base64.b64encode(vec.astype("<f4").tobytes()).decode()
                if encoding_format == "base64"
                else vec.tolist()
            )
            data.append({"object": "embedding", "index": i, "embedding": value})
        return {
            "object": "list",
            "data": data,
            "model": model or self.settings.embedding_model_name,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }

    # ---- answers ------------------------------------------------------------------------
    async def retrieve_for_answer(
        self, principal: Principal, req: SearchRequest
    ) -> list[SearchHit]:
        try:
            return await self.search(principal, req)
        except ServiceUnavailable as exc:
            raise ServiceUnavailable(
                f"{exc.message}; no answer is given without your memory"
            ) from None

    async def answer_events(
        self,
        principal: Principal,
        question: str,
        hits: list[SearchHit],
        *,
        model: str | None,
        max_tokens: int | None,
    ) -> AsyncIterator[dict[str, Any]]:
        """Events of an answer: `citations`, `delta`s (cleaned text), then `done`."""
        citations = [{"index": n, **h.citation} for n, h in enumerate(hits, start=1)]
        yield {"type": "citations", "citations": citations}
        if not hits:
            yield {"type": "delta", "text": answering.NOTHING_FOUND}
            yield {"type": "done", "answer": answering.NOTHING_FOUND, "cited": []}
            return
        if self.llm is None:
            raise ServiceUnavailable("no LLM service is configured for answers")
        messages = answering.build_messages(
            question, [h.model_dump() for h in hits], self.settings.answer_context_chars
        )
        cleaner = answering.StreamCleaner()
        answer = ""
        async for piece in self.llm.stream_chat(
            principal,
            messages,
            model=model or self.settings.answer_model,
            max_tokens=max_tokens or self.settings.answer_max_tokens,
        ):
            text = cleaner.feed(piece)
            if text:
                answer += text
                yield {"type": "delta", "text": text}
        tail = cleaner.finish()
        if tail:
            answer += tail
            yield {"type": "delta", "text": tail}
        yield {
            "type": "done",
            "answer": answer,
            "cited": answering.cited_numbers(answer, len(hits)),
        }


def _embedding_inputs(inputs: Any, limit: int) -> list[str]:
    if isinstance(inputs, str):
        inputs = [inputs]
    if not inputs:
        raise Unprocessable("input must not be empty", param="input")
    if not all(isinstance(t, str) for t in inputs):
        raise BadRequest("token arrays are not supported by this model; send text", param="input")
    if len(inputs) > limit:
        raise Unprocessable(f"at most {limit} inputs per request", param="input")
    if any(not t.strip() for t in inputs):
        raise Unprocessable("input strings must not be empty", param="input")
    return list(inputs)


def _ts(value: datetime | None) -> float | None:
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()


def _first_words(text: str, n: int = 8) -> str:
    words = text.split()
    return " ".join(words[:n]) + ("…" if len(words) > n else "")


def _index_rows(
    doc: Document, chunks: list[Chunk], drafts: list[ChunkDraft], vectors: Any
) -> list[IndexRow]:
    when = date_ts(doc.doc_date or doc.created_at)
    return [
        IndexRow(
            c.id,
            doc.id,
            doc.collection,
            doc.source,
            when,
            tuple(d.speakers),
            embed_text(c),
            vectors[i],
        )
        for i, (c, d) in enumerate(zip(chunks, drafts, strict=True))
    ]
