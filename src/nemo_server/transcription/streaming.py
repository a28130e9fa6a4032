"""Live transcription of a 16 kHz PCM stream: partial and final segments with speakers.

WebRTC VAD finds utterances; while one is open a partial result is sent every
`stream_partial_every_s` of new speech; after `stream_silence_s` of silence (or at
`stream_max_utterance_s`) the utterance is transcribed once more as a final segment. Speakers
are labelled online: each final utterance's voice embedding joins the closest known speaker's
centroid, or starts a new speaker when nobody is similar enough.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nemo_server.transcription.engines.base import (
    SAMPLE_RATE,
    AsrEngine,
    AsrOptions,
    Segment,
    SpeakerEmbedder,
)
from nemo_server.transcription.engines.vad import SpeechDetector
from nemo_server.transcription.settings import TranscriptionSettings

FRAME = 480  # 30 ms
_PAD = int(0.2 * SAMPLE_RATE)  # audio kept before speech starts, so first syllables survive


@dataclass
class OnlineSpeakers:
    """Running speaker centroids for one stream."""

    threshold: float
    max_speakers: int = 10
    centroids: list[np.ndarray] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)

    def label(self, embedding: np.ndarray | None) -> str | None:
        if embedding is None:
            return None
        if self.centroids:
            sims = [float(c @ embedding / (np.linalg.norm(c) or 1.0)) for c in self.centroids]
            best = int(np.argmax(sims))
            if sims[best] >= self.threshold or len(self.centroids) >= self.max_speakers:
                self.counts[best] += 1
                self.centroids[best] = (
                    self.centroids[best] + (embedding - self.centroids[best]) / self.counts[best]
                )
                return f"SPEAKER_{best:02d}"
        self.centroids.append(embedding.copy())
        self.counts.append(1)
        return f"SPEAKER_{len(self.centroids) - 1:02d}"


class LiveSession:
    """Feed it PCM as it arrives; it returns the events to send back."""

    def __init__(
        self,
        engine: AsrEngine,
        settings: TranscriptionSettings,
        options: AsrOptions,
        embedder: SpeakerEmbedder | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.options = options
        self.embedder = embedder
        self.clock = clock
        self.speakers = OnlineSpeakers(settings.stream_speaker_threshold)
        self._vad = SpeechDetector(aggressiveness=2)
        self._pending = np.zeros(0, dtype=np.float32)  # samples not yet through the VAD
        self._history = np.zeros(0, dtype=np.float32)  # recent audio before the utterance
        self._utterance: list[np.ndarray] = []
        self._utt_start = 0  # sample index where the open utterance starts
        self._consumed = 0  # samples through the VAD so far
        self._silence = 0  # trailing silent samples in the open utterance
        self._last_speech_at = 0.0  # clock when the last speech frame arrived
        self._since_partial = 0
        self._last_speaker: str | None = None
        self._first_at: float | None = None
        self.finals: list[Segment] = []
        self.delays: list[float] = []

    @property
    def duration(self) -> float:
        return self._consumed / SAMPLE_RATE

    def feed(self, pcm16: bytes) -> list[dict[str, Any]]:
        """Take little-endian int16 mono PCM; return partial/final events it completes."""
        arrived = self.clock()
        if self._first_at is None:
            self._first_at = arrived
        samples = np.frombuffer(pcm16[: len(pcm16) // 2 * 2], dtype="<i2").astype(np.float32)
        self._pending = np.concatenate([self._pending, samples / 32768.0])
        events: list[dict[str, Any]] = []
        while len(self._pending) >= FRAME:
            frame, self._pending = self._pending[:FRAME], self._pending[FRAME:]
            events.extend(e for e in self._frame(frame, arrived) if e.get("text"))
        return events

    def flush(self) -> list[dict[str, Any]]:
        """End of stream: close the open utterance."""
        if not self._utterance:
            return []
        final = self._final()
        return [final] if final["text"] else []

    def _frame(self, frame: np.ndarray, arrived: float) -> list[dict[str, Any]]:
        speech = np.abs(frame).max() > 0.002 and self._vad.is_speech(frame)
        self._consumed += FRAME
        if not self._utterance:
            if not speech:
                self._history = np.concatenate([self._history, frame])[-_PAD:]
                return []
            self._utterance = [self._history, frame]
            self._utt_start = self._consumed - FRAME - len(self._history)
            self._history = np.zeros(0, dtype=np.float32)
            self._silence, self._since_partial = 0, 0
            self._last_speech_at = arrived
            return []
        self._utterance.append(frame)
        self._since_partial += FRAME
        if speech:
            self._silence = 0
            self._last_speech_at = arrived
        else:
            self._silence += FRAME
        length = sum(len(x) for x in self._utterance) / SAMPLE_RATE
        if (
            self._silence >= self.settings.stream_silence_s * SAMPLE_RATE
            or length >= self.settings.stream_max_utterance_s
        ):
            return [self._final()]
        if self._since_partial >= self.settings.stream_partial_every_s * SAMPLE_RATE:
            if self._lag(arrived) > self.settings.stream_partial_every_s:
                return []  # behind real time: skip previews so finals are not delayed
            self._since_partial = 0
            partial = self._partial()
            return [partial] if partial else []
        return []

    def _lag(self, now: float) -> float:
        """How far processing trails a real-time sender (negative when it sends faster)."""
        if self._first_at is None:
            return 0.0
        return (now - self._first_at) - self._consumed / SAMPLE_RATE

    def _recognise(self, audio: np.ndarray, partial: bool) -> list[Segment]:
        # Partials are a preview: greedy decoding keeps them cheap.
        base = self.options
        if partial:
            options = AsrOptions(base.language, base.prompt, False, False, 1)
        else:
            options = AsrOptions(
                base.language, base.prompt, True, False, self.settings.stream_beam_size
            )
        return self.engine.transcribe(audio, options).segments

    def _partial(self) -> dict[str, Any] | None:
        audio = np.concatenate(self._utterance)
        text = " ".join(s.text for s in self._recognise(audio, partial=True)).strip()
        if not text:
            return None
        start = self._utt_start / SAMPLE_RATE
        return {
            "type": "partial",
            "start": round(start, 3),
            "end": round(start + len(audio) / SAMPLE_RATE, 3),
            "text": text,
        }

    def _final(self) -> dict[str, Any]:
        audio = np.concatenate(self._utterance)
        self._utterance = []
        offset = self._utt_start / SAMPLE_RATE
        segments = [s.shifted(offset) for s in self._recognise(audio, partial=False)]
        speaker = None
        if self.embedder is not None:
            # Too short to embed: most likely the previous speaker still talking.
            speaker = self.speakers.label(self.embedder.embed(audio)) or self._last_speaker
            self._last_speaker = speaker
        for s in segments:
            s.speaker = speaker
            for w in s.words:
                w.speaker = speaker
        self.finals.extend(segments)
        delay = self.clock() - self._last_speech_at
        self.delays.append(delay)
        text = " ".join(s.text for s in segments).strip()
        return {
            "type": "final",
            "start": round(segments[0].start if segments else offset, 3),
            "end": round(segments[-1].end if segments else offset + len(audio) / SAMPLE_RATE, 3),
            "text": text,
            "speaker": speaker,
            "words": [
                {"word": w.word, "start": round(w.start, 3), "end": round(w.end, 3)}
                for s in segments
                for w in s.words
            ],
            # Time from the last speech frame reaching the server to this final being ready.
            "delay_s": round(delay, 3),
        }
