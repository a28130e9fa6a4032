"""`nemo ingest`, `nemo search`, `nemo memory-ask`: the RAG memory from the command line.

`memory_answer()` is the function a `nemo ask --memory` option calls: it streams an answer
from the user's memory with citations.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from nemo_server.commands.http import client, fail_on_error

_console = Console()
_err = Console(stderr=True)
MEDIA = {
    ".txt": "text/plain",
    ".text": "text/plain",
    ".md": "text/markdown",
    ".markdown": "text/markdown",
    ".html": "text/html",
    ".htm": "text/html",
    ".pdf": "application/pdf",
    ".json": "application/json",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
}


def register(app: typer.Typer) -> None:
    app.command("ingest")(ingest)
    app.command("search")(search)
    app.command("memory-ask")(memory_ask)


def expand(paths: list[Path]) -> list[Path]:
    """Files named, plus supported files found under named folders (sorted, hidden skipped)."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += sorted(
                p
                for p in path.rglob("*")
                if p.is_file()
                and p.suffix.lower() in MEDIA
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
        elif path.is_file():
            files.append(path)
        else:
            raise typer.BadParameter(f"no such file or folder: {path}")
    return files


def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders to add to your memory.")],
    collection: Annotated[str, typer.Option(help="Collection to add them to.")] = "default",
    source: Annotated[
        str | None, typer.Option(help="Source label stored with each document.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON line per file.")] = False,
) -> None:
    """Add documents (text, Markdown, HTML, PDF, DOCX, transcript JSON) to your memory."""
    files = expand(paths)
    if not files:
        raise typer.BadParameter("no supported files found (txt, md, html, pdf, docx, json)")
    failed = added = duplicates = 0
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
    with client() as http, Progress(*columns, console=_err, disable=as_json) as progress:
        task = progress.add_task("ingesting", total=len(files))
        for path in files:
            progress.update(task, description=f"ingesting {path.name[:40]}")
            form = {"collection": collection, **({"source": source} if source else {})}
            media = MEDIA.get(path.suffix.lower(), "application/octet-stream")
            with path.open("rb") as handle:
                response = http.post(
                    "/v1/rag/documents", files={"file": (path.name, handle, media)}, data=form
                )
            progress.advance(task)
            if response.status_code >= 400:
                failed += 1
                message = _message(response)
                if as_json:
                    typer.echo(
                        json.dumps(
                            {"file": str(path), "status": response.status_code, "error": message}
                        )
                    )
                else:
                    progress.console.print(f"[red]{path}: {response.status_code} {message}[/red]")
                continue
            doc = response.json()
            duplicates += bool(doc.get("deduplicated"))
            added += not doc.get("deduplicated")
            if as_json:
                typer.echo(
                    json.dumps({"file": str(path), "status": response.status_code, "document": doc})
                )
    if not as_json:
        _err.print(f"added {added}, already there {duplicates}, failed {failed}")
    if failed:
        raise typer.Exit(1)


def _message(response: httpx.Response) -> str:
    try:
        return str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return response.text[:300]


def search(
    query: Annotated[str, typer.Argument(help="What to look for.")],
    k: Annotated[int, typer.Option("-k", help="How many hits.")] = 5,
    collection: Annotated[str | None, typer.Option(help="Only this collection.")] = None,
    speaker: Annotated[
        str | None, typer.Option(help="Only transcript chunks with this speaker.")
    ] = None,
    mode: Annotated[str, typer.Option(help="hybrid, dense or lexical.")] = "hybrid",
    as_json: Annotated[bool, typer.Option("--json", help="Print the raw JSON answer.")] = False,
) -> None:
    """Search your memory (hybrid semantic + keyword by default)."""
    body: dict[str, Any] = {"query": query, "k": k, "mode": mode}
    if collection:
        body["collection"] = collection
    if speaker:
        body["speaker"] = speaker
    with client(timeout=60) as http:
        response = http.post("/v1/rag/search", json=body)
    fail_on_error(response)
    results = response.json()["results"]
    if as_json:
        typer.echo(json.dumps(response.json(), indent=2))
        return
    if not results:
        _console.print("nothing found")
        return
    table = Table("#", "score", "title", "where", "text", show_lines=True)
    for n, hit in enumerate(results, start=1):
        text = hit["text"] if len(hit["text"]) < 300 else hit["text"][:297] + "..."
        table.add_row(
            str(n), f"{hit['score']:.3f}", hit["title"], hit["citation"].get("label", ""), text
        )
    _console.print(table)


def stream_memory_answer(
    http: httpx.Client, question: str, *, k: int = 6, collection: str | None = None
) -> Iterator[dict[str, Any]]:
    """Events of `POST /v1/rag/answer` (citations, delta, done, error) as they arrive."""
    body: dict[str, Any] = {"query": question, "k": k, "stream": True}
    if collection:
        body["collection"] = collection
    with http.stream("POST", "/v1/rag/answer", json=body) as response:
        if response.status_code >= 400:
            response.read()
            fail_on_error(response)
        for line in response.iter_lines():
            if line.startswith("data: ") and line[6:] != "[DONE]":
                yield json.loads(line[6:])


def memory_answer(
    question: str, *, k: int = 6, collection: str | None = None, echo: bool = True
) -> dict[str, Any]:
    """Answer `question` from the user's memory, printing it as it streams; for `nemo ask --memory`."""
    result: dict[str, Any] = {"answer": "", "citations": []}
    with client() as http:
        for event in stream_memory_answer(http, question, k=k, collection=collection):
            if event["type"] == "citations":
                result["citations"] = event["citations"]
            elif event["type"] == "delta" and echo:
                typer.echo(event["text"], nl=False)
            elif event["type"] == "done":
                result["answer"], result["cited"] = event["answer"], event["cited"]
            elif event["type"] == "error":
                typer.secho(f"\nerror: {event['error']['message']}", fg="red", err=True)
                raise typer.Exit(1)
    if echo:
        typer.echo("")
        by_index = {c["index"]: c for c in result["citations"]}
        for n in result.get("cited", []):
            c = by_index[n]
            where = f", {c['label']}" if c.get("label") else ""
            _err.print(f"[{n}] {c['title']}{where}")
    return result


def memory_ask(
    question: Annotated[str, typer.Argument(help="Your question.")],
    k: Annotated[int, typer.Option("-k", help="How many memory chunks to give the model.")] = 6,
    collection: Annotated[str | None, typer.Option(help="Only this collection.")] = None,
) -> None:
    """Ask a question answered from your memory, with citations."""
    memory_answer(question, k=k, collection=collection)
