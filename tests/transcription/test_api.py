"""`POST /v1/audio/transcriptions` and stored transcripts, over fake engines."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from nemo_server.common.testing import BOB, internal_headers
from nemo_server.transcription.settings import TranscriptionSettings
from tests.transcription.conftest import tone_wav

WAV = tone_wav([0.1, 0.2, 0.3, 0.7, 0.8])


def post(client: TestClient, headers: dict[str, str], data: bytes = WAV, **form: Any) -> Any:
    files = {"file": ("talk.wav", data, "audio/wav")}
    return client.post("/v1/audio/transcriptions", headers=headers, files=files, data=form)


def test_json_transcription_is_stored_for_its_owner_only(client, headers, common_settings):
    response = post(client, headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["text"] == "w10 w20 w30 w70 w80"
    stored = client.get(f"/v1/transcriptions/{body['transcript_id']}", headers=headers)
    assert stored.status_code == 200
    assert [w["word"] for w in stored.json()["words"]] == ["w10", "w20", "w30", "w70", "w80"]
    listed = client.get("/v1/transcriptions", headers=headers).json()["data"]
    assert [t["id"] for t in listed] == [body["transcript_id"]]
    bob = internal_headers(common_settings, BOB)
    assert client.get(f"/v1/transcriptions/{body['transcript_id']}", headers=bob).status_code == 404
    assert client.get("/v1/transcriptions", headers=bob).json()["data"] == []
    assert (
        client.delete(f"/v1/transcriptions/{body['transcript_id']}", headers=bob).status_code == 404
    )
    assert (
        client.delete(f"/v1/transcriptions/{body['transcript_id']}", headers=headers).status_code
        == 204
    )


def test_verbose_json_with_words_and_speakers(client, headers):
    response = post(
        client,
        headers,
        response_format="verbose_json",
        diarize="true",
        **{"timestamp_granularities[]": ["word", "segment"]},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["language"] == "english" and body["duration"] > 4
    assert body["speakers"] == ["SPEAKER_00", "SPEAKER_01"]
    # The fake ASR groups three words per segment; the speaker change splits the second one.
    assert [(s["text"], s["speaker"]) for s in body["segments"]] == [
        ("w10 w20 w30", "SPEAKER_00"),
        ("w70 w80", "SPEAKER_01"),
    ]
    assert [w["speaker"] for w in body["words"]] == ["SPEAKER_00"] * 3 + ["SPEAKER_01"] * 2
    starts = [w["start"] for w in body["words"]]
    assert starts == sorted(starts)


def test_text_srt_vtt_and_rttm(client, headers):
    assert post(client, headers, response_format="text").text == "w10 w20 w30 w70 w80\n"
    srt = post(client, headers, response_format="srt", diarize="true").text
    assert srt.startswith("1\n00:00:00,100 --> 00:00:02,900\n[SPEAKER_00] w10 w20 w30")
    vtt = post(client, headers, response_format="vtt").text
    assert vtt.startswith("WEBVTT\n\n00:00:00.100 --> ") and "w70 w80" in vtt
    rttm = post(client, headers, response_format="rttm", diarize="true", num_speakers="2").text
    lines = [line.split() for line in rttm.splitlines()]
    assert all(line[0] == "SPEAKER" and line[1] == "talk" for line in lines)
    assert {line[7] for line in lines} == {"SPEAKER_00", "SPEAKER_01"}


def test_silence_gives_empty_transcripts_in_every_format(client, headers):
    silence = tone_wav([0.0, 0.0])
    body = post(client, headers, data=silence, response_format="verbose_json", diarize="true")
    assert body.status_code == 200 and body.json()["segments"] == []
    rttm = post(client, headers, data=silence, response_format="rttm", diarize="true")
    assert rttm.status_code == 200 and rttm.text == ""
    assert post(client, headers, data=silence, response_format="srt").text == ""


def test_whisper_1_aliases_the_default_and_unknown_models_are_404(client, headers):
    assert post(client, headers, model="whisper-1").status_code == 200
    assert post(client, headers, model="whisper-tiny.en").status_code == 200
    missing = post(client, headers, model="gpt-4o-transcribe")
    assert missing.status_code == 404
    assert missing.json()["error"]["param"] == "model"
    models = client.get("/v1/audio/models", headers=headers).json()["data"]
    assert models == [
        {"id": "whisper-tiny.en", "object": "model", "owned_by": "nemo", "aliases": ["whisper-1"]}
    ]


def test_bad_input_gets_clear_4xx(client, headers):
    not_audio = post(client, headers, data=b"just some text, certainly not audio" * 20)
    assert not_audio.status_code == 415
    assert "not audio" in not_audio.json()["error"]["message"]
    png = post(client, headers, data=b"\x89PNG\r\n\x1a\n" + b"\0" * 200)
    assert png.status_code == 415
    truncated = post(client, headers, data=WAV[:100])
    assert truncated.status_code == 400
    assert truncated.json()["error"]["param"] == "file"
    empty = post(client, headers, data=b"")
    assert empty.status_code == 400
    assert client.post("/v1/audio/transcriptions", headers=headers).status_code == 422
    bad_format = post(client, headers, response_format="docx")
    assert (
        bad_format.status_code == 422 and bad_format.json()["error"]["param"] == "response_format"
    )


def test_invalid_options_name_their_field(client, headers):
    german = post(client, headers, language="de")
    assert german.status_code == 422 and german.json()["error"]["param"] == "language"
    both = post(client, headers, diarize="true", num_speakers="2", min_speakers="1")
    assert both.status_code == 400 and both.json()["error"]["param"] == "num_speakers"
    inverted = post(client, headers, diarize="true", min_speakers="3", max_speakers="2")
    assert inverted.status_code == 400
    too_many = post(client, headers, diarize="true", num_speakers="99")
    assert too_many.status_code == 422 and too_many.json()["error"]["param"] == "num_speakers"
    rttm = post(client, headers, response_format="rttm")
    assert rttm.status_code == 400 and rttm.json()["error"]["param"] == "response_format"


def test_too_large_and_too_long_uploads_get_413(make_client, settings, headers):
    small = TranscriptionSettings(
        common=settings.common, preload=False, max_body_bytes=300_000, max_sync_audio_s=3
    )
    with make_client(settings=small) as client:
        big = post(client, headers, data=b"\0" * 400_000)
        assert big.status_code == 413
        long = post(client, headers)  # 5 s of audio over a 3 s limit
        assert long.status_code == 413
        assert "/v1/transcriptions/jobs" in long.json()["error"]["message"]


def test_requests_without_internal_token_are_refused(client):
    assert post(client, {}).status_code == 401
