"""Database access of the RAG service; every query is scoped to one user."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from nemo_server.common.db import Database
from nemo_server.rag.chunking import ChunkDraft
from nemo_server.rag.models import Chunk, Document, UserGeneration


@dataclass
class NewDocument:
    """What ingest has prepared for storage."""

    user_id: str
    collection: str
    title: str
    source: str
    kind: str
    filename: str | None
    content_hash: str
    metadata: dict[str, Any]
    doc_date: datetime | None
    char_count: int


@dataclass
class IndexRow:
    """One chunk as the in-memory index needs it."""

    chunk_id: int
    document_id: str
    collection: str
    source: str
    date_ts: float
    speakers: tuple[str, ...]
    text: str
    vector: np.ndarray


def embed_text(chunk: Chunk) -> str:
    return f"{chunk.heading}\n{chunk.text}" if chunk.heading else chunk.text


class RagStore:
    """Documents and chunks of every user, always filtered by `user_id`."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def generation(self, user_id: str) -> int:
        with self.db.session() as s:
            value = s.scalar(
                select(UserGeneration.generation).where(UserGeneration.user_id == user_id)
            )
            return int(value or 0)

    def _ensure_generation_row(self, user_id: str) -> None:
        """Create the user's generation row on its own, so two first writes cannot collide."""
        if self.generation(user_id):
            return
        try:
            with self.db.session() as s:
                s.add(UserGeneration(user_id=user_id, generation=1))
        except IntegrityError:
            pass  # another writer created it first

    def _bump(self, s: Session, user_id: str) -> int:
        """Advance the user's generation inside the write's transaction; the new value."""
        done = s.execute(
            update(UserGeneration)
            .where(UserGeneration.user_id == user_id)
            .values(generation=UserGeneration.generation + 1)
        )
        if not done.rowcount:  # type: ignore[attr-defined]
            s.add(UserGeneration(user_id=user_id, generation=1))
            s.flush()
        return int(
            s.scalar(select(UserGeneration.generation).where(UserGeneration.user_id == user_id))
            or 1
        )

    def find_duplicate(self, user_id: str, collection: str, content_hash: str) -> Document | None:
        with self.db.session() as s:
            return s.scalar(
                select(Document).where(
                    Document.user_id == user_id,
                    Document.collection == collection,
                    Document.content_hash == content_hash,
                )
            )

    def insert(
        self, new: NewDocument, drafts: list[ChunkDraft], vectors: np.ndarray
    ) -> tuple[Document, list[Chunk], int | None]:
        """Store a document and its chunks, with the user's new generation.

        (existing, [], None) when an identical document won a race.
        """
        result = self.insert_many(new.user_id, [(new, drafts, vectors)])
        if result is not None:
            [(doc, chunks)], generation = result
            return doc, chunks, generation
        existing = self.find_duplicate(new.user_id, new.collection, new.content_hash)
        if existing is None:  # a constraint other than the duplicate check failed
            raise RuntimeError(f"document {new.title!r} could not be stored (integrity error)")
        return existing, [], None

    def insert_many(
        self, user_id: str, items: list[tuple[NewDocument, list[ChunkDraft], np.ndarray]]
    ) -> tuple[list[tuple[Document, list[Chunk]]], int] | None:
        """Store several documents of one user in one transaction (one generation step).

        None when any of them collides with a document stored meanwhile (the transaction is
        rolled back: the caller stores them one by one instead).
        """
        rows = [_rows(new, drafts, vectors) for new, drafts, vectors in items]
        self._ensure_generation_row(user_id)
        try:
            with self.db.session() as s:
                s.add_all([doc for doc, _ in rows])
                s.flush()
                s.add_all([c for _, chunks in rows for c in chunks])
                s.flush()
                generation = self._bump(s, user_id)
        except IntegrityError:
            return None
        return rows, generation

    def list_documents(
        self, user_id: str, collection: str | None, limit: int, offset: int
    ) -> tuple[list[Document], int]:
        with self.db.session() as s:
            where = [Document.user_id == user_id]
            if collection is not None:
                where.append(Document.collection == collection)
            total = s.scalar(select(func.count()).select_from(Document).where(*where)) or 0
            docs = s.scalars(
                select(Document)
                .where(*where)
                .order_by(Document.created_at.desc(), Document.id)
                .limit(limit)
                .offset(offset)
            ).all()
            return list(docs), int(total)

    def get_document(self, user_id: str, document_id: str) -> Document | None:
        with self.db.session() as s:
            return s.scalar(
                select(Document).where(Document.user_id == user_id, Document.id == document_id)
            )

    def document_chunks(self, user_id: str, document_id: str) -> list[Chunk]:
        with self.db.session() as s:
            return list(
                s.scalars(
                    select(Chunk)
                    .where(Chunk.user_id == user_id, Chunk.document_id == document_id)
                    .order_by(Chunk.ordinal)
                )
            )

    def delete_document(self, user_id: str, document_id: str) -> tuple[list[int], int] | None:
        """(chunk ids removed, new generation), or None when the user has no such document."""
        with self.db.session() as s:
            doc = s.scalar(
                select(Document).where(Document.user_id == user_id, Document.id == document_id)
            )
            if doc is None:
                return None
            ids = list(
                s.scalars(
                    select(Chunk.id).where(
                        Chunk.user_id == user_id, Chunk.document_id == document_id
                    )
                )
            )
            s.execute(
                delete(Chunk).where(Chunk.user_id == user_id, Chunk.document_id == document_id)
            )
            s.delete(doc)
            s.flush()
            return ids, self._bump(s, user_id)

    def chunks_with_documents(
        self, user_id: str, ids: list[int]
    ) -> dict[int, tuple[Chunk, Document]]:
        if not ids:
            return {}
        with self.db.session() as s:
            rows = s.execute(
                select(Chunk, Document)
                .join(Document, Chunk.document_id == Document.id)
                .where(Chunk.user_id == user_id, Document.user_id == user_id, Chunk.id.in_(ids))
            ).all()
            return {c.id: (c, d) for c, d in rows}

    def index_rows(self, user_id: str, batch: int = 5000) -> Iterator[IndexRow]:
        """Every chunk of a user with what the index needs, in chunk id order."""
        with self.db.session() as s:
            result = s.execute(
                select(
                    Chunk,
                    Document.collection,
                    Document.source,
                    Document.doc_date,
                    Document.created_at,
                )
                .join(Document, Chunk.document_id == Document.id)
                .where(Chunk.user_id == user_id, Document.user_id == user_id)
                .order_by(Chunk.id)
                .execution_options(yield_per=batch)
            )
            for chunk, collection, source, doc_date, created in result:
                yield IndexRow(
                    chunk_id=chunk.id,
                    document_id=chunk.document_id,
                    collection=collection,
                    source=source,
                    date_ts=date_ts(doc_date or created),
                    speakers=tuple(json.loads(chunk.speakers)) if chunk.speakers else (),
                    text=embed_text(chunk),
                    vector=np.frombuffer(chunk.embedding, dtype=np.float32),
                )

    def collections(self, user_id: str) -> list[tuple[str, int, int]]:
        with self.db.session() as s:
            rows = s.execute(
                select(
                    Document.collection,
                    func.count(),
                    func.coalesce(func.sum(Document.chunk_count), 0),
                )
                .where(Document.user_id == user_id)
                .group_by(Document.collection)
                .order_by(Document.collection)
            ).all()
            return [(c, int(n), int(k)) for c, n, k in rows]


def date_ts(value: datetime) -> float:
    if value.tzinfo is None:  # SQLite hands back naive datetimes; they were stored as UTC
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


def _rows(
    new: NewDocument, drafts: list[ChunkDraft], vectors: np.ndarray
) -> tuple[Document, list[Chunk]]:
    doc = Document(
        id=uuid.uuid4().hex,
        user_id=new.user_id,
        collection=new.collection,
        title=new.title,
        source=new.source,
        kind=new.kind,
        filename=new.filename,
        content_hash=new.content_hash,
        metadata_json=json.dumps(new.metadata),
        doc_date=new.doc_date,
        created_at=datetime.now(UTC),
        chunk_count=len(drafts),
        char_count=new.char_count,
    )
    chunks = [
        Chunk(
            document_id=doc.id,
            user_id=new.user_id,
            ordinal=i,
            text=d.text,
            heading=d.heading,
            page_start=d.page_start,
            page_end=d.page_end,
            start_s=d.start_s,
            end_s=d.end_s,
            speakers=json.dumps(d.speakers) if d.speakers else None,
            embedding=vectors[i].astype(np.float32).tobytes(),
        )
        for i, d in enumerate(drafts)
    ]
    return doc, chunks
