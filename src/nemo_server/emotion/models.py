"""Tables of the emotion service: one row per analysed message or transcript segment."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, DateTime, Float, Index, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    """Declarative base of the emotion service's tables."""


class EmotionResult(Base):
    """The emotion of one text (`kind="text"`) or one speech segment (`kind="segment"`)."""

    __tablename__ = "emotion_results"
    __table_args__ = (
        Index("ix_emotion_results_user_created", "user_id", "created_at"),
        Index("ix_emotion_results_user_source", "user_id", "source_id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(64), nullable=False)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    source_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    item_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    speaker: Mapped[str | None] = mapped_column(String(64), nullable=True)
    start: Mapped[float | None] = mapped_column(Float, nullable=True)
    end: Mapped[float | None] = mapped_column(Float, nullable=True)
    text: Mapped[str] = mapped_column(Text, nullable=False)
    label: Mapped[str] = mapped_column(String(16), nullable=False)
    scores: Mapped[dict] = mapped_column(JSON, nullable=False)
    sentiment_label: Mapped[str] = mapped_column(String(16), nullable=False)
    sentiment_score: Mapped[float] = mapped_column(Float, nullable=False)
    arousal: Mapped[float | None] = mapped_column(Float, nullable=True)
    valence: Mapped[float | None] = mapped_column(Float, nullable=True)
    model: Mapped[str] = mapped_column(String(200), nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
