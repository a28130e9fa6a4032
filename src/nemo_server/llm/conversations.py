"""Conversations stored per user (sync SQLAlchemy; callers run it in a threadpool)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from nemo_server.common.db import Database
from nemo_server.common.errors import NotFound
from nemo_server.llm.models import ConversationRow, MessageRow
from nemo_server.llm.schemas import Conversation, ConversationDetail, ConversationMessage


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime) -> datetime:
    # SQLite returns naive datetimes; every stored value is UTC.
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class ConversationStore:
    """Create, list, read, append to and delete one user's conversations."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def create(
        self, user_id: str, title: str, model: str | None, system_prompt: str | None
    ) -> Conversation:
        now = _now()
        row = ConversationRow(
            id=f"conv_{uuid.uuid4().hex}",
            user_id=user_id,
            title=title,
            model=model,
            created_at=now,
            updated_at=now,
        )
        with self.db.session() as s:
            s.add(row)
            if system_prompt:
                s.add(
                    MessageRow(
                        conversation_id=row.id,
                        seq=0,
                        role="system",
                        content=system_prompt,
                        created_at=now,
                    )
                )
        return self._card(row, 1 if system_prompt else 0)

    def list(self, user_id: str, limit: int = 100) -> list[Conversation]:
        counts = (
            select(MessageRow.conversation_id, func.count().label("n"))
            .group_by(MessageRow.conversation_id)
            .subquery()
        )
        query = (
            select(ConversationRow, func.coalesce(counts.c.n, 0))
            .outerjoin(counts, counts.c.conversation_id == ConversationRow.id)
            .where(ConversationRow.user_id == user_id)
            .order_by(ConversationRow.updated_at.desc())
            .limit(limit)
        )
        with self.db.session() as s:
            return [self._card(row, int(n)) for row, n in s.execute(query).all()]

    def get(self, user_id: str, conversation_id: str) -> ConversationDetail:
        with self.db.session() as s:
            row = self._owned(s, user_id, conversation_id)
            messages = [
                ConversationMessage(role=m.role, content=m.content, created_at=_aware(m.created_at))
                for m in row.messages
            ]
            card = self._card(row, len(messages))
        return ConversationDetail(**card.model_dump(), messages=messages)

    def append(self, user_id: str, conversation_id: str, messages: list[dict[str, str]]) -> None:
        """Add messages at the end (404 when the conversation is gone or not this user's)."""
        now = _now()
        with self.db.session() as s:
            row = self._owned(s, user_id, conversation_id)
            last = s.scalar(
                select(func.max(MessageRow.seq)).where(MessageRow.conversation_id == row.id)
            )
            seq = -1 if last is None else int(last)
            for message in messages:
                seq += 1
                s.add(
                    MessageRow(
                        conversation_id=row.id,
                        seq=seq,
                        role=message["role"],
                        content=message["content"],
                        created_at=now,
                    )
                )
            row.updated_at = now
            if not row.title:
                first = next((m["content"] for m in messages if m["role"] == "user"), "")
                row.title = first[:80]

    def delete(self, user_id: str, conversation_id: str) -> None:
        with self.db.session() as s:
            row = self._owned(s, user_id, conversation_id)
            s.delete(row)

    @staticmethod
    def _owned(s: Session, user_id: str, conversation_id: str) -> ConversationRow:
        row = s.get(ConversationRow, conversation_id)
        if row is None or row.user_id != user_id:  # another user's id looks like a missing one
            raise NotFound(f"conversation '{conversation_id}' not found", param="conversation_id")
        return row

    @staticmethod
    def _card(row: ConversationRow, count: int) -> Conversation:
        return Conversation(
            id=row.id,
            title=row.title,
            model=row.model,
            created_at=_aware(row.created_at),
            updated_at=_aware(row.updated_at),
            message_count=count,
        )
