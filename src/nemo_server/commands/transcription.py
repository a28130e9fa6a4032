"""`nemo transcribe FILE`: transcribe a recording through the gateway, with a progress bar.

The file goes up as a durable job (so long recordings survive restarts and yield the GPU);
the command follows its progress, then prints the transcript in the chosen format.
"""

from __future__ import annotations

import json
import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

from nemo_server.commands.http import client, fail_on_error

_console = Console(stderr=True)


class Format(StrEnum):
    text = "text"
    srt = "srt"
    vtt = "vtt"
    json = "json"
    rttm = "rttm"


def register(app: typer.Typer) -> None:
    app.command("transcribe")(transcribe)


def transcribe(
    file: Annotated[
        Path,
        typer.Argument(
            exists=True,
            dir_okay=False,
            readable=True,
            help="Audio file: wav, flac, mp3, m4a, ogg, webm...",
        ),
    ],
    diarize: Annotated[bool, typer.Option("--diarize", help="Label who speaks when.")] = False,
    format: Annotated[Format, typer.Option("--format", "-f", help="Output format.")] = Format.text,
    model: Annotated[str, typer.Option(help="ASR model (whisper-1 is the default).")] = "whisper-1",
    language: Annotated[str | None, typer.Option(help="Language code, e.g. en.")] = None,
    speakers: Annotated[int | None, typer.Option(help="Exact number of speakers.")] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here, not stdout.")
    ] = None,
    poll: Annotated[float, typer.Option(help="Seconds between progress checks.", min=0.05)] = 0.5,
) -> None:
    """Transcribe FILE (optionally with speakers) and print the transcript."""
    if format is Format.rttm and not diarize:
        raise typer.BadParameter("--format rttm needs --diarize", param_hint="--format")
    form: dict[str, str] = {"model": model, "diarize": str(diarize).lower()}
    if language:
        form["language"] = language
    if speakers:
        form["num_speakers"] = str(speakers)
    with client() as http:
        with file.open("rb") as handle:
            response = http.post(
                "/v1/transcriptions/jobs",
                files={"file": (file.name, handle, "application/octet-stream")},
                data=form,
            )
        fail_on_error(response)
        job = response.json()
        job = _follow(http, job, poll)
        if job["status"] != "completed":
            typer.secho(
                f"job {job['id']} {job['status']}: {job.get('error') or ''}", fg="red", err=True
            )
            raise typer.Exit(1)
        wanted = "verbose_json" if format is Format.json else format.value
        result = http.get(
            f"/v1/transcriptions/jobs/{job['id']}/result", params={"response_format": wanted}
        )
        fail_on_error(result)
    body = json.dumps(result.json(), indent=2) if format is Format.json else result.text
    if output:
        output.write_text(body)
        _console.print(f"wrote {output}")
    else:
        typer.echo(body.rstrip("\n"))


def _follow(http: object, job: dict, poll: float) -> dict:
    """Show the job's progress until it finishes; return its final state."""
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=_console, transient=True) as progress:
        task = progress.add_task(f"transcribing ({job['duration']:.0f} s of audio)", total=1.0)
        try:
            while job["status"] not in ("completed", "failed", "cancelled"):
                time.sleep(poll)
                response = http.get(f"/v1/transcriptions/jobs/{job['id']}")  # type: ignore[attr-defined]
                fail_on_error(response)
                job = response.json()
                label = "waiting for the GPU" if job["status"] == "waiting_gpu" else "transcribing"
                progress.update(
                    task,
                    completed=job["progress"],
                    description=f"{label} ({job['duration']:.0f} s of audio)",
                )
        except KeyboardInterrupt:
            http.post(f"/v1/transcriptions/jobs/{job['id']}/cancel")  # type: ignore[attr-defined]
            _console.print(f"cancelled job {job['id']}")
            raise typer.Exit(130) from None
    return job
