"""Request and response models of the transcription API (OpenAI-compatible where one exists)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

ResponseFormat = Literal["json", "text", "srt", "vtt", "verbose_json", "rttm"]


class WordOut(BaseModel):
    word: str
    start: float
    end: float
    speaker: str | None = None


class SegmentOut(BaseModel):
    id: int
    start: float
    end: float
    text: str
    speaker: str | None = None
    avg_logprob: float | None = None
    no_speech_prob: float | None = None


class TranscriptionJson(BaseModel):
    """`response_format=json` (OpenAI's shape plus the stored transcript's id)."""

    text: str
    transcript_id: str | None = None


class TranscriptionVerbose(BaseModel):
    """`response_format=verbose_json`; `speaker` is set on segments and words when diarized."""

    task: str = "transcribe"
    language: str
    duration: float
    text: str
    segments: list[SegmentOut] = Field(default_factory=list)
    words: list[WordOut] | None = None
    speakers: list[str] | None = None
    transcript_id: str | None = None
    model: str


class JobOut(BaseModel):
    """A durable transcription job."""

    id: str
    object: Literal["transcription.job"] = "transcription.job"
    status: Literal["queued", "running", "waiting_gpu", "completed", "failed", "cancelled"]
    progress: float = Field(description="Share of the audio transcribed, 0 to 1.")
    duration: float
    processed: float
    segments: int = Field(description="Segments saved so far.")
    preemptions: int
    transcript_id: str
    model: str
    diarize: bool
    error: str | None = None
    created_at: datetime
    updated_at: datetime


class JobList(BaseModel):
    object: Literal["list"] = "list"
    data: list[JobOut]


class TranscriptSummary(BaseModel):
    id: str
    object: Literal["transcript"] = "transcript"
    created_at: datetime
    source: str
    filename: str | None
    model: str
    language: str | None
    duration: float
    diarized: bool
    complete: bool


class TranscriptOut(TranscriptSummary):
    """A stored transcript with its speakers, segments and words."""

    text: str
    speakers: list[str]
    segments: list[SegmentOut]
    words: list[WordOut]


class TranscriptList(BaseModel):
    object: Literal["list"] = "list"
    data: list[TranscriptSummary]


class ModelOut(BaseModel):
    id: str
    object: Literal["model"] = "model"
    owned_by: str = "nemo"
    aliases: list[str] = Field(default_factory=list)


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelOut]
