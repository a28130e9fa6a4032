"""POST /v1/emotion/audio with a fake transcriber: prosody per segment, speakers, errors."""

from __future__ import annotations

import numpy as np

from nemo_server.common.errors import ServiceUnavailable
from nemo_server.common.testing import ALICE, BOB, internal_headers
from nemo_server.emotion.engines.fake import FakeTranscriber
from tests.emotion.conftest import TRANSCRIPT, two_speaker_recording, voice, wav_bytes


def post_audio(client, settings, data: bytes, principal=ALICE, **form):
    return client.post(
        "/v1/emotion/audio",
        files={"file": ("talk.wav", data, "audio/wav")},
        data=form,
        headers=internal_headers(settings.common, principal),
    )


def test_segments_get_prosody_text_emotion_and_speakers(make_client, settings) -> None:
    transcriber = FakeTranscriber(TRANSCRIPT)
    client = make_client(transcriber=transcriber)
    response = post_audio(client, settings, two_speaker_recording(), language="en")
    assert response.status_code == 200, response.text
    body = response.json()
    assert transcriber.requests == [
        {
            "user": "u-alice",
            "bytes": len(two_speaker_recording()),
            "filename": "talk.wav",
            "language": "en",
        }
    ]
    assert body["language"] == "en" and abs(body["duration"] - 4.5) < 0.01
    assert body["source_id"] == "tr-123"  # the transcript's id links the stored segments
    quiet, lively = body["segments"]
    assert (quiet["start"], quiet["end"], quiet["speaker"]) == (0.0, 2.0, "SPEAKER_00")
    assert quiet["text"] == "I feel so sad today."
    assert quiet["text_emotion"]["label"] == "sadness"
    assert lively["text_emotion"]["label"] == "surprise"  # "wow" comes first
    # The pitch tracker finds each voice's pitch, and the loud lively voice is more aroused.
    assert abs(quiet["prosody"]["pitch_hz"] - 115) < 5
    assert abs(lively["prosody"]["pitch_hz"] - 230) < 12
    assert lively["prosody"]["energy_db"] > quiet["prosody"]["energy_db"] + 15
    assert lively["prosody"]["pitch_variability_st"] > quiet["prosody"]["pitch_variability_st"]
    assert lively["arousal"] > 0.3 > -0.3 > quiet["arousal"]
    assert lively["valence"] > quiet["valence"]
    assert quiet["prosody"]["speaking_rate_wps"] == 2.5  # 5 words in 2 s
    speakers = {s["speaker"]: s for s in body["speakers"]}
    assert speakers["SPEAKER_00"]["dominant_emotion"] == "sadness"
    assert speakers["SPEAKER_01"]["mean_arousal"] > speakers["SPEAKER_00"]["mean_arousal"]
    assert speakers["SPEAKER_00"]["seconds"] == 2.0


def test_segments_are_stored_for_the_insights_service(make_client, settings) -> None:
    client = make_client()
    body = post_audio(client, settings, two_speaker_recording(), source_id="meeting-7").json()
    assert body["source_id"] == "meeting-7"
    rows = client.get(
        "/v1/emotion/results?kind=segment&source_id=meeting-7",
        headers=internal_headers(settings.common, ALICE),
    ).json()["data"]
    assert [(r["speaker"], r["start"], r["label"]) for r in rows] == [
        ("SPEAKER_00", 0.0, "sadness"),
        ("SPEAKER_01", 2.5, "surprise"),
    ]
    assert rows[1]["arousal"] > rows[0]["arousal"]
    other = client.get("/v1/emotion/results", headers=internal_headers(settings.common, BOB))
    assert other.json()["data"] == []


def test_silence_and_odd_transcripts_do_not_fail(make_client, settings) -> None:
    transcript = {
        "language": "en",
        "segments": [
            {"start": 0.2, "end": 0.9, "text": "  "},
            {"start": "x", "end": 1, "text": "broken"},
            {"start": 3.0, "end": 99.0, "text": "past the end is clipped"},
            {"start": 50.0, "end": 60.0, "text": "wholly past the end"},
        ],
    }
    client = make_client(transcriber=FakeTranscriber(transcript))
    response = post_audio(client, settings, wav_bytes(np.zeros(16000 * 4)))
    assert response.status_code == 200, response.text
    segments = response.json()["segments"]
    assert [s["text"] for s in segments] == ["", "past the end is clipped"]
    assert segments[0]["text_emotion"]["label"] == "neutral"
    assert segments[1]["end"] == 4.0 and segments[1]["prosody"]["pitch_hz"] is None


def test_audio_errors_name_the_file(make_client, settings) -> None:
    transcriber = FakeTranscriber(TRANSCRIPT)
    client = make_client(transcriber=transcriber)
    empty = post_audio(client, settings, b"")
    assert empty.status_code == 400 and empty.json()["error"]["param"] == "file"
    not_audio = post_audio(client, settings, b"hello, this is a text file" * 20)
    assert not_audio.status_code in (400, 415) and not_audio.json()["error"]["param"] == "file"
    missing = client.post(
        "/v1/emotion/audio", data={"language": "en"}, headers=internal_headers(settings.common)
    )
    assert missing.status_code == 422 and missing.json()["error"]["param"] == "file"
    assert transcriber.requests == []


def test_audio_over_the_length_limit_is_413(make_client, settings) -> None:
    client = make_client(settings=settings.model_copy(update={"max_audio_seconds": 1.0}))
    response = post_audio(client, settings, wav_bytes(voice(2.0, 150, 0.2)))
    assert response.status_code == 413 and response.json()["error"]["param"] == "file"


def test_transcription_outage_is_503(make_client, settings) -> None:
    class Down:
        async def transcribe(self, *args, **kwargs):
            raise ServiceUnavailable("service 'transcription' is unavailable: refused")

    client = make_client(transcriber=Down())
    response = post_audio(client, settings, two_speaker_recording())
    assert response.status_code == 503
    assert "transcription" in response.json()["error"]["message"]


def test_upload_over_the_body_limit_is_413(make_client, settings) -> None:
    client = make_client(settings=settings.model_copy(update={"max_body_bytes": 4096}))
    response = post_audio(client, settings, wav_bytes(voice(1.0, 150, 0.2)))
    assert response.status_code == 413
