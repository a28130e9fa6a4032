"""`nemo transcribe`, run against the service in-process (fake engines)."""

from __future__ import annotations

import typer
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from nemo_server.commands import transcription as command
from nemo_server.transcription.app import create_app
from nemo_server.transcription.engines.fake import FakeAsr, FakeDiarizer
from tests.transcription.conftest import tone_wav


def run(monkeypatch, settings, headers, *args: str):
    app = create_app(settings, asr_engine=FakeAsr(), diarizer=FakeDiarizer())
    monkeypatch.setattr(command, "client", lambda: TestClient(app, headers=headers))
    cli = typer.Typer()
    command.register(cli)
    cli.command("noop")(lambda: None)  # a second command keeps `transcribe` a subcommand
    return CliRunner().invoke(cli, ["transcribe", *args])


def test_transcribe_prints_text_and_srt_with_speakers(monkeypatch, settings, headers, tmp_path):
    audio = tmp_path / "meeting.wav"
    audio.write_bytes(tone_wav([0.2, 0.3, 0.8]))
    result = run(monkeypatch, settings, headers, str(audio), "--poll", "0.05")
    assert result.exit_code == 0, result.output
    assert "w20 w30 w80" in result.output
    result = run(
        monkeypatch, settings, headers, str(audio), "--diarize", "--format", "srt", "--poll", "0.05"
    )
    assert result.exit_code == 0, result.output
    assert "[SPEAKER_00] w20 w30" in result.output and "[SPEAKER_01] w80" in result.output


def test_transcribe_reports_service_errors(monkeypatch, settings, headers, tmp_path):
    bogus = tmp_path / "notes.wav"
    bogus.write_text("not audio at all" * 10)
    result = run(monkeypatch, settings, headers, str(bogus))
    assert result.exit_code == 1
    assert "415" in result.output
