"""Stored emotion results, always scoped to one user (sync SQLAlchemy; call from a threadpool)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select

from nemo_server.common.db import Database
from nemo_server.emotion.models import EmotionResult


@dataclass(frozen=True)
class NewResult:
    """One result to store."""

    kind: str
    text: str
    label: str
    scores: dict[str, float]
    sentiment_label: str
    sentiment_score: float
    model: str
    source_id: str | None = None
    item_id: str | None = None
    speaker: str | None = None
    start: float | None = None
    end: float | None = None
    arousal: float | None = None
    valence: float | None = None


class EmotionStore:
    """Writes and reads `emotion_results` rows of one user at a time."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, user_id: str, results: list[NewResult]) -> list[EmotionResult]:
        now = datetime.now(UTC)
        # One microsecond apart, so reading back by time keeps the order they were given in.
        rows = [
            EmotionResult(
                id=uuid.uuid4().hex,
                user_id=user_id,
                created_at=now + timedelta(microseconds=i),
                **r.__dict__,
            )
            for i, r in enumerate(results)
        ]
        with self.db.session() as session:
            session.add_all(rows)
        return rows

    def list(
        self,
        user_id: str,
        *,
        kind: str | None = None,
        source_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[list[EmotionResult], bool]:
        """Oldest first; returns (rows, has_more)."""
        query = select(EmotionResult).where(EmotionResult.user_id == user_id)
        if kind:
            query = query.where(EmotionResult.kind == kind)
        if source_id:
            query = query.where(EmotionResult.source_id == source_id)
        if since:
            query = query.where(EmotionResult.created_at >= since)
        if until:
            query = query.where(EmotionResult.created_at < until)
        query = query.order_by(EmotionResult.created_at, EmotionResult.id)
        with self.db.session() as session:
            rows = list(session.scalars(query.offset(offset).limit(limit + 1)))
        return rows[:limit], len(rows) > limit

    def delete(self, user_id: str, *, source_id: str | None = None) -> int:
        """Delete this user's results (of one source when given); returns how many."""
        statement = delete(EmotionResult).where(EmotionResult.user_id == user_id)
        if source_id:
            statement = statement.where(EmotionResult.source_id == source_id)
        with self.db.session() as session:
            return int(session.execute(statement).rowcount or 0)
