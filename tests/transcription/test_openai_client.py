"""The official `openai` client works against the endpoint unchanged (fake engines)."""

from __future__ import annotations

import pytest

from tests.transcription.conftest import tone_wav

openai = pytest.importorskip("openai")


def test_openai_client_transcribes_with_word_timestamps(client, headers):
    token = headers["Authorization"].split(" ", 1)[1]
    api = openai.OpenAI(base_url="http://testserver/v1", api_key=token, http_client=client)
    audio = ("talk.wav", tone_wav([0.1, 0.2, 0.3]), "audio/wav")
    plain = api.audio.transcriptions.create(model="whisper-1", file=audio)
    assert plain.text == "w10 w20 w30"
    verbose = api.audio.transcriptions.create(
        model="whisper-1",
        file=audio,
        response_format="verbose_json",
        timestamp_granularities=["word", "segment"],
    )
    assert [w.word for w in verbose.words] == ["w10", "w20", "w30"]
    assert verbose.segments[0].start == pytest.approx(0.1)
    text = api.audio.transcriptions.create(model="whisper-1", file=audio, response_format="srt")
    assert "00:00:00,100 --> " in text
    with pytest.raises(openai.NotFoundError):
        api.audio.transcriptions.create(model="gpt-4o-transcribe", file=audio)
