"""Prosody on synthetic tones and on real synthetic speech (espeak-ng when installed)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from nemo_server.emotion.audio import decode_audio
from nemo_server.emotion.prosody import median_pitch, segment_prosody, track
from tests.emotion.conftest import SR, voice, wav_bytes


@pytest.mark.parametrize("f0", [90.0, 150.0, 220.0, 320.0])
def test_pitch_of_a_steady_voice(f0: float) -> None:
    frames = track(voice(1.0, f0, 0.3))
    features = segment_prosody(frames, 0.0, 1.0, "", None)
    assert abs(features.pitch_hz - f0) / f0 < 0.03
    assert features.voiced_fraction > 0.9 and features.speaking_rate_wps is None


def test_noise_and_silence_are_unvoiced() -> None:
    rng = np.random.default_rng(0)
    signal = np.concatenate([np.zeros(SR), 0.2 * rng.standard_normal(SR)])
    frames = track(signal)
    assert segment_prosody(frames, 0.0, 1.0, "", None).pitch_hz is None
    assert segment_prosody(frames, 1.0, 2.0, "", None).voiced_fraction < 0.2
    assert median_pitch(frames, [(0.0, 2.0)]) is None


def test_pitch_above_the_speakers_median_raises_arousal() -> None:
    signal = np.concatenate([voice(1.0, 120, 0.2), voice(1.0, 170, 0.2)])
    frames = track(signal)
    median = median_pitch(frames, [(0.0, 1.0), (1.0, 2.0)])
    low = segment_prosody(frames, 0.0, 1.0, "a b", median)
    high = segment_prosody(frames, 1.0, 2.0, "a b", median)
    assert high.arousal > low.arousal


def test_decoding_resamples_and_mixes_down() -> None:
    stereo = np.stack([voice(1.0, 200, 0.3), voice(1.0, 200, 0.3)], axis=1).reshape(-1)
    data = wav_bytes(stereo[: 2 * SR], rate=SR)  # written as mono at 2x length
    assert decode_audio(data, 60).size == 2 * SR
    eight_k = wav_bytes(voice(1.0, 200, 0.3)[::2], rate=8000)
    assert abs(decode_audio(eight_k, 60).size - SR) <= 2


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
def test_excited_speech_reads_more_aroused_than_flat_speech(tmp_path: Path) -> None:
    def say(name: str, *options: str) -> np.ndarray:
        path = tmp_path / f"{name}.wav"
        text = "I can not believe we finally won the whole championship today"
        subprocess.run(["espeak-ng", "-w", str(path), *options, text], check=True)
        return decode_audio(path.read_bytes(), 60)

    flat = say("flat", "-p", "30", "-a", "40", "-s", "120")
    excited = say("excited", "-p", "80", "-a", "190", "-s", "210")
    words = "I can not believe we finally won the whole championship today"
    calm = segment_prosody(track(flat), 0, flat.size / SR, words, None)
    lively = segment_prosody(track(excited), 0, excited.size / SR, words, None)
    assert calm.pitch_hz is not None and lively.pitch_hz is not None
    assert lively.pitch_hz > calm.pitch_hz
    assert lively.speaking_rate_wps > calm.speaking_rate_wps
    assert lively.arousal > calm.arousal
