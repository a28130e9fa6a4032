"""`nemo ml ...` commands, run against the ML app in process (the gateway is not needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from nemo_server.commands import ml as ml_commands
from nemo_server.common.testing import ALICE, internal_headers
from nemo_server.ml.app import create_app
from tests.ml.conftest import FAKE


@pytest.fixture
def cli(ml_settings, monkeypatch: pytest.MonkeyPatch) -> typer.Typer:
    app = create_app(ml_settings, job_target=FAKE)

    def client(timeout: float = 300.0) -> TestClient:
        return TestClient(app, headers=internal_headers(ml_settings.common, ALICE))

    monkeypatch.setattr(ml_commands, "client", client)
    root = typer.Typer()
    ml_commands.register(root)
    return root


def test_upload_run_and_verify(cli: typer.Typer, tmp_path: Path) -> None:
    runner = CliRunner()
    data = tmp_path / "d.csv"
    data.write_text("x,y\n" + "".join(f"{i},{2 * i}\n" for i in range(20)))
    result = runner.invoke(cli, ["ml", "upload", str(data)])
    assert result.exit_code == 0, result.output
    assert "integer" in result.output
    listed = runner.invoke(cli, ["ml", "datasets"])
    assert listed.exit_code == 0, listed.output
    with ml_commands.client() as http:
        dataset_id = http.get("/v1/ml/datasets").json()["data"][0]["id"]
    run = runner.invoke(cli, ["ml", "symbolic", dataset_id, "y", "--budget", "0.2"])
    assert run.exit_code == 0, run.output
    assert json.loads(run.output)["echo"]["target"] == "y"
    claims = tmp_path / "claims.json"
    claims.write_text(json.dumps([{"type": "mean", "column": "x", "op": "approx", "value": 9.5}]))
    verified = runner.invoke(cli, ["ml", "verify", dataset_id, str(claims)])
    assert verified.exit_code == 0 and "supported" in verified.output
    bad = runner.invoke(cli, ["ml", "automl", dataset_id, "nope"])
    assert bad.exit_code == 1
