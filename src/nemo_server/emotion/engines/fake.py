"""Deterministic stand-ins for unit tests: keyword emotions, a fixed transcript."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from nemo_server.common.auth import Principal
from nemo_server.emotion.engines.base import LABELS

KEYWORDS = {
    "angry": "anger",
    "furious": "anger",
    "gross": "disgust",
    "scared": "fear",
    "afraid": "fear",
    "happy": "joy",
    "love": "joy",
    "sad": "sadness",
    "wow": "surprise",
}


class FakeTextEngine:
    """The first keyword found decides the label (0.7); otherwise neutral. Counts its calls."""

    name = "fake-keywords"

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def classify(self, texts: Sequence[str]) -> list[dict[str, float]]:
        self.calls.append(list(texts))
        out = []
        for text in texts:
            words = text.lower().replace("!", " ").replace(".", " ").split()
            label = next((KEYWORDS[w] for w in words if w in KEYWORDS), "neutral")
            out.append({k: 0.7 if k == label else 0.05 for k in LABELS})
        return out

    def info(self) -> dict | None:
        return None


class FakeSentiment:
    """+0.8 for joy keywords, -0.8 for negative ones, 0 otherwise."""

    name = "fake-sentiment"

    def polarity(self, texts: Sequence[str]) -> list[float]:
        scores = FakeTextEngine().classify(texts)
        out = []
        for s in scores:
            label = max(s, key=lambda k: s[k])
            out.append(0.8 if label == "joy" else 0.0 if label in ("neutral", "surprise") else -0.8)
        return out


class FakeTranscriber:
    """Answers a fixed verbose_json transcript and records what it was sent."""

    def __init__(self, transcript: dict[str, Any]) -> None:
        self.transcript = transcript
        self.requests: list[dict[str, Any]] = []

    async def transcribe(
        self,
        principal: Principal,
        data: bytes,
        filename: str,
        content_type: str,
        language: str | None = None,
    ) -> dict[str, Any]:
        self.requests.append(
            {
                "user": principal.user_id,
                "bytes": len(data),
                "filename": filename,
                "language": language,
            }
        )
        return self.transcript
