"""The emotion use cases: texts, speech, stored results. No FastAPI here."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool

from nemo_server.common.auth import Principal
from nemo_server.common.errors import ServiceUnavailable, Unprocessable
from nemo_server.emotion import prosody as pros
from nemo_server.emotion import speech
from nemo_server.emotion.audio import SAMPLE_RATE, decode_audio
from nemo_server.emotion.engines.base import LABELS, SentimentEngine, TextEmotionEngine
from nemo_server.emotion.settings import EmotionSettings
from nemo_server.emotion.store import EmotionStore, NewResult
from nemo_server.emotion.transcriber import Transcriber

NEGATIVE = ("anger", "disgust", "fear", "sadness")
# Where "neutral" ends on each polarity scale: VADER's own cut-off for its compound score; the
# model's and the blend's chosen on GoEmotions dev (benchmarks/emotion.py prints all three).
THRESHOLDS = {"vader": 0.05, "model": 0.25, "blend": 0.15}
TEXT_VALENCE_WEIGHT = 0.75


@dataclass(frozen=True)
class TextEmotion:
    """Emotion and sentiment of one text."""

    label: str
    scores: dict[str, float]
    sentiment_label: str
    sentiment_score: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "scores": self.scores,
            "sentiment": {"label": self.sentiment_label, "score": self.sentiment_score},
        }


def text_valence(scores: dict[str, float]) -> float:
    """-1..1 from the emotion scores: joy against the negative emotions."""
    return float(scores.get("joy", 0.0) - sum(scores.get(k, 0.0) for k in NEGATIVE))


def sentiment_of(mode: str, scores: dict[str, float], vader: float | None) -> tuple[str, float]:
    """(label, score) of one text: VADER's polarity, the model's valence, or their mean."""
    if mode == "model" or vader is None:
        mode, polarity = "model", text_valence(scores)
    elif mode == "blend":
        polarity = 0.5 * vader + 0.5 * text_valence(scores)
    else:
        polarity = vader
    threshold = THRESHOLDS[mode]
    label = (
        "positive" if polarity >= threshold else "negative" if polarity <= -threshold else "neutral"
    )
    return label, round(float(polarity), 4)


class EmotionService:
    """Analyses texts and speech for one principal and keeps the results per user."""

    def __init__(
        self,
        settings: EmotionSettings,
        text_engine: TextEmotionEngine,
        sentiment_engine: SentimentEngine | None,
        store: EmotionStore | None,
        transcriber: Transcriber | None,
    ) -> None:
        self.settings = settings
        self.text_engine = text_engine
        self.sentiment_engine = sentiment_engine
        self.store = store
        self.transcriber = transcriber

    @property
    def labels(self) -> tuple[str, ...]:
        return LABELS

    @property
    def sentiment_name(self) -> str:
        if self.sentiment_engine is None or self.settings.sentiment_engine == "model":
            return "model"
        if self.settings.sentiment_engine == "blend":
            return f"blend({self.sentiment_engine.name}+model)"
        return self.sentiment_engine.name

    # -- text ---------------------------------------------------------------------------

    def validate_texts(self, texts: Sequence[str], ids: Sequence[str] | None) -> None:
        """422 naming the field when the batch is empty, too large, or holds a bad text."""
        if not texts:
            raise Unprocessable("inputs: give at least one text", param="inputs")
        if len(texts) > self.settings.max_batch:
            raise Unprocessable(
                f"inputs: {len(texts)} texts is over the limit of {self.settings.max_batch} "
                "per request",
                param="inputs",
            )
        for i, text in enumerate(texts):
            if not text.strip():
                raise Unprocessable(f"inputs[{i}]: the text is empty", param=f"inputs[{i}]")
            if len(text) > self.settings.max_text_chars:
                raise Unprocessable(
                    f"inputs[{i}]: {len(text)} characters is over the limit of "
                    f"{self.settings.max_text_chars}",
                    param=f"inputs[{i}]",
                )
        if ids is not None and len(ids) != len(texts):
            raise Unprocessable(
                f"ids: {len(ids)} ids for {len(texts)} inputs; give one id per input",
                param="ids",
            )

    def analyze(self, texts: Sequence[str]) -> list[TextEmotion]:
        """Emotion and sentiment of each text (CPU-bound: call from a worker thread)."""
        scores = self.text_engine.classify(list(texts)) if texts else []
        polarity: list[float | None] = [None] * len(scores)
        if self.sentiment_engine is not None and self.settings.sentiment_engine != "model":
            polarity = list(self.sentiment_engine.polarity(list(texts)))
        out = []
        for s, p in zip(scores, polarity, strict=True):
            rounded = {label: round(float(s.get(label, 0.0)), 4) for label in LABELS}
            label, score = sentiment_of(self.settings.sentiment_engine, rounded, p)
            out.append(
                TextEmotion(
                    label=max(rounded, key=lambda k: rounded[k]),
                    scores=rounded,
                    sentiment_label=label,
                    sentiment_score=score,
                )
            )
        return out

    def _should_store(self, store: bool | None) -> bool:
        wanted = self.settings.store_by_default if store is None else store
        return wanted and self.store is not None

    async def texts(
        self,
        principal: Principal,
        texts: Sequence[str],
        *,
        store: bool | None = None,
        source_id: str | None = None,
        ids: Sequence[str] | None = None,
    ) -> list[TextEmotion]:
        """Analyse a batch of texts; keep the results for the user unless told not to."""
        self.validate_texts(texts, ids)
        results = await run_in_threadpool(self.analyze, texts)
        if self._should_store(store):
            rows = [
                NewResult(
                    kind="text",
                    text=t,
                    label=r.label,
                    scores=r.scores,
                    sentiment_label=r.sentiment_label,
                    sentiment_score=r.sentiment_score,
                    model=self.text_engine.name[:200],
                    source_id=source_id,
                    item_id=ids[i] if ids else None,
                )
                for i, (t, r) in enumerate(zip(texts, results, strict=True))
            ]
            assert self.store is not None
            await run_in_threadpool(self.store.add, principal.user_id, rows)
        return results

    # -- speech -------------------------------------------------------------------------

    async def audio(
        self,
        principal: Principal,
        data: bytes,
        *,
        filename: str,
        content_type: str,
        language: str | None = None,
        store: bool | None = None,
        source_id: str | None = None,
    ) -> dict[str, Any]:
        """Prosody and transcript emotion per segment and speaker of one recording."""
        signal = await run_in_threadpool(decode_audio, data, self.settings.max_audio_seconds)
        if self.transcriber is None:
            raise ServiceUnavailable("speech emotion needs the transcription service")
        transcript = await self.transcriber.transcribe(
            principal, data, filename, content_type, language
        )
        duration = signal.size / SAMPLE_RATE
        segments = speech.transcript_segments(transcript, duration)
        frames = await run_in_threadpool(pros.track, signal, SAMPLE_RATE)
        prosodies = speech.segment_prosody(frames, segments)
        texts = [s["text"] for s in segments]
        spoken = [i for i, t in enumerate(texts) if t]
        emotions = await run_in_threadpool(self.analyze, [texts[i] for i in spoken])
        by_index = dict(zip(spoken, emotions, strict=True))
        silent = TextEmotion("neutral", {k: float(k == "neutral") for k in LABELS}, "neutral", 0.0)
        out_segments = []
        for i, (segment, prosody) in enumerate(zip(segments, prosodies, strict=True)):
            emotion = by_index.get(i, silent)
            valence = (
                TEXT_VALENCE_WEIGHT * text_valence(emotion.scores)
                + (1 - TEXT_VALENCE_WEIGHT) * prosody["valence"]
            )
            out_segments.append(
                {
                    **segment,
                    "prosody": prosody,
                    "text_emotion": emotion.as_dict(),
                    "arousal": prosody["arousal"],
                    "valence": round(float(valence), 3),
                }
            )
        # The transcription service keeps the transcript too; its id links the two.
        source = source_id or str(
            transcript.get("transcript_id") or transcript.get("id") or uuid.uuid4().hex
        )
        if self._should_store(store) and out_segments:
            rows = [
                NewResult(
                    kind="segment",
                    text=s["text"],
                    label=s["text_emotion"]["label"],
                    scores=s["text_emotion"]["scores"],
                    sentiment_label=s["text_emotion"]["sentiment"]["label"],
                    sentiment_score=s["text_emotion"]["sentiment"]["score"],
                    model=self.text_engine.name[:200],
                    source_id=source,
                    item_id=str(i),
                    speaker=s["speaker"],
                    start=s["start"],
                    end=s["end"],
                    arousal=s["arousal"],
                    valence=s["valence"],
                )
                for i, s in enumerate(out_segments)
            ]
            assert self.store is not None
            await run_in_threadpool(self.store.add, principal.user_id, rows)
        return {
            "model": self.text_engine.name,
            "source_id": source,
            "duration": round(duration, 3),
            "language": transcript.get("language"),
            "segments": out_segments,
            "speakers": speech.speaker_summaries(out_segments),
        }
