"""HTTP API of the RAG service: parse, call the service, shape the response."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from nemo_server.common.app import service_router
from nemo_server.common.auth import Principal, current_principal
from nemo_server.common.errors import NemoError, Unprocessable, error_body
from nemo_server.rag.ingest import Parsed, parse_segments, parse_text, parse_upload
from nemo_server.rag.presenters import citation
from nemo_server.rag.schemas import (
    AnswerRequest,
    ChunkOut,
    CollectionOut,
    DocumentBatchIn,
    DocumentDetail,
    DocumentIn,
    DocumentList,
    EmbeddingRequest,
    SearchRequest,
    SearchResponse,
)
from nemo_server.rag.service import IngestOptions, RagService

router = service_router()
Caller = Annotated[Principal, Depends(current_principal)]


def rag(request: Request) -> RagService:
    return request.app.state.rag


Service = Annotated[RagService, Depends(rag)]


@router.post("/v1/embeddings")
async def create_embeddings(body: EmbeddingRequest, service: Service, _: Caller) -> dict[str, Any]:
    """OpenAI-compatible embeddings with the bundled all-MiniLM-L6-v2 (384 dimensions)."""
    return await service.embeddings(body.input, body.model, body.encoding_format, body.dimensions)


def _invalid(exc: ValidationError, prefix: str = "") -> Unprocessable:
    first = exc.errors()[0]
    field = prefix + ".".join(str(p) for p in first.get("loc", ())) or "body"
    return Unprocessable(f"{field}: {first['msg']}", param=field)


def _form_options(form: Any, filename: str | None) -> IngestOptions:
    try:
        metadata = json.loads(form.get("metadata") or "{}")
    except ValueError as exc:
        raise Unprocessable(f"metadata: not valid JSON: {exc}", param="metadata") from None
    fields = {k: form.get(k) for k in ("title", "collection", "source", "date") if form.get(k)}
    try:
        doc = DocumentIn.model_validate({**fields, "metadata": metadata, "text": None})
    except ValidationError as exc:
        raise _invalid(exc) from None
    return IngestOptions(doc.title, doc.collection, doc.source, doc.date, doc.metadata, filename)


@router.post("/v1/rag/documents", status_code=201)
async def ingest_document(request: Request, service: Service, principal: Caller) -> JSONResponse:
    """Ingest a document: multipart `file` (text, Markdown, HTML, PDF, DOCX, JSON transcript)
    with optional `title`, `collection`, `source`, `date`, `metadata` (JSON) fields; or a JSON
    body (`text` or `segments`). 201 when stored, 200 with `deduplicated` when already there."""
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media == "multipart/form-data":
        form = await request.form(max_files=1, max_fields=20)
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise Unprocessable("multipart upload needs a `file` part", param="file")
        data = await upload.read()
        opts = _form_options(form, upload.filename)
        parsed = await parse_upload(data, upload.content_type, upload.filename, service.settings)
    elif media in ("application/json", "") or media.endswith("+json"):
        try:
            doc = DocumentIn.model_validate_json(await request.body() or b"{}")
        except ValidationError as exc:
            raise _invalid(exc) from None
        parsed, opts = _json_document(doc)
    else:
        # A raw body: the content type labels the file; options come from the query string.
        q = request.query_params
        opts = _form_options(q, q.get("filename") or "upload")
        parsed = await parse_upload(
            await request.body(), media, q.get("filename"), service.settings
        )
    out = await service.ingest(principal, parsed, opts)
    return JSONResponse(out.model_dump(mode="json"), status_code=200 if out.deduplicated else 201)


def _json_document(doc: DocumentIn, where: str = "") -> tuple[Parsed, IngestOptions]:
    if (doc.text is None) == (doc.segments is None):
        raise Unprocessable("give exactly one of `text` or `segments`", param=f"{where}text")
    if doc.segments is not None:
        parsed = parse_segments([s.model_dump() for s in doc.segments])
    else:
        parsed = parse_text(doc.text or "", doc.format)
    return parsed, IngestOptions(doc.title, doc.collection, doc.source, doc.date, doc.metadata)


@router.post("/v1/rag/documents/batch", status_code=201)
async def ingest_batch(
    body: DocumentBatchIn, service: Service, principal: Caller
) -> dict[str, Any]:
    """Ingest up to 1000 JSON documents at once, with one encoder pass for all their chunks."""
    items = [_json_document(d, f"documents.{i}.") for i, d in enumerate(body.documents)]
    for i, (parsed, _) in enumerate(items):
        if not any(b.text.strip() for b in parsed.blocks):
            raise Unprocessable("the document is empty", param=f"documents.{i}.text")
    docs = await service.ingest_many(principal, items)
    return {"object": "list", "data": [d.model_dump(mode="json") for d in docs]}


@router.get("/v1/rag/documents")
async def list_documents(
    service: Service,
    principal: Caller,
    collection: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> DocumentList:
    """The caller's documents, newest first."""
    docs, total = await service.list_documents(principal, collection, limit, offset)
    return DocumentList(data=docs, total=total, limit=limit, offset=offset)


@router.get("/v1/rag/documents/{document_id}")
async def get_document(
    document_id: str, service: Service, principal: Caller, include_chunks: bool = False
) -> DocumentDetail:
    """One document; `include_chunks=true` adds its chunks with their citations."""
    doc, chunks = await service.get_document(principal, document_id)
    detail = DocumentDetail(**doc.model_dump())
    if include_chunks:
        detail.chunks = [
            ChunkOut(id=c.id, ordinal=c.ordinal, text=c.text, citation=citation(c, doc))
            for c in chunks
        ]
    return detail


@router.delete("/v1/rag/documents/{document_id}")
async def delete_document(document_id: str, service: Service, principal: Caller) -> dict[str, Any]:
    """Delete a document with its chunks, vectors and cached search results."""
    await service.delete_document(principal, document_id)
    return {"id": document_id, "object": "rag.document.deleted", "deleted": True}


@router.get("/v1/rag/collections")
async def list_collections(service: Service, principal: Caller) -> dict[str, Any]:
    """The caller's collections with document and chunk counts."""
    rows = await service.collections(principal)
    return {
        "object": "list",
        "data": [CollectionOut(name=n, documents=d, chunks=c) for n, d, c in rows],
    }


@router.get("/v1/rag/stats")
async def stats(service: Service, principal: Caller) -> dict[str, Any]:
    """The caller's index: size, kind (flat or HNSW), measured recall, model, device."""
    return await service.stats(principal)


@router.post("/v1/rag/reindex")
async def reindex(service: Service, principal: Caller) -> dict[str, Any]:
    """Rebuild the caller's dense and BM25 indexes from the database and save them."""
    return await service.rebuild_index(principal)


@router.post("/v1/rag/search")
async def search(body: SearchRequest, service: Service, principal: Caller) -> SearchResponse:
    """Hybrid (default), dense or lexical search of the caller's memory, with filters."""
    return SearchResponse(results=await service.search(principal, body), mode=body.mode)


def _sse(event: dict[str, Any] | str) -> bytes:
    data = event if isinstance(event, str) else json.dumps(event)
    return f"data: {data}\n\n".encode()


@router.post("/v1/rag/answer", response_model=None)
async def answer(body: AnswerRequest, service: Service, principal: Caller) -> Response:
    """Answer from memory with inline citations [n]; streamed as server-sent events by default.

    Events: `citations`, then `delta` pieces of cleaned text, then `done` (full answer and the
    cited numbers), then `[DONE]`. 503 when retrieval fails: never an answer without memory.
    """
    if body.k is None:
        body = body.model_copy(update={"k": service.settings.answer_top_k})
    hits = await service.retrieve_for_answer(principal, body)
    events = service.answer_events(
        principal, body.query, hits, model=body.model, max_tokens=body.max_tokens
    )
    if not body.stream:
        result: dict[str, Any] = {"object": "rag.answer"}
        async for event in events:
            if event["type"] == "citations":
                result["citations"] = event["citations"]
            elif event["type"] == "done":
                result.update(answer=event["answer"], cited=event["cited"])
        return JSONResponse(result)

    async def stream() -> AsyncIterator[bytes]:
        try:
            async for event in events:
                yield _sse(event)
        except NemoError as exc:
            yield _sse({"type": "error", **error_body(exc.message, type=exc.type, code=exc.code)})
        yield _sse("[DONE]")

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
