"""What every engine speaks: words, segments, speaker turns, and the engine protocols."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

SAMPLE_RATE = 16_000


@dataclass
class Word:
    """One recognised word with its time span in seconds."""

    start: float
    end: float
    word: str
    probability: float = 1.0
    speaker: str | None = None


@dataclass
class Segment:
    """One recognised stretch of speech."""

    start: float
    end: float
    text: str
    words: list[Word] = field(default_factory=list)
    speaker: str | None = None
    avg_logprob: float = 0.0
    no_speech_prob: float = 0.0

    def shifted(self, offset: float) -> Segment:
        """The same segment moved `offset` seconds later (chunked transcription)."""
        return Segment(
            start=self.start + offset,
            end=self.end + offset,
            text=self.text,
            words=[
                Word(w.start + offset, w.end + offset, w.word, w.probability, w.speaker)
                for w in self.words
            ],
            speaker=self.speaker,
            avg_logprob=self.avg_logprob,
            no_speech_prob=self.no_speech_prob,
        )


@dataclass(frozen=True)
class AsrOptions:
    """Per-request ASR options."""

    language: str | None = None
    prompt: str | None = None
    word_timestamps: bool = True
    vad_filter: bool = True
    beam_size: int = 5


@dataclass
class AsrResult:
    segments: list[Segment]
    language: str
    duration: float


@dataclass(frozen=True)
class Turn:
    """A speaker turn from diarization (turns of different speakers may overlap)."""

    start: float
    end: float
    speaker: str


@dataclass(frozen=True)
class SpeakerBounds:
    """How many speakers: exactly `num`, or between `min` and `max` (estimated)."""

    num: int | None = None
    min: int = 1
    max: int = 10


class AsrEngine(Protocol):
    """Speech to text with timestamps. Engines are thread-safe for one call at a time."""

    name: str
    multilingual: bool

    def transcribe(self, audio: np.ndarray, options: AsrOptions) -> AsrResult:
        """Transcribe 16 kHz mono float32 audio; times are seconds from its start."""
        ...


class DiarizationEngine(Protocol):
    """Who spoke when."""

    name: str

    def diarize(self, audio: np.ndarray, bounds: SpeakerBounds) -> list[Turn]:
        """Speaker turns of 16 kHz mono float32 audio, sorted by start."""
        ...


class SpeakerEmbedder(Protocol):
    """A voice embedding of a short piece of audio (live streams label speakers with it)."""

    def embed(self, audio: np.ndarray) -> np.ndarray | None:
        """An L2-normalised embedding, or None when the audio is too short to say."""
        ...
