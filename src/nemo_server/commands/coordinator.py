"""`nemo gpu`: the GPU coordinator's view (admins): budget, leases, queue, per-holder figures."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from nemo_server.commands.http import client, fail_on_error

_console = Console()


def register(app: typer.Typer) -> None:
    app.command("gpu")(gpu)


def gpu(
    as_json: Annotated[bool, typer.Option("--json", help="Print the raw JSON answer.")] = False,
) -> None:
    """GPU budget, leases, queue and per-holder figures (admin only)."""
    with client(timeout=30) as http:
        response = http.get("/v1/gpu/status")
    fail_on_error(response)
    body: dict[str, Any] = response.json()
    if as_json:
        typer.echo(json.dumps(body, indent=2))
        return
    device = body.get("device") or {}
    source = f"{body['budget_source']}" + (f", {device.get('name')}" if device else "")
    _console.print(
        f"[bold]VRAM[/] {body['used_mb']} / {body['budget_mb']} MB leased ({source}; "
        f"backend {body['backend']})"
    )
    table = Table("lease", "holder", "priority", "MB", "state", "yield asked")
    for lease in body["leases"]:
        table.add_row(
            lease["id"][:8],
            lease["holder"],
            lease["priority"] or "",
            str(lease["vram_mb"]),
            lease["state"],
            "yes" if lease["preempt_requested"] else "",
        )
    for waiting in body["queue"]:
        table.add_row(
            waiting["id"][:8],
            waiting["holder"],
            waiting["priority"] or "",
            str(waiting["vram_mb"]),
            "waiting",
            "",
        )
    _console.print(table)
    holders = Table("holder", "grants", "pre-empted", "revoked", "held s", "waited s")
    for name, figures in sorted(body["holders"].items()):
        holders.add_row(
            name,
            *(f"{figures.get(k, 0):g}" for k in ("grants", "preempted", "revoked")),
            f"{figures.get('held_s', 0):.1f}",
            f"{figures.get('waited_s', 0):.1f}",
        )
    _console.print(holders)
