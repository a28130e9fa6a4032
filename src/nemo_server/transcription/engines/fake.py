"""Deterministic stand-in engines for unit tests (no model, instant)."""

from __future__ import annotations

import numpy as np

from nemo_server.transcription.engines.base import (
    AsrOptions,
    AsrResult,
    Segment,
    SpeakerBounds,
    Turn,
    Word,
)


class FakeAsr:
    """Says one numbered word per second of non-silent audio: "w0 w1 w2 ..." (absolute times
    come from the sample count, so chunked transcription must reproduce the same words)."""

    name = "fake"
    multilingual = False

    def __init__(self, words_per_segment: int = 3) -> None:
        self.words_per_segment = words_per_segment
        self.calls = 0

    def transcribe(self, audio: np.ndarray, options: AsrOptions) -> AsrResult:
        self.calls += 1
        words = []
        for second in range(-(-len(audio) // 16_000)):
            piece = audio[second * 16_000 : (second + 1) * 16_000]
            if np.abs(piece).max() > 0.01:
                # The word's value is the piece's level, so absolute position is testable.
                level = round(float(np.abs(piece).max()) * 100)
                words.append(Word(second + 0.1, second + 0.9, f"w{level}"))
        segments = [
            Segment(
                start=group[0].start,
                end=group[-1].end,
                text=" ".join(w.word for w in group),
                words=group,
            )
            for group in (
                words[i : i + self.words_per_segment]
                for i in range(0, len(words), self.words_per_segment)
            )
        ]
        return AsrResult(segments, options.language or "en", len(audio) / 16_000)


class FakeDiarizer:
    """Speaker k owns every second whose level is in the k-th band (loud > 0.5 is SPEAKER_01)."""

    name = "fake"

    def diarize(self, audio: np.ndarray, bounds: SpeakerBounds) -> list[Turn]:
        turns = []
        for second in range(len(audio) // 16_000):
            peak = float(np.abs(audio[second * 16_000 : (second + 1) * 16_000]).max())
            if peak > 0.01:
                turns.append(Turn(float(second), second + 1.0, f"SPEAKER_{int(peak > 0.5):02d}"))
        return turns

    def embed(self, audio: np.ndarray) -> np.ndarray | None:
        if len(audio) < 8000:
            return None
        loud = float(np.abs(audio).max()) > 0.5
        return np.array([1.0, 0.0] if loud else [0.0, 1.0], dtype=np.float32)
