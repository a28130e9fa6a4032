"""`nemo ingest`, `nemo search` and `nemo memory-ask` against the in-process service."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from nemo_server.commands import rag as rag_cli
from tests.rag.factory import PNG, make_pdf

cli = typer.Typer()
rag_cli.register(cli)


@pytest.fixture
def gateway(client: TestClient, alice: dict, monkeypatch: pytest.MonkeyPatch) -> TestClient:
    client.headers.update(alice)

    @contextlib.contextmanager
    def fake_client(timeout: float = 300.0) -> Iterator[TestClient]:
        yield client

    monkeypatch.setattr(rag_cli, "client", fake_client)
    return client


def test_ingest_folder_then_search_and_ask(gateway: TestClient, tmp_path: Path) -> None:
    (tmp_path / "notes.md").write_text("# Plants\n\nWater the fern every Tuesday.")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "report.pdf").write_bytes(make_pdf(["Solar panels produced 12 kWh."]))
    (tmp_path / "ignored.bin").write_bytes(b"\x00")
    runner = CliRunner()
    result = runner.invoke(cli, ["ingest", str(tmp_path), "--collection", "home"])
    assert result.exit_code == 0, result.output
    assert "added 2, already there 0, failed 0" in result.output
    again = runner.invoke(cli, ["ingest", str(tmp_path / "notes.md"), "--collection", "home"])
    assert "already there 1" in again.output
    found = runner.invoke(cli, ["search", "solar panels", "-k", "1", "--json"])
    assert (
        found.exit_code == 0 and "12 kWh" in found.output and '"collection": "home"' in found.output
    )
    answer = runner.invoke(cli, ["memory-ask", "when do I water the fern"])
    assert answer.exit_code == 0 and "Nemo keeps memory [1]." in answer.output
    assert "[1] notes.md" in answer.output


def test_ingest_reports_bad_files_and_fails(gateway: TestClient, tmp_path: Path) -> None:
    (tmp_path / "photo.png").write_bytes(PNG)
    result = CliRunner().invoke(cli, ["ingest", str(tmp_path / "photo.png")])
    assert result.exit_code == 1 and "415" in result.output and "image/png" in result.output
    missing = CliRunner().invoke(cli, ["ingest", str(tmp_path / "nope.txt")])
    assert missing.exit_code != 0
