"""HTTP routes of the ML service, mounted at the public paths under `/v1/ml`."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, File, Form, Query, Request, UploadFile

from nemo_server.common.app import service_router
from nemo_server.common.auth import Principal, current_principal
from nemo_server.ml import schemas
from nemo_server.ml.models import DatasetRow, JobRow, ModelRow
from nemo_server.ml.service import MLService

router = service_router(prefix="/v1/ml", tags=["ml"])


def _service(request: Request) -> MLService:
    return request.app.state.ml


def _dataset(row: DatasetRow) -> schemas.DatasetOut:
    return schemas.DatasetOut(
        id=row.id,
        name=row.name,
        format=row.source_format,
        rows=row.n_rows,
        n_columns=row.n_columns,
        size_bytes=row.size_bytes,
        columns=[schemas.ColumnInfo(**c) for c in row.columns],
        created_at=row.created_at,
    )


def _job(row: JobRow) -> schemas.JobOut:
    return schemas.JobOut(
        id=row.id,
        kind=row.kind,
        status=row.status,
        progress=row.progress,  # type: ignore[arg-type]
        message=row.message,
        dataset_id=row.dataset_id,
        request=row.request,
        result=row.result,
        error=row.error,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
    )


def _model(row: ModelRow) -> schemas.ModelOut:
    return schemas.ModelOut(
        id=row.id,
        job_id=row.job_id,
        dataset_id=row.dataset_id,
        task=row.task,
        target=row.target,
        features=row.features,
        info=row.info,
        created_at=row.created_at,
    )


@router.post("/datasets", status_code=201, response_model=schemas.DatasetOut)
def upload_dataset(
    file: UploadFile = File(..., description="A CSV or Parquet file."),
    name: str | None = Form(default=None, max_length=255),
    principal: Principal = Depends(current_principal),
    service: MLService = Depends(_service),
) -> schemas.DatasetOut:
    """Upload a dataset (CSV or Parquet); column types are inferred."""
    data = file.file.read(service.settings.max_dataset_bytes + 1)
    row = service.datasets.create(
        principal.user_id, name or file.filename or "dataset", file.content_type or "", data
    )
    return _dataset(row)


@router.get("/datasets", response_model=schemas.DatasetList)
def list_datasets(
    principal: Principal = Depends(current_principal), service: MLService = Depends(_service)
) -> schemas.DatasetList:
    """This user's datasets, newest first."""
    return schemas.DatasetList(data=[_dataset(r) for r in service.datasets.list(principal.user_id)])


@router.get("/datasets/{dataset_id}", response_model=schemas.DatasetOut)
def get_dataset(
    dataset_id: str,
    principal: Principal = Depends(current_principal),
    service: MLService = Depends(_service),
) -> schemas.DatasetOut:
    """A dataset's schema: columns with inferred types and statistics."""
    return _dataset(service.datasets.get(principal.user_id, dataset_id))


@router.get("/datasets/{dataset_id}/preview", response_model=schemas.Preview)
def preview_dataset(
    dataset_id: str,
    limit: int = Query(default=20, ge=1, le=1000),
    principal: Principal = Depends(current_principal),
    service: MLService = Depends(_service),
) -> schemas.Preview:
    """The first `limit` rows."""
    columns, rows = service.datasets.preview(principal.user_id, dataset_id, limit)
    return schemas.Preview(dataset_id=dataset_id, columns=columns, rows=rows)


@router.delete("/datasets/{dataset_id}", status_code=204)
def delete_dataset(
    dataset_id: str,
    principal: Principal = Depends(current_principal),
    service: MLService = Depends(_service),
) -> None:
    """Delete a dataset and its file."""
    service.datasets.delete(principal.user_id, dataset_id)


@router.post("/automl", status_code=202, response_model=schemas.JobOut)
def start_automl(
    body: schemas.AutoMLRequest,
    principal: Principal = Depends(current_principal),
    service: MLService = Depends(_service),
) -> schemas.JobOut:
    """Start an AutoML job; its result names the saved `model_id`."""
    return _job(service.start_automl(principal.user_id, body))


@router.post("/symbolic-regression", status_code=202, response_model=schemas.JobOut)
def start_symbolic(
    body: schemas.SymbolicRequest,
    principal: Principal = Depends(current_principal),
    service: MLService = Depends(_service),
) -> schemas.JobOut:
    """Start a symbolic-regression job; its result holds `best` and the `pareto` front."""
    return _job(service.start_symbolic(principal.user_id, body))


@router.post("/causal", status_code=202, response_model=schemas.JobOut)
def start_causal(
    body: schemas.CausalRequest,
    principal: Principal = Depends(current_principal),
    service: MLService = Depends(_service),
) -> schemas.JobOut:
    """Start a causal-inference job (DoWhy): effect, interval, refutations."""
    return _job(service.start_causal(principal.user_id, body))


@router.get("/jobs", response_model=schemas.JobList)
def list_jobs(
    limit: int = Query(default=100, ge=1, le=1000),
    principal: Principal = Depends(current_principal),
    service: MLService = Depends(_service),
) -> schemas.JobList:
    """This user's jobs, newest first."""
    return schemas.JobList(data=[_job(r) for r in service.jobs.list(principal.user_id, limit)])


@router.get("/jobs/{job_id}", response_model=schemas.JobOut)
def get_job(
    job_id: str,
    principal: Principal = Depends(current_principal),
    service: MLService = Depends(_service),
) -> schemas.JobOut:
    """A job with its status, progress and (when done) result."""
    return _job(service.jobs.get(principal.user_id, job_id))


@router.post("/jobs/{job_id}/cancel", response_model=schemas.JobOut)
def cancel_job(
    job_id: str,
    principal: Principal = Depends(current_principal),
    service: MLService = Depends(_service),
) -> schemas.JobOut:
    """Cancel a queued or running job (its worker process is stopped)."""
    return _job(service.runner.cancel(principal.user_id, job_id))


@router.get("/models", response_model=schemas.ModelList)
def list_models(
    principal: Principal = Depends(current_principal), service: MLService = Depends(_service)
) -> schemas.ModelList:
    """This user's trained models."""
    return schemas.ModelList(data=[_model(r) for r in service.list_models(principal.user_id)])


@router.get("/models/{model_id}", response_model=schemas.ModelOut)
def get_model(
    model_id: str,
    principal: Principal = Depends(current_principal),
    service: MLService = Depends(_service),
) -> schemas.ModelOut:
    """One trained model."""
    return _model(service.get_model(principal.user_id, model_id))


@router.delete("/models/{model_id}", status_code=204)
def delete_model(
    model_id: str,
    principal: Principal = Depends(current_principal),
    service: MLService = Depends(_service),
) -> None:
    """Delete a trained model."""
    service.delete_model(principal.user_id, model_id)


@router.post("/models/{model_id}/predict", response_model=schemas.PredictResponse)
def predict(
    model_id: str,
    body: schemas.PredictRequest,
    principal: Principal = Depends(current_principal),
    service: MLService = Depends(_service),
) -> dict[str, Any]:
    """Predictions for `rows`, in the target's original labels."""
    return service.predict(principal.user_id, model_id, body)


@router.post("/verify", response_model=schemas.VerifyResponse)
def verify(
    body: schemas.VerifyRequest,
    principal: Principal = Depends(current_principal),
    service: MLService = Depends(_service),
) -> dict[str, Any]:
    """Check structured claims against a dataset: supported, refuted or inconclusive."""
    return service.verify(principal.user_id, body)
