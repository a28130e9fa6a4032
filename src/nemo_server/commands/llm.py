"""`nemo chat` (interactive, streaming, saved as a conversation) and `nemo ask "..."`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console

from nemo_server.commands.http import client, fail_on_error

_err = Console(stderr=True)


def register(app: typer.Typer) -> None:
    app.command("chat")(chat)
    app.command("ask")(ask)


def stream_chat(http: httpx.Client, body: dict[str, Any]) -> Iterator[str]:
    """POST a streamed chat completion; yield the text pieces as they arrive."""
    with http.stream("POST", "/v1/chat/completions", json={**body, "stream": True}) as response:
        if response.status_code >= 400:
            response.read()
            fail_on_error(response)
        for line in response.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            event = json.loads(line[len("data: ") :])
            if "error" in event:
                typer.secho(f"\nerror: {event['error']['message']}", fg="red", err=True)
                raise typer.Exit(1)
            for choice in event.get("choices", []):
                piece = choice.get("delta", {}).get("content")
                if piece:
                    yield piece


def _sampling(
    model: str | None, max_tokens: int | None, temperature: float | None
) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if model:
        body["model"] = model
    if max_tokens:
        body["max_tokens"] = max_tokens
    if temperature is not None:
        body["temperature"] = temperature
    return body


ModelOpt = Annotated[str | None, typer.Option(help="Model id (see GET /v1/models).")]
MaxTokensOpt = Annotated[int | None, typer.Option(help="Most tokens per answer.")]
TemperatureOpt = Annotated[float | None, typer.Option(help="0 = deterministic, up to 2.")]
SystemOpt = Annotated[str | None, typer.Option(help="A system prompt.")]


def ask(
    question: Annotated[str, typer.Argument(help="Your question.")],
    model: ModelOpt = None,
    system: SystemOpt = None,
    max_tokens: MaxTokensOpt = None,
    temperature: TemperatureOpt = None,
    json_schema: Annotated[
        Path | None,
        typer.Option(exists=True, dir_okay=False, help="Answer as JSON matching this schema file."),
    ] = None,
    memory: Annotated[
        bool, typer.Option(help="Answer from your memory (RAG), with citations.")
    ] = False,
) -> None:
    """Ask one question; the answer streams to stdout."""
    if memory:
        from nemo_server.commands.rag import memory_answer

        memory_answer(question)
        return
    messages = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": question})
    body = {"messages": messages, **_sampling(model, max_tokens, temperature)}
    if json_schema is not None:
        try:
            schema = json.loads(json_schema.read_text())
        except ValueError as exc:
            raise typer.BadParameter(f"{json_schema} is not JSON: {exc}") from None
        body["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": json_schema.stem, "schema": schema},
        }
    with client() as http:
        for piece in stream_chat(http, body):
            typer.echo(piece, nl=False)
    typer.echo("")


def chat(
    model: ModelOpt = None,
    system: SystemOpt = None,
    conversation: Annotated[
        str | None, typer.Option(help="Continue this conversation id instead of a new one.")
    ] = None,
    save: Annotated[bool, typer.Option(help="Keep the chat as a conversation.")] = True,
    max_tokens: MaxTokensOpt = None,
    temperature: TemperatureOpt = None,
) -> None:
    """Chat interactively; answers stream as they are written. /exit or Ctrl-D ends."""
    sampling = _sampling(model, max_tokens, temperature)
    history: list[dict[str, str]] = []
    with client() as http:
        conversation_id = conversation
        if conversation_id is None and save:
            response = http.post(
                "/v1/conversations", json={"model": model, "system_prompt": system}
            )
            fail_on_error(response)
            conversation_id = response.json()["id"]
        elif system and not conversation_id:
            history.append({"role": "system", "content": system})
        if conversation_id:
            _err.print(f"[dim]conversation {conversation_id}[/dim]")
        while True:
            try:
                line = typer.prompt("you", prompt_suffix="> ")
            except (EOFError, typer.Abort):
                break
            if line.strip() in ("/exit", "/quit"):
                break
            if not line.strip():
                continue
            message = {"role": "user", "content": line}
            body: dict[str, Any] = {**sampling}
            if conversation_id:  # the service keeps the history
                body.update(conversation_id=conversation_id, messages=[message])
            else:
                body["messages"] = [*history, message]
            reply = []
            for piece in stream_chat(http, body):
                reply.append(piece)
                typer.echo(piece, nl=False)
            typer.echo("")
            history += [message, {"role": "assistant", "content": "".join(reply)}]
