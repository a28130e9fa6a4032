"""The live session's endpointing, partials, finals, delays and online speakers, on a fake
clock (deterministic: no timing depends on the machine)."""

from __future__ import annotations

import numpy as np
import pytest

from nemo_server.transcription.engines.base import AsrOptions
from nemo_server.transcription.engines.fake import FakeAsr, FakeDiarizer
from nemo_server.transcription.streaming import LiveSession, OnlineSpeakers
from nemo_server.transcription.testing import FEMALE, MALE, have_espeak, speak


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def pcm(audio: np.ndarray) -> bytes:
    return (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()


@pytest.mark.skipif(not have_espeak(), reason="espeak-ng is not installed")
def test_partials_then_finals_with_speakers_and_delay(settings):
    quiet = np.zeros(16_000, dtype=np.float32)
    male = speak("Good morning everyone, let us start the weekly meeting now.", MALE) * 0.4
    female = speak("Thank you, I will begin with the sales figures.", FEMALE) * 0.9
    stream = np.concatenate([quiet, male, quiet, female, quiet])
    clock = Clock()
    session = LiveSession(FakeAsr(), settings, AsrOptions(), FakeDiarizer(), clock=clock)
    events = []
    for at in range(0, len(stream), 1600):  # 100 ms frames, sent in real time
        clock.now = at / 16_000
        events += session.feed(pcm(stream[at : at + 1600]))
    events += session.flush()
    kinds = [e["type"] for e in events]
    assert "partial" in kinds[: kinds.index("final")]
    finals = [e for e in events if e["type"] == "final"]
    assert len(finals) == 2
    # The fake embedder tells the quiet male voice from the loud female one.
    assert [f["speaker"] for f in finals] == ["SPEAKER_00", "SPEAKER_01"]
    assert finals[0]["start"] >= 0.75 and finals[0]["end"] <= 1.0 + len(male) / 16_000 + 0.1
    # Real-time sender, instant engine: the delay is the silence that closes the utterance.
    assert all(0.4 <= f["delay_s"] <= 0.8 for f in finals)
    assert len(session.finals) >= 2 and session.duration == pytest.approx(
        len(stream) / 16_000, abs=0.05
    )


def test_online_speakers_join_the_nearest_voice_or_start_a_new_one():
    speakers = OnlineSpeakers(threshold=0.75, max_speakers=2)
    a, b, c = np.eye(3, dtype=np.float32)
    assert speakers.label(a) == "SPEAKER_00"
    assert speakers.label(a * 0.9 + b * 0.1) == "SPEAKER_00"
    assert speakers.label(b) == "SPEAKER_01"
    assert speakers.label(c) in ("SPEAKER_00", "SPEAKER_01")  # capped at max_speakers
    assert speakers.label(None) is None
