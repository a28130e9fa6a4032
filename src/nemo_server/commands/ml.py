"""`nemo ml ...`: datasets, AutoML, symbolic regression, causal inference, predictions, claims."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from nemo_server.commands.http import client, fail_on_error

_console = Console()
ml_app = typer.Typer(help="System 2: datasets, AutoML, symbolic regression, causal inference.")


def register(app: typer.Typer) -> None:
    app.add_typer(ml_app, name="ml")


def _wait(http: httpx.Client, job: dict[str, Any]) -> dict[str, Any]:
    """Poll a job with a progress bar until it ends."""
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=_console,
        transient=True,
    ) as bar:
        task = bar.add_task(job["kind"], total=1.0)
        while job["status"] in ("queued", "running"):
            time.sleep(0.5)
            response = http.get(f"/v1/ml/jobs/{job['id']}")
            fail_on_error(response)
            job = response.json()
            bar.update(
                task,
                completed=job["progress"],
                description=f"{job['kind']}: {job.get('message') or job['status']}",
            )
    if job["status"] != "succeeded":
        typer.secho(
            f"job {job['id']} {job['status']}: {job.get('error') or ''}", fg="red", err=True
        )
        raise typer.Exit(1)
    return job


def _start(path: str, body: dict[str, Any], wait: bool) -> None:
    with client() as http:
        response = http.post(path, json={k: v for k, v in body.items() if v is not None})
        fail_on_error(response)
        job = response.json()
        if not wait:
            typer.echo(job["id"])
            return
        job = _wait(http, job)
    typer.echo(json.dumps(job["result"], indent=2))


@ml_app.command("upload")
def upload(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV or Parquet.")],
    name: Annotated[str | None, typer.Option(help="Dataset name.")] = None,
) -> None:
    """Upload a dataset and print its inferred schema."""
    with client() as http, file.open("rb") as handle:
        response = http.post(
            "/v1/ml/datasets",
            files={"file": (file.name, handle)},
            data={"name": name} if name else None,
        )
    fail_on_error(response)
    body = response.json()
    table = Table("column", "type", "nulls", "unique", title=f"{body['id']} ({body['rows']} rows)")
    for col in body["columns"]:
        table.add_row(col["name"], col["dtype"], str(col["nulls"]), str(col["unique"]))
    _console.print(table)


@ml_app.command("datasets")
def list_datasets() -> None:
    """List your datasets."""
    with client() as http:
        response = http.get("/v1/ml/datasets")
    fail_on_error(response)
    table = Table("id", "name", "rows", "columns")
    for d in response.json()["data"]:
        table.add_row(d["id"], d["name"], str(d["rows"]), str(d["n_columns"]))
    _console.print(table)


@ml_app.command("automl")
def automl(
    dataset_id: str,
    target: str,
    task: Annotated[str | None, typer.Option(help="classification or regression.")] = None,
    budget: Annotated[float | None, typer.Option(help="Time budget in seconds.")] = None,
    wait: Annotated[bool, typer.Option(help="Wait and print the result.")] = True,
) -> None:
    """Train models with FLAML; prints the leaderboard, holdout metrics and model id."""
    _start(
        "/v1/ml/automl",
        {"dataset_id": dataset_id, "target": target, "task": task, "time_budget_s": budget},
        wait,
    )


@ml_app.command("symbolic")
def symbolic(
    dataset_id: str,
    target: str,
    features: Annotated[list[str] | None, typer.Option("--feature")] = None,
    engine: Annotated[str | None, typer.Option(help="nemo or gplearn.")] = None,
    budget: Annotated[float | None, typer.Option(help="Time budget in seconds.")] = None,
    wait: Annotated[bool, typer.Option(help="Wait and print the result.")] = True,
) -> None:
    """Find closed-form formulas for TARGET (a Pareto front)."""
    _start(
        "/v1/ml/symbolic-regression",
        {
            "dataset_id": dataset_id,
            "target": target,
            "features": features or None,
            "engine": engine,
            "time_budget_s": budget,
        },
        wait,
    )


@ml_app.command("causal")
def causal(
    dataset_id: str,
    treatment: str,
    outcome: str,
    confounders: Annotated[list[str] | None, typer.Option("--confounder")] = None,
    discover: Annotated[bool, typer.Option(help="Also discover the graph (PC).")] = False,
    wait: Annotated[bool, typer.Option(help="Wait and print the result.")] = True,
) -> None:
    """Estimate the effect of TREATMENT on OUTCOME with refutations."""
    _start(
        "/v1/ml/causal",
        {
            "dataset_id": dataset_id,
            "treatment": treatment,
            "outcome": outcome,
            "confounders": confounders or None,
            "discover": discover,
        },
        wait,
    )


@ml_app.command("job")
def job(job_id: str, cancel: Annotated[bool, typer.Option(help="Cancel it.")] = False) -> None:
    """Show (or cancel) a job."""
    with client() as http:
        if cancel:
            response = http.post(f"/v1/ml/jobs/{job_id}/cancel")
        else:
            response = http.get(f"/v1/ml/jobs/{job_id}")
    fail_on_error(response)
    typer.echo(json.dumps(response.json(), indent=2))


@ml_app.command("predict")
def predict(
    model_id: str,
    rows: Annotated[Path, typer.Argument(exists=True, help="JSON file: a list of row objects.")],
) -> None:
    """Predict with a trained model."""
    with client() as http:
        response = http.post(
            f"/v1/ml/models/{model_id}/predict", json={"rows": json.loads(rows.read_text())}
        )
    fail_on_error(response)
    typer.echo(json.dumps(response.json()["predictions"]))


@ml_app.command("verify")
def verify(
    dataset_id: str,
    claims: Annotated[Path, typer.Argument(exists=True, help="JSON file: a list of claims.")],
) -> None:
    """Check structured claims against a dataset."""
    with client() as http:
        response = http.post(
            "/v1/ml/verify",
            json={"dataset_id": dataset_id, "claims": json.loads(claims.read_text())},
        )
    fail_on_error(response)
    table = Table("#", "type", "verdict", "value")
    for r in response.json()["results"]:
        table.add_row(str(r["index"]), r["type"], r["verdict"], str(r["value"]))
    _console.print(table)
