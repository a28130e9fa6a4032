"""`nemo ask` and `nemo chat` against the service app (the gateway stood in by a test client)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from nemo_server.commands import llm as llm_commands
from nemo_server.llm.app import create_app
from nemo_server.llm.engines.fake import FakeModel
from nemo_server.llm.settings import LlmSettings


@pytest.fixture
def cli(
    monkeypatch: pytest.MonkeyPatch,
    settings: LlmSettings,
    fake: FakeModel,
    alice: dict[str, str],
) -> typer.Typer:
    app = create_app(settings, engine=fake)
    monkeypatch.setattr(
        llm_commands, "client", lambda timeout=300.0: TestClient(app, headers=alice)
    )
    cli = typer.Typer()
    llm_commands.register(cli)
    return cli


def test_ask_streams_the_answer(cli: typer.Typer, fake: FakeModel, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["ask", "Hi?", "--temperature", "0", "--max-tokens", "9"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "Hello from the fake model."
    assert fake.requests[-1].sampling.temperature == 0 and fake.requests[-1].max_tokens == 9
    schema = tmp_path / "answer.json"
    schema.write_text(json.dumps({"type": "object"}))
    result = CliRunner().invoke(cli, ["ask", "Hi?", "--json-schema", str(schema)])
    assert json.loads(result.output) == {"answer": "fake"}


def test_ask_reports_errors(cli: typer.Typer) -> None:
    result = CliRunner().invoke(cli, ["ask", "Hi?", "--model", "nope"])
    assert result.exit_code == 1
    assert "404" in result.output and "nope" in result.output


def test_chat_is_interactive_and_saved(
    cli: typer.Typer, settings: LlmSettings, alice: dict[str, str], fake: FakeModel
) -> None:
    result = CliRunner().invoke(cli, ["chat", "--system", "Be brief."], input="one\ntwo\n/exit\n")
    assert result.exit_code == 0, result.output
    assert result.output.count("Hello from the fake model.") == 2
    with TestClient(create_app(settings, engine=fake)) as c:
        conversations = c.get("/v1/conversations", headers=alice).json()["data"]
        assert len(conversations) == 1 and conversations[0]["message_count"] == 5
