"""Fixtures of the emotion tests: settings in a fresh data dir, apps with fake engines."""

from __future__ import annotations

import io
import wave
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from nemo_server.common.settings import CommonSettings
from nemo_server.emotion.app import create_app
from nemo_server.emotion.engines.fake import FakeSentiment, FakeTextEngine, FakeTranscriber
from nemo_server.emotion.settings import EmotionSettings

SR = 16000


def voice(seconds: float, f0: float, amplitude: float, vibrato: float = 0.0) -> np.ndarray:
    """A buzzy harmonic tone: voiced-speech-like for the pitch tracker."""
    t = np.arange(int(seconds * SR)) / SR
    freq = f0 * (1 + vibrato * np.sin(2 * np.pi * 3 * t))
    phase = 2 * np.pi * np.cumsum(freq) / SR
    return amplitude * sum(np.sin(k * phase) / k for k in range(1, 6))


def wav_bytes(signal: np.ndarray, rate: int = SR) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes((np.clip(signal, -1, 1) * 32767).astype("<i2").tobytes())
    return buffer.getvalue()


def two_speaker_recording() -> bytes:
    """0-2 s: a quiet, flat, low voice; 2.5-4.5 s: a loud, lively, high voice."""
    return wav_bytes(
        np.concatenate(
            [voice(2.0, 115, 0.04), np.zeros(SR // 2), voice(2.0, 230, 0.45, vibrato=0.12)]
        )
    )


TRANSCRIPT = {
    "text": "I feel so sad today. Wow I am so happy for you!",
    "language": "en",
    "duration": 4.5,
    "transcript_id": "tr-123",
    "segments": [
        {
            "id": 0,
            "start": 0.0,
            "end": 2.0,
            "text": " I feel so sad today.",
            "speaker": "SPEAKER_00",
        },
        {
            "id": 1,
            "start": 2.5,
            "end": 4.5,
            "text": " Wow I am so happy for you!",
            "speaker": "SPEAKER_01",
        },
    ],
}


@pytest.fixture
def settings(common_settings: CommonSettings) -> EmotionSettings:
    # `vader` mode, so the fake VADER below is what answers sentiment (the default is `model`).
    return EmotionSettings(common=common_settings, sentiment_engine="vader")


@pytest.fixture
def make_client(settings: EmotionSettings) -> Iterator[Callable[..., TestClient]]:
    """Builds an app with fake engines (overridable) and enters its lifespan."""
    opened: list[TestClient] = []

    def build(**overrides: Any) -> TestClient:
        chosen = overrides.pop("settings", settings)
        collaborators: dict[str, Any] = {
            "text_engine": FakeTextEngine(),
            "sentiment_engine": FakeSentiment(),
            "transcriber": FakeTranscriber(TRANSCRIPT),
        }
        collaborators.update(overrides)
        client = TestClient(create_app(chosen, **collaborators))
        client.__enter__()
        opened.append(client)
        return client

    yield build
    for client in opened:
        client.__exit__(None, None, None)
