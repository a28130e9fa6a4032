"""`nemo gpu` renders the admin status."""

from __future__ import annotations

import httpx
import pytest
import typer
from typer.testing import CliRunner

from nemo_server.commands import coordinator as command

STATUS = {
    "backend": "memory",
    "budget_source": "config",
    "budget_mb": 1000,
    "used_mb": 800,
    "free_mb": 200,
    "device": None,
    "grants_blocked_until": None,
    "totals": {"grants": 1},
    "leases": [
        {
            "id": "abcdef123456",
            "holder": "transcription:job-1",
            "priority": "background",
            "vram_mb": 800,
            "state": "granted",
            "preempt_requested": True,
        }
    ],
    "queue": [
        {
            "id": "0123456789ab",
            "holder": "llm:chat",
            "priority": "foreground",
            "vram_mb": 500,
            "state": "waiting",
            "preempt_requested": False,
        }
    ],
    "holders": {
        "transcription:job-1": {
            "grants": 1,
            "preempted": 1,
            "revoked": 0,
            "held_s": 2.5,
            "waited_s": 0.0,
        }
    },
}


def test_gpu_command_shows_budget_leases_and_queue(monkeypatch: pytest.MonkeyPatch) -> None:
    def fake_client(timeout: float = 30) -> httpx.Client:
        transport = httpx.MockTransport(lambda request: httpx.Response(200, json=STATUS))
        return httpx.Client(base_url="http://gateway", transport=transport)

    monkeypatch.setattr(command, "client", fake_client)
    app = typer.Typer()
    command.register(app)
    app.command("noop")(lambda: None)  # two commands, so `gpu` is a subcommand
    result = CliRunner().invoke(app, ["gpu"])
    assert result.exit_code == 0, result.output
    assert "800 / 1000 MB" in result.output
    assert "transcription:job-1" in result.output and "llm:chat" in result.output
