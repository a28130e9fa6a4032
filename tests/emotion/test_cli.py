"""`nemo emotion` and `nemo emotion-audio` against a mocked gateway."""

from __future__ import annotations

import json

import httpx
import pytest
import typer
from typer.testing import CliRunner

from nemo_server.commands import emotion as cli

SEGMENT = {
    "start": 0.0,
    "end": 2.0,
    "speaker": "SPEAKER_00",
    "text": "so sad",
    "arousal": -0.4,
    "valence": -0.7,
    "text_emotion": {"label": "sadness"},
}


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch) -> tuple[typer.Typer, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/v1/emotion/text":
            texts = json.loads(request.content)["inputs"]
            if texts == ["boom"]:
                return httpx.Response(422, json={"error": {"message": "inputs: too many"}})
            result = {
                "label": "joy",
                "scores": {"joy": 0.9},
                "sentiment": {"label": "positive", "score": 0.8},
            }
            return httpx.Response(200, json={"model": "m", "results": [result] * len(texts)})
        speaker = {
            "speaker": "SPEAKER_00",
            "dominant_emotion": "sadness",
            "mean_arousal": -0.4,
            "mean_valence": -0.7,
            "seconds": 2.0,
        }
        return httpx.Response(200, json={"segments": [SEGMENT], "speakers": [speaker]})

    def fake_client(timeout: float = 300.0) -> httpx.Client:
        return httpx.Client(base_url="http://gateway", transport=httpx.MockTransport(handler))

    monkeypatch.setattr(cli, "client", fake_client)
    app = typer.Typer()
    cli.register(app)
    app.command("noop")(lambda: None)  # a second command keeps typer's subcommand mode
    return app, seen


def test_emotion_prints_a_table_and_sends_the_texts(app) -> None:
    typer_app, seen = app
    result = CliRunner().invoke(typer_app, ["emotion", "what a day", "hello"])
    assert result.exit_code == 0, result.output
    assert "joy" in result.output and "positive" in result.output
    assert json.loads(seen[0].content) == {"inputs": ["what a day", "hello"], "store": False}


def test_emotion_reports_errors_and_reads_stdin(app) -> None:
    typer_app, _ = app
    failed = CliRunner().invoke(typer_app, ["emotion", "boom"])
    assert failed.exit_code == 1 and "too many" in failed.output
    piped = CliRunner().invoke(typer_app, ["emotion", "--json"], input="one\n\ntwo\n")
    assert piped.exit_code == 0 and len(json.loads(piped.output)["results"]) == 2


def test_emotion_audio_uploads_the_file(app, tmp_path) -> None:
    typer_app, seen = app
    audio = tmp_path / "talk.wav"
    audio.write_bytes(b"RIFF....WAVE")
    result = CliRunner().invoke(typer_app, ["emotion-audio", str(audio), "--language", "en"])
    assert result.exit_code == 0, result.output
    assert "sadness" in result.output and "SPEAKER_00" in result.output
    assert seen[0].url.path == "/v1/emotion/audio" and b'filename="talk.wav"' in seen[0].content
