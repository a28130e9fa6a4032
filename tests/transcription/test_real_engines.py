"""The real bundled engines (Whisper tiny.en, Silero VAD, Resemblyzer) on espeak-ng speech.

Models load once for the module; each test builds its own app around them.
"""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from nemo_server.transcription.app import create_app
from nemo_server.transcription.engines.resemblyzer_diarizer import ResemblyzerDiarizer
from nemo_server.transcription.engines.whisper import FasterWhisperEngine, bundled_model_path
from nemo_server.transcription.testing import (
    FEMALE,
    MALE,
    Conversation,
    Turn,
    conversation,
    encode,
    have_espeak,
    speak,
    wav_bytes,
)
from nemo_server.transcription.wer import word_error_rate

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not have_espeak(), reason="espeak-ng is not installed"),
]

SENTENCE = "Please send the budget report to the finance team before Friday afternoon."


@pytest.fixture(scope="module")
def asr() -> FasterWhisperEngine:
    return FasterWhisperEngine("whisper-tiny.en", bundled_model_path(), device="cpu")


@pytest.fixture(scope="module")
def diarizer() -> ResemblyzerDiarizer:
    return ResemblyzerDiarizer("cpu")


@pytest.fixture(scope="module")
def sentence() -> np.ndarray:
    return speak(SENTENCE, MALE)


@pytest.fixture(scope="module")
def dialogue() -> Conversation:
    return conversation(
        [
            Turn("A", "Good morning, shall we look at the budget for next quarter?", MALE, 0.8),
            Turn(
                "B",
                "Yes, I have the numbers here and they look better than last time.",
                FEMALE,
                0.8,
            ),
            Turn("A", "Great, what about the hiring plan for the new office?", MALE, 0.8),
            Turn("B", "We want two more engineers before the summer starts.", FEMALE, 0.8),
        ]
    )


@pytest.fixture
def client(settings, asr, diarizer, headers) -> Any:
    app = create_app(settings, asr_engine=asr, diarizer=diarizer, embedder=diarizer)
    with TestClient(app) as client:
        yield client


def transcribe(client: TestClient, headers: dict, data: bytes, name: str = "a.wav", **form: Any):
    files = {"file": (name, data, "application/octet-stream")}
    response = client.post("/v1/audio/transcriptions", headers=headers, files=files, data=form)
    assert response.status_code == 200, response.text
    return response


def test_speech_is_transcribed_with_word_timestamps(client, headers, sentence):
    body = transcribe(
        client,
        headers,
        wav_bytes(sentence),
        response_format="verbose_json",
        **{"timestamp_granularities[]": "word"},
    ).json()
    assert word_error_rate(SENTENCE, body["text"]) <= 0.2, body["text"]
    words = body["words"]
    assert len(words) >= 10
    assert all(w["start"] <= w["end"] for w in words)
    assert [w["start"] for w in words] == sorted(w["start"] for w in words)
    assert words[-1]["end"] <= body["duration"] + 0.1


@pytest.mark.parametrize(
    ("name", "container", "codec"),
    [
        ("a.mp3", "mp3", "libmp3lame"),
        ("a.m4a", "ipod", "aac"),
        ("a.ogg", "ogg", "libopus"),
        ("a.webm", "webm", "libopus"),
        ("a.flac", "flac", "flac"),
    ],
)
def test_compressed_formats_are_decoded(client, headers, sentence, name, container, codec):
    data = encode(sentence, container, codec)
    text = transcribe(client, headers, data, name, response_format="text").text
    assert word_error_rate(SENTENCE, text) <= 0.25, text


def test_two_voices_are_told_apart(client, headers, dialogue):
    for form in ({"num_speakers": "2"}, {}):
        body = transcribe(
            client,
            headers,
            wav_bytes(dialogue.audio),
            response_format="verbose_json",
            diarize="true",
            **form,
            **{"timestamp_granularities[]": "word"},
        ).json()
        assert body["speakers"] == ["SPEAKER_00", "SPEAKER_01"]
        assert _word_accuracy(body["words"], dialogue) >= 0.9
        assert all(s["speaker"] for s in body["segments"])
    rttm = transcribe(
        client,
        headers,
        wav_bytes(dialogue.audio),
        "talk.wav",
        response_format="rttm",
        diarize="true",
    ).text
    speakers = [line.split()[7] for line in rttm.splitlines()]
    assert set(speakers) == {"SPEAKER_00", "SPEAKER_01"}


def test_one_voice_is_one_speaker(client, headers, sentence):
    body = transcribe(
        client, headers, wav_bytes(sentence), response_format="verbose_json", diarize="true"
    ).json()
    assert body["speakers"] == ["SPEAKER_00"]


def _word_accuracy(words: list[dict], dialogue: Conversation) -> float:
    """Share of words whose speaker matches the reference (best label mapping)."""
    pairs = []
    for w in words:
        middle = (w["start"] + w["end"]) / 2
        ref = min(
            dialogue.reference,
            key=lambda r: (
                0 if r[0] <= middle <= r[1] else min(abs(r[0] - middle), abs(r[1] - middle))
            ),
        )
        pairs.append((w["speaker"], ref[2]))
    mapping = {
        hyp: Counter(r for h, r in pairs if h == hyp).most_common(1)[0][0] for hyp, _ in pairs
    }
    return sum(mapping[h] == r for h, r in pairs) / len(pairs)


def test_any_ctranslate2_model_directory_is_used_by_name(settings, headers, sentence, tmp_path):
    copy = tmp_path / "my-whisper"
    shutil.copytree(bundled_model_path(), copy)
    broken = tmp_path / "broken"
    broken.mkdir()
    custom = settings.model_copy(
        update={"models": {"my-whisper": copy, "broken": broken}, "preload": False}
    )
    with TestClient(create_app(custom)) as client:
        text = transcribe(
            client, headers, wav_bytes(sentence), model="my-whisper", response_format="text"
        ).text
        assert word_error_rate(SENTENCE, text) <= 0.2
        failed = client.post(
            "/v1/audio/transcriptions",
            headers=headers,
            data={"model": "broken"},
            files={"file": ("a.wav", wav_bytes(sentence), "audio/wav")},
        )
        assert failed.status_code == 503
        assert "broken" in failed.json()["error"]["message"]
        ids = [m["id"] for m in client.get("/v1/audio/models", headers=headers).json()["data"]]
        assert ids == ["broken", "my-whisper", "whisper-tiny.en"]


def test_live_stream_gives_partials_finals_and_speakers(client, headers, dialogue):
    pcm = (np.clip(dialogue.audio, -1, 1) * 32767).astype("<i2").tobytes()
    events = []
    with client.websocket_connect("/v1/audio/stream", headers=headers) as ws:
        assert ws.receive_json()["type"] == "ready"
        step = 3200  # 0.1 s
        for i in range(0, len(pcm), step * 2):
            ws.send_bytes(pcm[i : i + step * 2])
        ws.send_json({"type": "end"})
        while True:
            event = ws.receive_json()
            events.append(event)
            if event["type"] == "done":
                break
    finals = [e for e in events if e["type"] == "final"]
    assert len(finals) >= 3
    assert word_error_rate(dialogue.text, " ".join(f["text"] for f in finals)) <= 0.3
    assert {f["speaker"] for f in finals} == {"SPEAKER_00", "SPEAKER_01"}
    assert all(f["delay_s"] >= 0 for f in finals)
    starts = [f["start"] for f in finals]
    assert starts == sorted(starts)
    stored = client.get(f"/v1/transcriptions/{events[-1]['transcript_id']}", headers=headers)
    assert stored.json()["source"] == "stream" and len(stored.json()["segments"]) >= 3


def test_live_stream_takes_browser_webm_chunks(client, headers, dialogue):
    data = encode(dialogue.audio, "webm", "libopus")
    finals = []
    with client.websocket_connect("/v1/audio/stream?format=webm", headers=headers) as ws:
        assert ws.receive_json()["type"] == "ready"
        for i in range(0, len(data), 8192):
            ws.send_bytes(data[i : i + 8192])
        ws.send_json({"type": "end"})
        while (event := ws.receive_json())["type"] != "done":
            if event["type"] == "final":
                finals.append(event)
    assert len(finals) >= 3
    assert word_error_rate(dialogue.text, " ".join(f["text"] for f in finals)) <= 0.3
    assert finals[-1]["end"] <= len(dialogue.audio) / 16_000 + 0.5


def test_live_stream_rejects_unknown_model(client, headers):
    with client.websocket_connect("/v1/audio/stream?model=nope", headers=headers) as ws:
        event = ws.receive_json()
        assert event["type"] == "error" and event["param"] == "model"


def test_bundled_model_files_exist():
    assert (Path(bundled_model_path()) / "model.bin").is_file()
