"""`nemo emotion TEXT...` and `nemo emotion-audio FILE`: emotion of texts and of speech."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from nemo_server.commands.http import client, fail_on_error

_console = Console()


def register(app: typer.Typer) -> None:
    app.command("emotion")(emotion)
    app.command("emotion-audio")(emotion_audio)


def emotion(
    texts: Annotated[
        list[str] | None, typer.Argument(help="Texts to analyse; none reads lines from stdin.")
    ] = None,
    store: Annotated[bool, typer.Option(help="Keep the results in your history.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the raw JSON answer.")] = False,
) -> None:
    """Emotion (7 labels) and sentiment of each text."""
    inputs = texts or [line.strip() for line in sys.stdin if line.strip()]
    if not inputs:
        raise typer.BadParameter("give at least one text (arguments or stdin lines)")
    with client() as http:
        response = http.post("/v1/emotion/text", json={"inputs": inputs, "store": store})
    fail_on_error(response)
    body = response.json()
    if as_json:
        typer.echo(json.dumps(body, indent=2))
        return
    table = Table("text", "emotion", "score", "sentiment")
    for text, result in zip(inputs, body["results"], strict=True):
        score = result["scores"][result["label"]]
        sentiment = result["sentiment"]
        table.add_row(
            text[:60],
            result["label"],
            f"{score:.2f}",
            f"{sentiment['label']} ({sentiment['score']:+.2f})",
        )
    _console.print(table)


def emotion_audio(
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="Speech recording.")
    ],
    language: Annotated[str | None, typer.Option(help="Language code, e.g. en.")] = None,
    store: Annotated[bool, typer.Option(help="Keep the segments in your history.")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print the raw JSON answer.")] = False,
) -> None:
    """Emotion of a recording per segment and speaker (prosody plus what was said)."""
    form = {"store": str(store).lower()}
    if language:
        form["language"] = language
    with _console.status("transcribing and analysing..."), client(timeout=1800) as http:
        with file.open("rb") as handle:
            response = http.post(
                "/v1/emotion/audio", files={"file": (file.name, handle)}, data=form
            )
    fail_on_error(response)
    body = response.json()
    if as_json:
        typer.echo(json.dumps(body, indent=2))
        return
    table = Table("time", "speaker", "emotion", "arousal", "valence", "text")
    for s in body["segments"]:
        table.add_row(
            f"{s['start']:.1f}-{s['end']:.1f}",
            s["speaker"] or "-",
            s["text_emotion"]["label"],
            f"{s['arousal']:+.2f}",
            f"{s['valence']:+.2f}",
            s["text"][:50],
        )
    _console.print(table)
    for sp in body["speakers"]:
        _console.print(
            f"{sp['speaker'] or 'unknown'}: {sp['dominant_emotion']}, "
            f"arousal {sp['mean_arousal']:+.2f}, valence {sp['mean_valence']:+.2f}, "
            f"{sp['seconds']:.0f} s"
        )
