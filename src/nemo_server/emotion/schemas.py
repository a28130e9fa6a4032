"""Request and response models of the emotion API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field

SentimentLabel = Literal["negative", "neutral", "positive"]


class TextRequest(BaseModel):
    """`POST /v1/emotion/text`."""

    inputs: str | list[str] = Field(description="One text or a list of texts.")
    store: bool | None = Field(
        default=None, description="Keep the results for this user (default: the service's)."
    )
    source_id: str | None = Field(
        default=None, max_length=200, description="What the texts belong to (a conversation id)."
    )
    ids: list[Annotated[str, Field(max_length=200)]] | None = Field(
        default=None, description="One id per input (e.g. message ids), stored with the results."
    )


class Sentiment(BaseModel):
    label: SentimentLabel
    score: float = Field(description="From -1 (negative) to 1 (positive).")


class TextResult(BaseModel):
    label: str
    scores: dict[str, float]
    sentiment: Sentiment


class TextResponse(BaseModel):
    model: str
    results: list[TextResult]


class Prosody(BaseModel):
    pitch_hz: float | None = Field(description="Median F0 of voiced frames; null if none voiced.")
    pitch_variability_st: float | None = Field(description="F0 spread in semitones.")
    energy_db: float = Field(description="RMS level in dBFS.")
    voiced_fraction: float
    speaking_rate_wps: float | None = Field(description="Words per second of the transcript.")
    arousal: float = Field(description="-1 calm .. 1 excited, from prosody.")
    valence: float = Field(description="-1 negative .. 1 positive, from prosody (weak cue).")


class AudioSegment(BaseModel):
    start: float
    end: float
    speaker: str | None
    text: str
    prosody: Prosody
    text_emotion: TextResult
    arousal: float = Field(description="Prosodic arousal of the segment.")
    valence: float = Field(description="Text and prosody valence combined.")


class SpeakerSummary(BaseModel):
    speaker: str | None
    seconds: float
    segments: int
    dominant_emotion: str
    mean_arousal: float
    mean_valence: float


class AudioResponse(BaseModel):
    model: str
    source_id: str = Field(description="Id the stored segments carry (given, or the transcript's).")
    duration: float
    language: str | None
    segments: list[AudioSegment]
    speakers: list[SpeakerSummary]


class StoredResult(BaseModel):
    id: str
    kind: Literal["text", "segment"]
    source_id: str | None
    item_id: str | None
    speaker: str | None
    start: float | None
    end: float | None
    text: str
    label: str
    scores: dict[str, float]
    sentiment: Sentiment
    arousal: float | None
    valence: float | None
    created_at: datetime


class StoredResultList(BaseModel):
    object: Literal["list"] = "list"
    data: list[StoredResult]
    has_more: bool


class ModelInfo(BaseModel):
    text_engine: str
    model: str
    labels: list[str]
    sentiment_engine: str
    card: dict | None = Field(default=None, description="Training data, method and dev metrics.")
